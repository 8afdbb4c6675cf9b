"""The UI inside a real Airflow API app: Airflow's own ``create_app`` (with our plugin loaded from plugins/),
its simple auth manager and JWTs, a migrated metadata DB, and a catalog written through ``Catalog``'s API.

``PerDagAuthManager`` is Airflow's simple auth manager that also refuses some DAG ids to some users: it
stands in for FAB's or Keycloak's per-DAG permissions, which the simple auth manager does not have.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.helpers.env import environment
from tests.unit.tidbops_airflow.ui.helpers import DENIED, USERS
from tidbops import tso
from tidbops.catalog.records import DrillRecord, LogBackupCheck, NewBackup, RestoreRecord
from tidbops.catalog.store import Catalog

REPO = Path(__file__).resolve().parents[4]
NOW = datetime.now(UTC).replace(microsecond=0)


def _per_dag_auth_manager() -> Any:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class PerDagAuthManager(SimpleAuthManager):
        def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
            suffix = DENIED.get(user.get_name())
            if suffix and details is not None and details.id and details.id.endswith(suffix):
                return False
            return bool(
                super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
            )

    return PerDagAuthManager()


@pytest.fixture(scope="session")
def airflow_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Airflow's API app (``create_app``, as ``airflow api-server`` builds it) with our plugin mounted."""
    home = tmp_path_factory.mktemp("ui-airflow")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({user: f"pw-{user}-1234" for user in USERS}))
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs512-" * 2,
    }
    with environment(**env):
        from airflow.api_fastapi import app as airflow_api
        from airflow.utils.db import initdb

        initdb()  # the metadata DB (SQLite in the test AIRFLOW_HOME): the auth manager checks revoked tokens there
        # create_app keeps an auth manager already made if it is an instance of the configured class (the simple one)
        airflow_api._AuthManagerState.instance = _per_dag_auth_manager()
        try:
            yield airflow_api.create_app("core")
        finally:
            airflow_api._AuthManagerState.instance = None


@dataclass
class Seeded:
    catalog: Catalog
    full_id: str
    incremental_id: str
    full_ts: int
    drill_id: str
    restore_id: str


def _seed(catalog: Catalog) -> Seeded:
    """dev: a verified full, an incremental on it, a log check, a passed and a failed drill, a restore by dba;
    prod: a failed full; uat: nothing."""
    full_at = NOW - timedelta(hours=5)
    full_id = "dev-full-" + full_at.strftime("%Y%m%dt%H%M%Sz")
    full_ts = tso.from_datetime(full_at + timedelta(seconds=2))
    catalog.start_backup(
        NewBackup(
            id=full_id,
            cluster="dev",
            kind="full",
            storage_uri=f"s3://tidbops-backups/dev/{full_id}",
            started_at=full_at,
            dag_id="tidb_backup_full__dev",
            run_id="manual__" + full_at.isoformat(),
            triggered_by="manual:dba",
        )
    )
    catalog.finish_backup(
        full_id,
        backup_ts=full_ts,
        size_bytes=3 * 1024**3,
        br_duration_s=95.0,
        manifest_uri=f"s3://tidbops-backups/dev/{full_id}/tidbops-manifest.json",
        finished_at=full_at + timedelta(minutes=2),
    )
    catalog.mark_verified(full_id, True, "every file read back", tier=1)
    inc_at = NOW - timedelta(hours=1)
    inc_id = "dev-inc-" + inc_at.strftime("%Y%m%dt%H%M%Sz")
    catalog.start_backup(
        NewBackup(
            id=inc_id,
            cluster="dev",
            kind="incremental",
            storage_uri=f"s3://tidbops-backups/dev/{inc_id}",
            started_at=inc_at,
            base_backup_id=full_id,
            last_backup_ts=full_ts,
            dag_id="tidb_backup_incremental__dev",
            run_id="scheduled__" + inc_at.isoformat(),
            triggered_by="scheduled",
        )
    )
    catalog.finish_backup(inc_id, backup_ts=tso.from_datetime(inc_at), size_bytes=40 * 1024**2, br_duration_s=7.5)
    catalog.add_log_backup_check(
        LogBackupCheck(
            cluster="dev",
            checked_at=NOW - timedelta(minutes=3),
            status="NORMAL",
            healthy=True,
            task_name="dev-pitr",
            checkpoint_ts=tso.from_datetime(NOW - timedelta(minutes=4)),
            lag_seconds=60.0,
            window_start_ts=full_ts,
            window_end_ts=tso.from_datetime(NOW - timedelta(minutes=4)),
            dag_id="tidb_log_backup_check__dev",
            run_id="scheduled__x",
        )
    )
    drills = []
    for n, (status, rto) in enumerate([("failed", 300.0), ("passed", 180.0)]):
        started = NOW - timedelta(hours=4 - n)
        drill = DrillRecord(
            id=f"dev-drill-{n}",
            cluster="dev",
            target="scratch1",
            mode="snapshot",
            status=status,  # type: ignore[arg-type]
            started_at=started,
            restore_ts=full_ts,
            backups_used=(full_id,),
            restore_seconds=rto - 30,
            validation_seconds=30.0,
            tables_checked=4,
            rows_checked=3000,
            mismatches=0 if status == "passed" else 2,
            error=None if status == "passed" else "2 chunks differ in app.orders",
            dag_id="tidb_restore_drill__dev",
            run_id=f"manual__drill{n}",
            finished_at=started + timedelta(seconds=rto),
        )
        catalog.save_drill(drill, actor="schedule")
        drills.append(drill)
    restore = RestoreRecord(
        id="dev-restore-1",
        source="dev",
        target="scratch2",
        status="succeeded",  # type: ignore[arg-type]
        requested_by="dba",
        reason="INC-4711 <b>rows deleted</b> by a bad migration",
        requested_at=NOW - timedelta(minutes=30),
        restore_point="latest",
        restore_ts=full_ts,
        mode="snapshot",
        dry_run=False,
        backups_used=(full_id,),
        dag_id="tidb_restore",
        run_id="manual__restore1",
        finished_at=NOW - timedelta(minutes=25),
    )
    catalog.save_restore(restore)
    prod_at = NOW - timedelta(hours=2)
    prod_id = "prod-full-" + prod_at.strftime("%Y%m%dt%H%M%Sz")
    catalog.start_backup(
        NewBackup(
            id=prod_id,
            cluster="prod",
            kind="full",
            storage_uri=f"s3://tidbops-backups/prod/{prod_id}",
            started_at=prod_at,
            dag_id="tidb_backup_full__prod",
            run_id="scheduled__p",
        )
    )
    catalog.fail_backup(prod_id, "BR exited with 1: [BR:ExternalStorage:ErrStorageUnknown]")
    return Seeded(catalog, full_id, inc_id, full_ts, drills[-1].id, restore.id)


@pytest.fixture(scope="session")
def fleet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ui-fleet")
    doc = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    doc["catalog"] = {"sqlite_path": str(tmp / "catalog.db")}
    path = tmp / "clusters.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def seeded(fleet_file: Path) -> Iterator[Seeded]:
    doc = yaml.safe_load(fleet_file.read_text())
    catalog = Catalog.from_url(f"sqlite:///{doc['catalog']['sqlite_path']}")
    catalog.migrate()
    try:
        yield _seed(catalog)
    finally:
        catalog.close()


@pytest.fixture
def client(airflow_app: Any, seeded: Seeded, fleet_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("TIDBOPS_FLEET_CONFIG", str(fleet_file))
    with TestClient(airflow_app) as c:
        yield c
