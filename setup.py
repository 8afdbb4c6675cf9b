"""Maps the three import roots onto the repository layout (include/, plugins/)."""

from setuptools import find_packages, setup

ROOTS = {
    "tidbops": "include/tidbops",
    "tidbops_playground": "include/playground",
    "tidbops_airflow": "plugins/tidbops_airflow",
}

packages: list[str] = []
for name, path in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(path)]

setup(packages=packages, package_dir=ROOTS, include_package_data=True)
