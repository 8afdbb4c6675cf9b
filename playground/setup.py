"""Maps tidbops_playground onto its place in the repository (include/tidbops_playground/), next to the core it
exercises, and ships its non-Python files (the br emulator's launcher, its README)."""

from pathlib import Path

from setuptools import find_packages, setup

SOURCE = Path(__file__).resolve().parent.parent / "include" / "tidbops_playground"
ROOT = Path("..") / "include" / "tidbops_playground"

packages = ["tidbops_playground"] + [f"tidbops_playground.{sub}" for sub in find_packages(SOURCE)]

setup(
    packages=packages,
    package_dir={"tidbops_playground": ROOT.as_posix()},
    package_data={"tidbops_playground": ["README.md", "bin/*"]},
)
