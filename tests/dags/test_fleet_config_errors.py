"""A bad fleet config in the DagBag: the other clusters keep their DAGs, and every problem shows as one line
in one import error (``dags/tidbops_fleet_config.py``), never as a stack trace of the loader, never in the
pipeline files, never with a secret in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.dags

SHIPPED = (REPO / "include/config/clusters.yaml").read_text()
SECRET = "Sekr1tHunter2"


def _parse(config: Path, tmp_path: Path) -> dict[str, object]:
    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids), "
        "'errors': {k.rsplit('/', 1)[-1]: v for k, v in bag.import_errors.items()}}))\n"
    )
    env = {**os.environ, "TIDBOPS_FLEET_CONFIG": str(config), "AIRFLOW_HOME": str(tmp_path / "airflow")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _only_the_config_file_fails(result: dict[str, object]) -> str:
    errors = result["errors"]
    assert isinstance(errors, dict) and list(errors) == ["tidbops_fleet_config.py"], errors
    text: str = errors["tidbops_fleet_config.py"]
    assert "tidbops/config.py" not in text and "yaml" not in text.split("FleetConfigProblems")[0], text
    assert SECRET not in text
    return text


@pytest.mark.parametrize(
    ("config", "line"),
    [
        pytest.param(
            b"version: 1\nclusters: []\nclusters: []\n",
            "line 3 column 1: duplicate key 'clusters' (first defined at line 2)",
            id="duplicate-top-level-key",
        ),
        pytest.param(
            SHIPPED.encode().replace(b"env: uat", b"env: u\xe4t"),
            "not UTF-8: byte 0xe4",
            id="not-utf8",
        ),
        pytest.param(
            SHIPPED.replace("version: 1", "version: 2").encode(),
            "version 2 is not known; this tidbops reads version 1",
            id="unknown-version",
        ),
        pytest.param(
            ("clusters: " + "[" * 50_000 + "]" * 50_000 + "\n").encode(),
            "nested deeper than 32 levels",
            id="deep-nesting",
        ),
        pytest.param(
            SHIPPED.replace(
                "defaults:\n",
                "defaults:\n  bomb:\n"
                + "".join(
                    f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
                    for i in range(9)
                ),
            ).encode(),
            "more than 1000000 values once aliases are expanded",
            id="anchor-bomb",
        ),
    ],
)
def test_an_unusable_file_is_one_line_in_one_import_error(tmp_path: Path, config: bytes, line: str) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_bytes(config)
    result = _parse(path, tmp_path)
    text = _only_the_config_file_fails(result)
    assert any(row.startswith(f"  - {path}: ") and line in row for row in text.splitlines()), text
    dags = result["dags"]
    assert isinstance(dags, list) and not [d for d in dags if "__" in d], dags  # no cluster's DAG


def test_a_lying_or_leaking_cluster_is_refused_and_the_others_keep_their_dags(tmp_path: Path) -> None:
    text = (
        SHIPPED.replace("    env: uat\n", "    env: uat\n    env: scratch\n", 1)
        .replace(
            "  dba-email:\n", f"  dba-hook:\n    kind: webhook\n    conn_id: https://u:{SECRET}@hooks/x\n  dba-email:\n"
        )
        .replace("alerts: [dba-log, dba-email]", "alerts: [dba-log, dba-hook]")
    )
    uat = text[: text.index("    env: uat\n")].count("\n") + 1
    path = tmp_path / "clusters.yaml"
    path.write_text(text)
    result = _parse(path, tmp_path)
    errors = _only_the_config_file_fails(result)
    dags = result["dags"]
    assert isinstance(dags, list)
    assert "tidb_cluster_check__dev" in dags
    assert "tidb_cluster_check__uat" not in dags and "tidb_cluster_check__prod" not in dags
    lines = [line.strip() for line in errors.splitlines() if line.startswith("  - ")]
    assert lines == [
        "- alert_routes.dba-hook.conn_id: looks like a password in a URL; secrets belong in Airflow connections, "
        "reference them by conn id",
        f"- cluster 'uat': env: duplicate key 'env' at line {uat + 1} (first defined at line {uat}); write each key once",
        "- cluster 'prod': alerts[1]: alert route 'dba-hook' has problems (see alert_routes.dba-hook)",
    ], errors
