"""The e2e tier: a playground (in a private home, on free ports) and a real Airflow on top of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers.servers import free_port
from tidbops.catalog.store import Catalog
from tidbops_playground import manager
from tidbops_playground.airflow import AirflowAPI, AirflowStandalone, fleet_without_schedules
from tidbops_playground.registry import Registry

REPO = Path(__file__).resolve().parents[2]
# prod's BR gets a short timeout in the e2e fleet, so the "BR hangs" test ends quickly (a real backup of
# the playground's prod takes a few seconds)
E2E_BR_TIMEOUT = {"prod": "40s"}
# prod may be restored onto itself in the e2e fleet (not in the shipped one), so the production guardrails
# of tidb_restore (confirm, target not empty) are reachable through its trigger form; a production target
# needs the explicit allow_production_targets in the fleet config
E2E_RESTORE = {
    "prod": {
        "allowed_targets": ["scratch1", "scratch2", "prod"],
        "allow_in_place": True,
        "allow_production_targets": True,
    }
}


# uat's recovery window shrinks to one minute in the e2e fleet, so a retention run expires something
# within the test (#16); not a dry run, one full backup kept
E2E_RETENTION = {"uat": {"keep_days": "1m", "keep_full": 1, "dry_run": False}}

# prod's storage connection assumes a role through the playground's STS (#14): its backups, log backup and
# the restores from it run on the temporary credentials the amazon provider gets from AssumeRole
E2E_STORAGE_CONN = {"prod": manager.S3_ROLE_CONN_ID}

# The e2e Airflow's cluster policy: the verify pipeline's retries 4 s apart, not 1 and 2 min (production's
# exponential backoff from 1 min), its three tries kept. test_verify_pipeline.py waits for a damaged object to
# fail every try: 3 min of backoff in each CI run otherwise. Other pipelines keep production's timing (their
# tests look at a failed try before the next one starts).
E2E_LOCAL_SETTINGS = '''"""The e2e tier's cluster policy: tidb_verify__* retries 4 s apart (production: 1 min, exponential)."""
from datetime import timedelta


def task_policy(task):
    if task.dag_id.startswith("tidb_verify__"):
        task.retry_delay = timedelta(seconds=4)
        task.retry_exponential_backoff = 0
'''

# where the e2e Airflow's fleet config is ("path"), set by the airflow fixture; tests take it from the
# e2e_fleet fixture (an import of this module from a test module may be another copy of it)
E2E_FLEET: dict[str, Path] = {}


# clusters a module adds to the e2e playground for its own tests, started with the others (the playground's
# clusters are fixed at `up`), each with its own PD: test_owner_keys.py's vault (#17), added to the fleet
# config by that module only
E2E_EXTRA_CLUSTERS: tuple[str, ...] = ("vault",)


@pytest.fixture(scope="package")
def playground_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("playground")
    extra = tuple(manager.ClusterSpec(name, "source", f"127.0.0.1:{free_port()}") for name in E2E_EXTRA_CLUSTERS)
    manager.up(home, rows=3000, clusters=(*manager.default_clusters(sql_port_base=None), *extra), s3_port=None)
    try:
        yield home
    finally:
        manager.down(home)


@pytest.fixture(scope="package")
def registry(playground_home: Path) -> Registry:
    from tidbops_playground.registry import load_registry

    return load_registry(playground_home)


@pytest.fixture(scope="package")
def airflow(playground_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowAPI]:
    fleet = fleet_without_schedules(
        REPO / "include/config/clusters.yaml", tmp_path_factory.mktemp("fleet") / "clusters.yaml"
    )
    doc = yaml.safe_load(fleet.read_text())
    for cluster in doc["clusters"]:
        if cluster["name"] in E2E_BR_TIMEOUT:
            cluster.setdefault("br", {})["timeout"] = E2E_BR_TIMEOUT[cluster["name"]]
        if cluster["name"] in E2E_RESTORE:
            cluster["restore"] = E2E_RESTORE[cluster["name"]]
        if cluster["name"] in E2E_RETENTION:
            cluster["retention"] = {**cluster.get("retention", {}), **E2E_RETENTION[cluster["name"]]}
        if cluster["name"] in E2E_STORAGE_CONN:
            cluster["storage"] = {**cluster.get("storage", {}), "conn_id": E2E_STORAGE_CONN[cluster["name"]]}
    fleet.write_text(yaml.safe_dump(doc, sort_keys=False))
    E2E_FLEET["path"] = fleet
    settings = playground_home / "airflow" / "config" / "airflow_local_settings.py"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(E2E_LOCAL_SETTINGS)
    standalone = AirflowStandalone(home=playground_home, port=free_port(), fleet_config=fleet)
    api = standalone.start()
    try:
        yield api
    except BaseException:
        print(standalone.log_file.read_text()[-5000:])
        raise
    finally:
        standalone.stop()


@pytest.fixture(scope="package")
def e2e_fleet(airflow: AirflowAPI) -> Path:
    """The e2e Airflow's fleet config file: a module may add a cluster for its own tests and put the file
    back afterwards (test_owner_keys.py)."""
    return E2E_FLEET["path"]


@pytest.fixture(scope="package")
def catalog(playground_home: Path, airflow: AirflowAPI) -> Iterator[Catalog]:
    """The catalog the e2e Airflow's tasks write (SQLite in its $AIRFLOW_HOME)."""
    cat = Catalog.from_url(f"sqlite:///{playground_home / 'airflow' / 'tidbops_catalog.db'}")
    yield cat
    cat.close()


@pytest.fixture(scope="package")
def bucket(registry: Registry) -> manager.Bucket:
    assert registry.s3 is not None
    return manager.Bucket.of(registry.s3)
