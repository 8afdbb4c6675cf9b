"""The plugin: its macro, and the warm-up it runs only when Airflow loads plugins eagerly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.operators

REPO = Path(__file__).resolve().parents[3]
PROBE = """
import sys
sys.path.insert(0, {plugins!r})
import tidbops_plugin
print("boto3" in sys.modules, "tidbops.backup" in sys.modules)
"""


@pytest.mark.parametrize(("lazy", "warm"), [("True", False), ("False", True)])
def test_the_warm_up_follows_lazy_load_plugins(lazy: str, warm: bool, tmp_path: Path) -> None:
    env = {"AIRFLOW__CORE__LAZY_LOAD_PLUGINS": lazy, "AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(plugins=str(REPO / "plugins"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert proc.stdout.split()[-2:] == [str(warm), str(warm)], proc.stdout + proc.stderr


def test_warm_imports_builds_an_s3_client_without_a_request() -> None:
    sys.path.insert(0, str(REPO / "plugins"))
    try:
        import tidbops_plugin

        loaded = tidbops_plugin.warm_imports()
    finally:
        sys.path.remove(str(REPO / "plugins"))
    assert "tidbops.backup" in loaded and "s3 client" in loaded
    assert tidbops_plugin.tso_to_iso(470635151401681570).startswith("2026-11-22T06:57:05")
