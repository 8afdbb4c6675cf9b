"""The drill's validation and fingerprint operators running their real code against real servers.

``ValidateRestoreOperator`` and ``SourceFingerprintOperator`` get two private MariaDB servers (the source,
its history kept by system versioning, and the scratch holding the source as of the restore point: what
the restore left) through the real ``TiDBHook`` (Airflow connections in the environment). What they run
is not patched: the content check, the GC safepoint read, the recorded fingerprints, Great Expectations
with the shipped suites and the Data Docs upload. The catalog (SQLite) and the fleet are wired in as the
operators tier does (``tests/unit/tidbops_airflow/operators/test_drill.py``, which covers the rest of the
drill's steps with fake BR and SQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.integration.drill.conftest import connect
from tidbops import tso
from tidbops.catalog.records import BackupKind, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import AlertRoute, CatalogConfig, ClusterConfig, DrillConfig, Fleet, StorageConfig
from tidbops.storage import LocalStorage
from tidbops_airflow.operators.drill import (
    DrillChooseRestorePointOperator,
    SourceFingerprintOperator,
)
from tidbops_airflow.operators.recovery import ValidateRestoreOperator
from tidbops_playground.mariadb import MariaDBInstance

pytestmark = pytest.mark.integration


class TI:
    """A task instance whose XCom lives in a dict shared by the run's steps."""

    def __init__(self, xcom: dict[tuple[str, str], Any], task_id: str, dag_id: str) -> None:
        self.xcom, self.task_id, self.dag_id, self.run_id, self.try_number = xcom, task_id, dag_id, "manual__1", 1

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcom.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, key)] = value


@dataclass
class Drill:
    tmp: Path
    catalog: Catalog
    fleet: Fleet
    source: MariaDBInstance
    scratch: MariaDBInstance
    xcom: dict[tuple[str, str], Any] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))  # the run's start: names the drill

    def run(self, op: Any) -> Any:
        started = self.started
        dag_run = SimpleNamespace(logical_date=None, run_after=started, start_date=started, run_type="manual",
                                  run_id="manual__1", conf={})  # fmt: skip
        result = op.execute({"dag_run": dag_run, "ti": TI(self.xcom, op.task_id, "tidb_restore_drill__dev")})
        self.xcom[(op.task_id, "return_value")] = result
        return result

    def validate(self, expectations_dir: Path | None = None) -> dict[str, Any]:
        op = ValidateRestoreOperator(
            task_id="validate_restored_data", plan_task_id="choose_restore_point",
            restore_task_ids=["restore_to_scratch"], chunk_rows="300", expectations=True,
            expectations_dir=str(expectations_dir) if expectations_dir else None,
        )  # fmt: skip
        return self.run(op)  # type: ignore[no-any-return]

    def gc(self, safe_point: datetime | None) -> None:
        """What TiDB's GC worker keeps in ``mysql.tidb`` (the playground's servers have it)."""
        conn = connect(self.source)
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS mysql.tidb (VARIABLE_NAME VARCHAR(64) PRIMARY KEY, VARIABLE_VALUE TEXT)"
            )
            cur.execute("REPLACE INTO mysql.tidb VALUES ('tikv_gc_life_time', '10m0s')")
            cur.execute("DELETE FROM mysql.tidb WHERE VARIABLE_NAME = 'tikv_gc_safe_point'")
            if safe_point is not None:
                cur.execute(
                    "INSERT INTO mysql.tidb VALUES ('tikv_gc_safe_point', %s)",
                    (safe_point.strftime("%Y%m%d-%H:%M:%S.%f")[:-3] + " +0000",),
                )
        conn.close()

    @property
    def storage(self) -> LocalStorage:
        return LocalStorage(self.tmp / "backups")


