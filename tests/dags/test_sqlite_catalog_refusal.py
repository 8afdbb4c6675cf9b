"""A SQLite catalog with an executor that runs tasks on several hosts is refused at parse time: one import
error (``dags/tidbops_fleet_config.py``) naming ``catalog.conn_id``, no DAG built on the split catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tidbops_airflow.dagbuilder import multi_host_executors, sqlite_catalog_refusal

pytestmark = pytest.mark.dags

SHIPPED = (REPO / "include/config/clusters.yaml").read_text()


@pytest.mark.parametrize(
    ("setting", "remote"),
    [
        pytest.param("LocalExecutor", [], id="local"),
        pytest.param("airflow.executors.local_executor.LocalExecutor", [], id="local-dotted"),
        pytest.param("CeleryExecutor", ["CeleryExecutor"], id="celery"),
        pytest.param("KubernetesExecutor", ["KubernetesExecutor"], id="kubernetes"),
        pytest.param("LocalExecutor, CeleryExecutor", ["CeleryExecutor"], id="list-with-celery"),
        pytest.param(
            "LocalExecutor,fast:airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor",
            ["KubernetesExecutor"],
            id="list-with-aliased-kubernetes",
        ),
        pytest.param("airflow.providers.edge3.executors.EdgeExecutor", ["EdgeExecutor"], id="edge"),
    ],
)
def test_multi_host_executors(setting: str, remote: list[str]) -> None:
    assert multi_host_executors(setting) == remote


@pytest.mark.parametrize(
    ("conn_id", "sqlite_path", "executor", "environ", "refused"),
    [
        pytest.param(None, None, "LocalExecutor", {}, False, id="local-default-sqlite"),
        pytest.param(None, None, "CeleryExecutor", {"AIRFLOW_HOME": "/opt/airflow"}, True, id="celery-default"),
        pytest.param(None, "/data/c.db", "KubernetesExecutor", {}, True, id="kubernetes-sqlite-path"),
        pytest.param(
            None, None, "CeleryExecutor", {"TIDBOPS_CATALOG_URL": "mysql+pymysql://u@db/tidbops"}, False,
            id="celery-catalog-url-server",
        ),
        pytest.param(
            None, None, "CeleryExecutor", {"TIDBOPS_CATALOG_URL": "sqlite:////x.db"}, True, id="celery-catalog-url-sqlite"
        ),
        pytest.param("tidbops_catalog", None, "CeleryExecutor", {}, False, id="celery-server-conn"),
        pytest.param(
            "tidbops_catalog", None, "CeleryExecutor", {"AIRFLOW_CONN_TIDBOPS_CATALOG": "sqlite:////x.db"}, True,
            id="celery-conn-uri-sqlite",
        ),
        pytest.param(
            "tidbops_catalog", None, "LocalExecutor,CeleryExecutor",
            {"AIRFLOW_CONN_TIDBOPS_CATALOG": '{"conn_type": "sqlite", "host": "/x.db"}'}, True,
            id="list-conn-json-sqlite",
        ),
        pytest.param(
            "tidbops_catalog", None, "CeleryExecutor",
            {"AIRFLOW_CONN_TIDBOPS_CATALOG": '{"conn_type": "mysql", "host": "db"}'}, False,
            id="celery-conn-json-mysql",
        ),
    ],
)
def test_sqlite_catalog_refusal(
    conn_id: str | None, sqlite_path: str | None, executor: str, environ: dict[str, str], refused: bool
) -> None:
    reason = sqlite_catalog_refusal(conn_id, sqlite_path, executor, environ)
    assert (reason is not None) == refused, reason
    if reason:
        assert "catalog.conn_id" in reason and executor.strip() in reason and "\n" not in reason


def _parse(config: Path, tmp_path: Path, executor: str) -> dict[str, object]:
    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids), "
        "'errors': {k.rsplit('/', 1)[-1]: v for k, v in bag.import_errors.items()}}))\n"
    )
    env = {
        **os.environ,
        "TIDBOPS_FLEET_CONFIG": str(config),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": executor,
    }
    env.pop("TIDBOPS_CATALOG_URL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_celery_with_the_default_sqlite_catalog_is_one_import_error_naming_catalog_conn_id(tmp_path: Path) -> None:
    config = tmp_path / "clusters.yaml"
    config.write_text(SHIPPED)
    result = _parse(config, tmp_path, "CeleryExecutor")
    errors = result["errors"]
    assert isinstance(errors, dict) and list(errors) == ["tidbops_fleet_config.py"], errors
    text = errors["tidbops_fleet_config.py"]
    problem_lines = [line for line in text.splitlines() if line.strip().startswith("- ")]
    assert len(problem_lines) == 1 and "catalog.conn_id: a SQLite catalog" in problem_lines[0], text
    assert "CeleryExecutor" in problem_lines[0] and "tidbops_catalog.db" in problem_lines[0], text
    dags = result["dags"]  # tidb_restore stays, with no cluster to restore (as for any unusable config)
    assert isinstance(dags, list) and not [d for d in dags if "__" in d], "no cluster's DAG on a split catalog"


def test_celery_with_a_server_catalog_parses(tmp_path: Path) -> None:
    config = tmp_path / "clusters.yaml"
    config.write_text(SHIPPED.replace("  conn_id: null ", "  conn_id: tidbops_catalog "))
    assert "conn_id: tidbops_catalog" in config.read_text()
    result = _parse(config, tmp_path, "CeleryExecutor")
    assert result["errors"] == {} and "tidb_backup_full__dev" in result["dags"], result["errors"]
