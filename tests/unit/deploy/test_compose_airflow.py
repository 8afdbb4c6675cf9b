"""The compose stack as Airflow sees it: the pools airflow-init creates are every pool the compose fleet's DAGs
use, the AIRFLOW_CONN_* values are connections Airflow reads with the fields our hooks use, and the
compose fleet parses into DAGs with no import error under the celery profile's executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.dags

COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
FLEET = REPO / "include/config/compose.yaml"


def _airflow_init_pools_command() -> str:
    script = COMPOSE["services"]["airflow-init"]["command"][1]
    (line,) = [line for line in script.splitlines() if line.startswith("python -c ")]
    command, _, redirect = line.rpartition(" > ")
    assert redirect == "/tmp/pools.json" and "airflow pools import /tmp/pools.json" in script
    return command.replace("$$", "$")  # Compose's escape of a literal $


def _parse(tmp_path: Path, executor: str) -> dict[str, object]:
    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "print(json.dumps({'pools': {d: sorted({t.pool for t in bag.dags[d].tasks}) for d in bag.dag_ids}, "
        "'errors': {k.rsplit('/', 1)[-1]: v for k, v in bag.import_errors.items()}}))\n"
    )
    env = {
        **os.environ,
        "TIDBOPS_FLEET_CONFIG": str(FLEET),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": executor,
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def init_pools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    env = {
        **os.environ,
        "TIDBOPS_FLEET_CONFIG": str(FLEET),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    out = subprocess.run(
        ["bash", "-c", _airflow_init_pools_command()], capture_output=True, text=True, env=env, check=True, timeout=60
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_airflow_init_creates_a_one_slot_pool_per_cluster(init_pools: dict[str, dict[str, object]]) -> None:
    assert set(init_pools) == {"br_demo", "br_scratch1"}
    # the format `airflow pools import` of Airflow 3.3.2 reads (name -> slots, description, include_deferred)
    assert all(set(p) == {"slots", "description", "include_deferred"} and p["slots"] == 1 for p in init_pools.values())


def test_the_compose_fleet_parses_and_its_dags_use_only_those_pools(
    tmp_path: Path, init_pools: dict[str, dict[str, object]]
) -> None:
    result = _parse(tmp_path, "CeleryExecutor")  # the celery profile's: its server catalog is not refused
    assert result["errors"] == {}, result["errors"]
    pools = result["pools"]
    assert isinstance(pools, dict) and "tidb_restore_drill__demo" in pools and "tidb_backup_full__demo" in pools
    used = {pool for dag_pools in pools.values() for pool in dag_pools}
    assert used - {"default_pool"} <= set(init_pools), used
    assert "br_demo" in used and "br_scratch1" in used


def test_connection_variables_are_what_airflow_and_our_hooks_read() -> None:
    from airflow.models.connection import Connection

    env = COMPOSE["x-airflow-common"]["environment"]
    filled = {
        key: value.replace("${TIDB_ROOT_PASSWORD:?set in .env}", "tidbPw")
        .replace("${MINIO_ROOT_USER:?set in .env}", "minioUser")
        .replace("${MINIO_ROOT_PASSWORD:?set in .env}", "minioPw")
        .replace("${CATALOG_DB_PASSWORD:?set in .env}", "catalogPw")
        for key, value in env.items()
        if key.startswith("AIRFLOW_CONN_")
    }
    conns = {
        key: Connection.from_json(value, conn_id=key.removeprefix("AIRFLOW_CONN_").lower())
        for key, value in filled.items()
    }
    demo = conns["AIRFLOW_CONN_TIDB_DEMO"]
    assert (demo.conn_type, demo.host, demo.port, demo.login, demo.password) == (
        "mysql",
        "tidb",
        4000,
        "root",
        "tidbPw",
    )
    scratch = conns["AIRFLOW_CONN_TIDB_SCRATCH1"]
    assert (scratch.host, scratch.port) == ("scratch-tidb", 4000)
    s3 = conns["AIRFLOW_CONN_S3_MINIO"]
    assert (s3.conn_type, s3.login, s3.password) == ("aws", "minioUser", "minioPw")
    assert s3.extra_dejson == {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}
    catalog = conns["AIRFLOW_CONN_TIDBOPS_CATALOG"]
    assert (catalog.host, catalog.port, catalog.login, catalog.password, catalog.schema) == (
        "catalog-db",
        3306,
        "tidbops",
        "catalogPw",
        "tidbops",
    )
    db = COMPOSE["services"]["catalog-db"]["environment"]
    assert (db["MARIADB_DATABASE"], db["MARIADB_USER"]) == (catalog.schema, catalog.login)