@pytest.fixture
def drill(
    servers: tuple[MariaDBInstance, MariaDBInstance], restored: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Drill]:
    """dev's backup of the restore point in the catalog, the drill's plan chosen, the restore done."""
    source, scratch = servers
    for name, server in (("tidb_dev", source), ("tidb_scratch1", scratch)):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{name.upper()}", f"mysql://{server.user}:{server.password}@127.0.0.1:{server.port}"
        )
    storage = StorageConfig(uri=f"local://{tmp_path / 'backups'}")
    dev = ClusterConfig(name="dev", env="dev", pd=("pd-dev:2379",), tidb_conn_id="tidb_dev", storage=storage,
                        drill=DrillConfig(target="scratch1"))  # fmt: skip
    scratch1 = ClusterConfig(name="scratch1", env="scratch", scratch=True, pd=("pd-scratch1:2379",),
                             tidb_conn_id="tidb_scratch1", storage=storage)  # fmt: skip
    fleet = Fleet(tmp_path / "clusters.yaml", {"dev": dev, "scratch1": scratch1}, (), {"log": AlertRoute(kind="log")},
                  CatalogConfig())  # fmt: skip
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()

    class CatalogHook:
        def __init__(self, **_: Any) -> None:
            pass

        def get_catalog_or_none(self) -> Catalog | None:
            return Catalog.from_url(str(catalog.engine.url))

    monkeypatch.setattr("tidbops_airflow.hooks.catalog.CatalogHook", CatalogHook)
    monkeypatch.setattr("tidbops_airflow.dagbuilder.fleet", lambda: fleet)
    catalog.start_backup(
        NewBackup(id="dev-full-1", cluster="dev", kind=BackupKind.FULL, storage_uri=f"{storage.uri}/dev/full/dev-full-1",
                  started_at=tso.to_datetime(restored) - timedelta(minutes=1))
    )  # fmt: skip
    catalog.finish_backup("dev-full-1", backup_ts=restored)
    catalog.mark_verified("dev-full-1", True, "ok")
    d = Drill(tmp_path, catalog, fleet, source, scratch)
    d.gc(None)
    plan = d.run(DrillChooseRestorePointOperator(task_id="choose_restore_point", cluster=dev, target="scratch1"))
    assert plan["restore_ts"] == restored
    d.xcom[("restore_to_scratch", "return_value")] = {
        "restore_seconds": 1.0,
        "runs": [],
    }  # BR's part: the fixture's copy
    yield d
    catalog.close()


def test_a_drill_validates_the_restore_with_its_suites_and_keeps_their_data_docs(drill: Drill) -> None:
    got = drill.validate()
    assert got["ok"] and got["content_ok"] and got["tables_checked"] == 7 and got["rows_checked"] > 3000
    gx = got["expectations"]
    assert gx["ran"] and gx["evaluated"] > 20 and gx["successful"] == gx["evaluated"], gx.get("failures")
    drill_id = drill.xcom[("choose_restore_point", "return_value")]["drill_id"]
    assert (
        gx["data_docs_uri"] == f"{drill.fleet.clusters['dev'].storage.uri}/dev/drills/{drill_id}/data_docs/index.html"
    )
    assert drill.storage.exists(f"dev/drills/{drill_id}/data_docs/index.html")
    assert got["sql_seconds"] > 0 and "history" in got["source_read"]
    assert drill.scratch.password not in json.dumps(got) and drill.source.password not in json.dumps(got)


def test_a_cluster_without_suites_is_judged_on_content_and_says_so(drill: Drill, tmp_path: Path) -> None:
    (tmp_path / "no-suites").mkdir()
    got = drill.validate(tmp_path / "no-suites")
    assert got["ok"] and got["expectations"]["ran"] is False
    assert got["expectations"]["notes"] == ["no expectation suites for dev: expectations did not run"]


def test_a_changed_row_fails_the_drill_without_retry_naming_table_and_key_range(drill: Drill) -> None:
    conn = connect(drill.scratch)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE shop.orders SET total = total + 1 WHERE id = 7")
        with pytest.raises(AirflowFailException, match=r"shop\.orders: \(id\) in \(-∞, 300\]: 300 rows on both sides"):
            drill.validate()
        kept = drill.xcom[("validate_restored_data", "return_value")]
        assert not kept["ok"] and kept["mismatches"] == 1
        assert "shop.orders" in drill.xcom[("validate_restored_data", "error")]
    finally:
        with conn.cursor() as cur:
            cur.execute("UPDATE shop.orders SET total = total - 1 WHERE id = 7")
        conn.close()


def test_gone_history_is_judged_by_the_fingerprints_recorded_after_the_backup(drill: Drill, restored: int) -> None:
    """The GC safepoint passes the point: without recorded fingerprints the drill fails saying so; with those
    SourceFingerprintOperator took right after the backup (its history still there) it passes on them."""
    dev = drill.fleet.clusters["dev"]
    drill.gc(datetime.now(UTC))
    with pytest.raises(AirflowFailException, match="no source fingerprints were recorded right after that backup"):
        drill.validate(drill.tmp)  # no suites: the content alone
    drill.gc(tso.to_datetime(restored) - timedelta(minutes=5))
    drill.xcom[("run_br_backup", "return_value")] = {"backup_id": "dev-full-1", "backup_ts": restored}
    took = drill.run(SourceFingerprintOperator(task_id="fingerprint_source", cluster=dev))
    assert took["rows"] > 3000 and took["uri"].endswith("/dev/drills/fingerprints/dev-full-1.json")
    kept = json.loads(drill.storage.read_bytes("dev/drills/fingerprints/dev-full-1.json"))
    assert kept["version"] == 2 and kept["algorithm"] == 2
    drill.gc(datetime.now(UTC))
    got = drill.validate(drill.tmp)
    assert got["ok"] and got["tables_checked"] == 7 and "recorded after backup dev-full-1" in got["source_read"]
    drill.gc(None)
