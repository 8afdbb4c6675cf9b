"""Maps the production import roots onto the repository layout (include/, plugins/), and builds the optional C
slow-log scanner and column fold (``tidbops.slowlog._scan``; without a compiler the pure-Python path, which
gives identical results, is used). The playground (include/tidbops_playground/) is not part of this
distribution: it is tidbops-playground, built from playground/ (`make venv` installs both)."""

import os

from setuptools import Extension, find_packages, setup

ROOTS = {
    "tidbops": "include/tidbops",
    "tidbops_airflow": "plugins/tidbops_airflow",
}

packages: list[str] = []
for name, path in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(path)]

scan = Extension(
    "tidbops.slowlog._scan",
    sources=["include/tidbops/slowlog/_scan.c"],
    extra_compile_args=["-O2"],
    libraries=["m"] if os.name == "posix" else [],
    optional=True,  # a failed build leaves the identical pure-Python parser in charge
)

setup(packages=packages, package_dir=ROOTS, include_package_data=True, ext_modules=[scan])
