"""Packaging: the production wheel (the repository root) ships tidbops and tidbops_airflow and no playground;
`tidbops playground` comes from the tidbops-playground distribution (playground/); requirements.txt holds
what production imports and no test or lint tool."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from importlib.metadata import distribution, packages_distributions, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO
from tidbops.cli import commands

pytestmark = pytest.mark.unit

DEV_ONLY = {
    "pytest", "pytest-timeout", "hypothesis", "moto", "ruff", "mypy", "playwright", "jsonschema",
    "beautifulsoup4", "zstandard", "lz4", "python-snappy", "types-pyyaml", "pyrage-stubs",
}  # fmt: skip
PRODUCTION_CODE = ("include/tidbops", "plugins/tidbops_airflow", "plugins/tidbops_plugin.py", "dags")
OURS = {"tidbops", "tidbops_airflow", "tidbops_plugin", "tidbops_playground"}


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = str(req.specifier)
    return pins


@pytest.fixture(scope="module")
def production_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("tidbops-*.whl")
    return wheel


def test_the_production_wheel_has_no_playground(production_wheel: Path) -> None:
    names = zipfile.ZipFile(production_wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {"tidbops", "tidbops_airflow"} <= tops
    assert not [n for n in names if "playground" in n.lower()], "the emulator is not production code"
    assert "tidbops/config.py" in names and "tidbops_airflow/hooks/br.py" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(production_wheel).read(entry_points).decode()
    assert "tidbops = tidbops.cli:main" in text and "tidbops.commands" not in text, text


def test_tidbops_playground_is_the_playground_distributions_entry_point() -> None:
    found = commands.plugins()["playground"]
    assert found.value == "tidbops_playground.cli:playground_app"
    assert found.dist is not None and canonicalize_name(found.dist.name) == "tidbops-playground"
    assert "tidbops.commands" not in (distribution("tidbops").read_text("entry_points.txt") or "")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tidbops"), "playground", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "emulated TiDB clusters" in done.stdout, done.stderr


def test_requirements_are_production_only_and_dev_adds_the_rest() -> None:
    prod, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert not set(prod) & DEV_ONLY, set(prod) & DEV_ONLY
    assert DEV_ONLY <= set(dev) and not set(dev) & set(prod)
    assert (REPO / "requirements-dev.txt").read_text().splitlines().count("-r requirements.txt") == 1
    constraints = _pins("constraints.txt")
    for name, spec in {**prod, **dev}.items():
        assert constraints.get(name) == spec, f"{name}{spec} is not the pin in constraints.txt"


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for root in PRODUCTION_CODE:
        path = REPO / root
        for file in [path] if path.is_file() else path.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in OURS and m != "__future__"}


def _closure(roots: set[str]) -> set[str]:
    """The distributions ``roots`` bring in, with their own requirements (extras not asked for left out)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def test_every_import_of_production_code_is_installed_by_requirements_txt() -> None:
    installed = _closure(set(_pins("requirements.txt")))
    owners = packages_distributions()
    missing = {}
    for module in _third_party_imports():
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        if not dists & installed:
            missing[module] = sorted(dists)
    assert not missing, f"imported by production code, not brought in by requirements.txt: {missing}"
