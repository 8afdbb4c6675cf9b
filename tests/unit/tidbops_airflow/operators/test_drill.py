"""The restore drill's operators with patched hooks: a real SQLite catalog, local storage, fake BR and SQL.

``execute`` gets a minimal context: the DAG run, and a task instance whose XCom is a dict (so a step
reads what earlier steps pushed, as in Airflow). The validation and fingerprint operators run their real
code against real MariaDB servers in the integration tier (``tests/integration/drill/
test_drill_operators_mariadb.py``); the steps after them here read a validation's result as it reaches
them, in XCom, made by the validation's own types (``recovery.validate.Validation``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.helpers.restores import FakeBR, FakeTiDB
from tidbops import tso
from tidbops.catalog.records import BackupKind, DrillStatus, NewBackup
from tidbops.catalog.store import Catalog, ScratchInUseError
from tidbops.config import (
    AlertRoute,
    BRConfig,
    CatalogConfig,
    ClusterConfig,
    DrillConfig,
    EncryptionConfig,
    Fleet,
    StorageConfig,
)
from tidbops.drill import DrillError
from tidbops.recovery.validate import ContentReport, TableResult
from tidbops.storage import LocalStorage
from tidbops.validate.expectations import ExpectationsRun, SuiteResult
from tidbops.validate.fingerprint import Chunk, ChunkMismatch, ChunkSum, TableComparison
from tidbops_airflow.operators.drill import (
    STEP_TASKS,
    DrillChooseRestorePointOperator,
    DrillDropScratchOperator,
    DrillGateOperator,
    DrillPrepareScratchOperator,
    DrillRecordOperator,
)
from tidbops_airflow.operators.recovery import BRRestoreOperator

pytestmark = pytest.mark.operators

RUN_AT = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
T_FULL = tso.from_datetime(RUN_AT - timedelta(hours=2))
T_INCR = tso.from_datetime(RUN_AT - timedelta(hours=1))


# --------------------------------------------------------------------------------------------- fakes


class TI:
    """A task instance whose XCom lives in a dict shared by the run's steps."""

    def __init__(self, xcom: dict[tuple[str, str], Any], task_id: str, dag_id: str, run_id: str) -> None:
        self.xcom, self.task_id, self.dag_id, self.run_id, self.try_number = xcom, task_id, dag_id, run_id, 1
        self.pulls: list[tuple[str, str]] = []  # each one a round trip to Airflow's API in a real task

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        self.pulls.append((task_ids, key))
        return self.xcom.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, key)] = value


@dataclass
class Env:
    tmp: Path
    catalog: Catalog
    fleet: Fleet
    sql: FakeTiDB
    br: FakeBR
    xcom: dict[tuple[str, str], Any] = field(default_factory=dict)
    catalog_down: bool = False
    run_id: str = "manual__1"

    def cluster(self, name: str = "uat") -> ClusterConfig:
        return self.fleet.clusters[name]

    def context(self, task_id: str, cluster: str = "uat") -> dict[str, Any]:
        dag_run = SimpleNamespace(
            logical_date=None, run_after=RUN_AT, start_date=RUN_AT, run_type="manual", run_id=self.run_id
        )
        dag_run.conf = {}
        ti = TI(self.xcom, task_id, f"tidb_restore_drill__{cluster}", self.run_id)
        return {"dag_run": dag_run, "ti": ti}

    def run(self, op: Any, cluster: str = "uat") -> Any:
        result = op.execute(self.context(op.task_id, cluster))
        self.xcom[(op.task_id, "return_value")] = result  # what the task runner does with a return value
        return result

    @property
    def storage(self) -> LocalStorage:
        return LocalStorage(self.tmp / "backups")


def make_fleet(tmp: Path, mode: str = "snapshot") -> Fleet:
    storage = StorageConfig(uri=f"local://{tmp / 'backups'}")
    uat = ClusterConfig(
        name="uat",
        env="uat",
        pd=("pd-uat:2379",),
        tidb_conn_id="tidb_uat",
        storage=storage,
        br=BRConfig(encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="key_uat")),
        drill=DrillConfig(target="scratch1", mode=mode),  # type: ignore[arg-type]
    )
    dev = uat.model_copy(update={"name": "dev", "env": "dev", "pd": ("pd-dev:2379",), "tidb_conn_id": "tidb_dev"})
    scratch = [
        ClusterConfig(
            name=n, env="scratch", scratch=True, pd=(f"pd-{n}:2379",), tidb_conn_id=f"tidb_{n}", storage=storage
        )
        for n in ("scratch1", "scratch2")
    ]
    clusters = {c.name: c for c in (uat, dev, *scratch)}
    return Fleet(tmp / "clusters.yaml", clusters, (), {"log": AlertRoute(kind="log")}, CatalogConfig())


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    e = Env(tmp_path, catalog, make_fleet(tmp_path), FakeTiDB({"tidb_scratch1": ["shop", "old_drill"]}), FakeBR())

    class CatalogHook:
        def __init__(self, **_: Any) -> None:
            pass

        def get_catalog_or_none(self) -> Catalog | None:
            return None if e.catalog_down else Catalog.from_url(str(catalog.engine.url))

    monkeypatch.setattr("tidbops_airflow.hooks.catalog.CatalogHook", CatalogHook)
    monkeypatch.setattr("tidbops_airflow.dagbuilder.fleet", lambda: e.fleet)
    monkeypatch.setattr("tidbops_airflow.hooks.tidb.TiDBHook", e.sql.hook())
    monkeypatch.setattr("tidbops_airflow.hooks.br.BRHook", e.br.hook())
    yield e
    catalog.close()


def seed_chain(env: Env) -> None:
    for backup_id, ts, kind, base in (
        ("uat-full-1", T_FULL, BackupKind.FULL, None),
        ("uat-incr-1", T_INCR, BackupKind.INCREMENTAL, "uat-full-1"),
    ):
        short = "full" if kind is BackupKind.FULL else "incr"
        env.catalog.start_backup(
            NewBackup(
                id=backup_id,
                cluster="uat",
                kind=kind,
                storage_uri=f"{env.cluster().storage.uri}/uat/{short}/{backup_id}",
                started_at=tso.to_datetime(ts) - timedelta(minutes=1),
                base_backup_id=base,
                last_backup_ts=T_FULL if base else None,
            )
        )
        env.catalog.finish_backup(backup_id, backup_ts=ts)
        env.catalog.mark_verified(backup_id, True, "ok")


def choose(env: Env, target: str = "scratch1", cluster: str = "uat", seed: Any = "None") -> dict[str, Any]:
    op = DrillChooseRestorePointOperator(
        task_id="choose_restore_point", cluster=env.cluster(cluster), target=target, seed=seed
    )
    return env.run(op, cluster)  # type: ignore[no-any-return]


def prepare(env: Env, target: str = "scratch1", cluster: str = "uat") -> dict[str, Any]:
    op = DrillPrepareScratchOperator(task_id="prepare_scratch", cluster=env.cluster(cluster), target=target)
    return env.run(op, cluster)  # type: ignore[no-any-return]


def restore(env: Env, target: str = "scratch1") -> dict[str, Any]:
    op = BRRestoreOperator(task_id="restore_to_scratch", plan_task_id="choose_restore_point", target=target)
    return env.run(op)  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------- choose/prepare


def test_choose_plans_the_newest_chain_into_the_configured_scratch(env: Env) -> None:
    seed_chain(env)
    plan = choose(env, target="")
    assert (plan["mode"], plan["target"], plan["restore_ts"]) == ("snapshot", "scratch1", T_INCR)
    assert [s["backup_id"] for s in plan["steps"]] == ["uat-full-1", "uat-incr-1"]
    assert plan["drill_id"].startswith("uat-drill-20261122t030000z-")


@pytest.mark.parametrize("target", ["dev", "nowhere"], ids=["not-scratch", "unknown"])
def test_a_target_not_marked_scratch_is_refused_without_retry(env: Env, target: str) -> None:
    seed_chain(env)
    with pytest.raises(AirflowFailException, match="nothing touched"):
        choose(env, target=target)
    assert "nothing touched" in env.xcom[("choose_restore_point", "error")]
    env.xcom[("choose_restore_point", "return_value")] = {"x": 1}  # whatever: prepare refuses before reading it
    with pytest.raises(AirflowFailException):
        prepare(env, target=target)
    assert env.sql.statements == {} and env.br.calls == []


def test_choose_needs_the_catalog_and_a_restore_point(env: Env) -> None:
    from tidbops.drill import NoRestorePointError

    with pytest.raises(NoRestorePointError, match="no restorable snapshot backup"):
        choose(env)
    env.catalog_down = True
    with pytest.raises(DrillError, match="the catalog does not answer"):
        choose(env)


def test_a_pitr_plan_comes_from_the_log_range_with_a_recorded_seed(env: Env, tmp_path: Path) -> None:
    env.fleet = make_fleet(tmp_path, mode="pitr")
    seed_chain(env)
    now_ts = tso.from_datetime(datetime.now(UTC))
    env.br.log_range = (T_FULL - 1, now_ts)
    # the full backup must lie inside the log range, and be recent enough to draw from the last 10 minutes
    plan = choose(env, seed="42")
    assert plan["mode"] == "pitr" and plan["seed"] == 42 and plan["log_storage_uri"].endswith("/uat/log")
    assert plan["steps"][0]["backup_id"] == "uat-full-1" and plan["restore_ts"] > T_FULL
    assert [argv[1:3] for _, _, argv in env.br.calls] == [["log", "metadata"]]


def test_prepare_takes_the_scratch_and_drops_leftovers(env: Env) -> None:
    seed_chain(env)
    plan = choose(env)
    got = prepare(env)
    assert got["cleared"] == ["old_drill", "shop"] and env.sql.schemas["tidb_scratch1"] == []
    row = env.catalog.get_drill(plan["drill_id"])
    assert row is not None and row.status is DrillStatus.RUNNING and row.target == "scratch1"
    assert row.backups_used == ("uat-full-1", "uat-incr-1") and row.restore_ts == T_INCR
    # another cluster's drill into the same scratch waits (its try fails, retries follow)
    env.xcom.clear()
    env.catalog.start_backup(
        NewBackup(
            id="dev-full-1",
            cluster="dev",
            kind=BackupKind.FULL,
            storage_uri="local:///x/dev/full/dev-full-1",
            started_at=RUN_AT - timedelta(hours=3),
        )
    )
    env.catalog.finish_backup("dev-full-1", backup_ts=T_FULL)
    choose(env, cluster="dev")
    with pytest.raises(ScratchInUseError, match="scratch cluster scratch1 is in use by drill uat-drill-"):
        prepare(env, cluster="dev")
    assert "ScratchInUseError" in env.xcom[("prepare_scratch", "error")]


# ----------------------------------------------------------------------------------------------- restore


def test_restore_runs_the_chain_into_the_scratch_with_the_sources_key(env: Env) -> None:
    seed_chain(env)
    choose(env)
    prepare(env)
    env.sql.schemas["tidb_scratch1"] = ["shop"]  # what a failed earlier try restored
    got = restore(env)
    assert got["cleared"] == ["shop"] and len(got["runs"]) == 2 and got["restore_seconds"] >= 0
    assert [(c, s) for c, s, _ in env.br.calls] == [("scratch1", "uat"), ("scratch1", "uat")]
    argv = env.br.calls[0][2]
    assert argv[1:3] == ["restore", "full"] and argv[argv.index("--pd") + 1] == "pd-scratch1:2379"
    assert argv[argv.index("--crypter.key-file") + 1] == "/run/key-file"
    assert env.br.calls[1][2][env.br.calls[1][2].index("--storage") + 1].endswith("/uat/incr/uat-incr-1")
    assert env.br.versions == [("scratch1", argv[0])], "BR's version checked once, with the br that restores"


def test_a_failed_restore_leaves_its_error_for_the_record(env: Env) -> None:
    seed_chain(env)
    choose(env)
    prepare(env)
    env.br.fail = True
    from tidbops.br.errors import BRError

    with pytest.raises(BRError):
        restore(env)
    assert "ErrKVDownloadFailed" in env.xcom[("restore_to_scratch", "error")]
    op = BRRestoreOperator(task_id="restore_to_scratch", plan_task_id="choose_restore_point", target="scratch1")
    op._br_hook = env.br.hook()(cluster=env.cluster("scratch1"))
    op.on_kill()
    assert env.br.killed


# ---------------------------------------------------------------------------------------------- validate


def report(ok: bool = True) -> ContentReport:
    mismatch = ChunkMismatch(Chunk((200,), (400,)), ("id",), ChunkSum(200, 1), ChunkSum(200, 2))
    orders = TableComparison("shop.orders", ("id",), 600, 600, 3, () if ok else (mismatch,))
    return ContentReport(T_INCR, "history", (TableResult("shop.orders", content=orders),), seconds=1.5)


@pytest.fixture
def validation(env: Env) -> dict[str, Any]:
    """A drill chosen, its scratch prepared and restored; ``validate(env, validation)`` then hands on the validation's
    result as ``ValidateRestoreOperator`` leaves it in XCom: ``report`` (a ``ContentReport``) and ``suites``
    (ran or not) say which."""
    seed_chain(env)
    choose(env)
    prepare(env)
    restore(env)
    return {"report": report(), "suites": True}


def validate(env: Env, validation: dict[str, Any]) -> dict[str, Any]:
    """What the validation step leaves in XCom: its result, and on differences the error the record reads
    (as ``RecoveryStep._reporting`` writes it) and ``AirflowFailException`` (no retry)."""
    from tidbops.recovery.plan import RecoveryPlan
    from tidbops.recovery.validate import Validation, differs, no_suites_note, skipped_suites

    plan_doc = env.xcom[("choose_restore_point", "return_value")]
    if validation["suites"]:
        run = ExpectationsRun((SuiteResult("shop.orders", "shop.orders", True, 9, 9),), None, 2.0)
        uri = f"{env.cluster().storage.uri}/uat/drills/{plan_doc['drill_id']}/data_docs/index.html"
        expectations = {**run.to_dict(uri), "ran": True, "docs_seconds": 0.1}
    else:
        expectations = skipped_suites(no_suites_note("uat"))
    checked = Validation(validation["report"], expectations, 0.5)
    result = {**checked.to_dict(), "seconds": 3.0}
    env.xcom[("validate_restored_data", "return_value")] = result
    if checked.failures():
        from tidbops.drill import DrillPlan

        plan: RecoveryPlan = DrillPlan.from_dict(plan_doc)
        message = differs(plan, checked.failures())
        env.xcom[("validate_restored_data", "error")] = f"AirflowFailException: {message}"
        raise AirflowFailException(message)
    return result


# ------------------------------------------------------------------------------------ drop, record, gate


def drop(env: Env, target: str = "scratch1") -> dict[str, Any]:
    return env.run(DrillDropScratchOperator(task_id="drop_scratch", cluster=env.cluster(), target=target))  # type: ignore[no-any-return]


def record(env: Env, target: str = "scratch1") -> dict[str, Any]:
    return env.run(DrillRecordOperator(task_id="record_drill", cluster=env.cluster(), target=target))  # type: ignore[no-any-return]


def gate(env: Env) -> dict[str, Any]:
    return env.run(DrillGateOperator(task_id="assert_drill_passed", cluster=env.cluster()))  # type: ignore[no-any-return]


def test_drop_only_what_this_drill_took(env: Env) -> None:
    got = drop(env)
    assert got == {"target": None, "dropped": [], "dropped_ok": False, "reason": "the scratch was never taken"}
    assert env.sql.statements == {}
    env.xcom[("prepare_scratch", "return_value")] = {"target": "scratch1"}
    assert drop(env)["dropped"] == ["old_drill", "shop"]
    env.xcom[("prepare_scratch", "return_value")] = {"target": "dev"}
    with pytest.raises(AirflowFailException, match="not marked scratch"):
        drop(env, target="dev")


def test_a_whole_drill_is_recorded_and_the_gate_opens(env: Env, validation: dict[str, Any]) -> None:
    validate(env, validation)
    drop(env)
    got = record(env)
    assert got["passed"] and got["scratch_dropped"] and got["rto_seconds"] is not None
    assert "PASSED" in got["summary"] and got["mismatches"] == 0 and got["gx_success_ratio"] == 1.0
    row = env.catalog.get_drill(got["drill_id"])
    assert row is not None and row.status is DrillStatus.PASSED and row.rows_checked == 600
    assert row.report_uri == f"{env.cluster().storage.uri}/uat/drills/{row.id}/drill.json"
    report_doc = json.loads(env.storage.read_bytes(f"uat/drills/{row.id}/drill.json"))
    assert report_doc["status"] == "passed" and report_doc["backups_used"] == ["uat-full-1", "uat-incr-1"]
    assert gate(env) == {"passed": True, "drill_id": row.id}
    assert env.catalog.list_drills(target="scratch1", status=DrillStatus.RUNNING) == [], "the scratch is given back"


def test_a_finished_drill_is_an_event_of_its_asset_with_id_point_and_size(env: Env, validation: dict[str, Any]) -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from tidbops_airflow.assets import drills_asset

    validate(env, validation)
    drop(env)
    for n, backup_id in enumerate(("uat-full-1", "uat-incr-1"), 1):
        env.catalog.record_manifest(backup_id, f"s3://b/{backup_id}/tidbops-manifest.json", size_bytes=1000 * n)
    asset = drills_asset("uat")
    op = DrillRecordOperator(task_id="record_drill", cluster=env.cluster(), target="scratch1", outlets=[asset])
    ctx = env.context("record_drill")
    ctx["outlet_events"] = events = OutletEventAccessors()
    got = op.execute(ctx)  # type: ignore[arg-type]
    assert asset.uri == "x-tidb://uat/drills"
    extra = events[asset].extra
    sizes = [env.catalog.get(b).size_bytes for b in got["backups_used"]]  # type: ignore[union-attr]
    assert extra == {
        "drill_id": got["drill_id"], "cluster": "uat", "target": "scratch1", "mode": "snapshot", "status": "passed",
        "restore_ts": got["restore_ts"], "restore_time": datetime.fromisoformat(got["restore_time"]).isoformat(),
        "size_bytes": 3000, "rto_seconds": got["rto_seconds"], "backups_used": ["uat-full-1", "uat-incr-1"],
    }  # fmt: skip
    assert sizes == [1000, 2000]


@pytest.mark.parametrize("passed", [True, False])
def test_record_reads_each_step_of_its_dag_once_and_only_a_failed_steps_error(
    env: Env, validation: dict[str, Any], passed: bool
) -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from tidbops_airflow.drill_dag import build_restore_drill_dag

    env.xcom[("check_drill_due", "return_value")] = {"due": True, "started_at": RUN_AT.isoformat(), "basis": {}}
    if not passed:
        validation["report"] = report(ok=False)
    with contextlib.suppress(AirflowFailException):
        validate(env, validation)
    drop(env)
    op = build_restore_drill_dag("tidb_restore_drill", env.cluster(), env.fleet, doc_md=None).get_task("record_drill")
    op.target = "scratch1"  # what its template renders to
    ctx = env.context("record_drill")
    ctx["outlet_events"] = OutletEventAccessors()
    got = op.execute(ctx)  # type: ignore[arg-type]
    assert got["passed"] is passed and (passed or "shop.orders: (id) in (200, 400]" in got["error"])
    snapshot = [t for t in STEP_TASKS.values() if t != "wait_for_log_checkpoint"]  # a PITR drill's only
    failed = [] if passed else [("validate_restored_data", "error")]
    assert ctx["ti"].pulls == [(t, "return_value") for t in snapshot] + failed


def test_a_failed_drill_is_recorded_with_its_error_and_the_gate_stays_shut(
    env: Env, validation: dict[str, Any]
) -> None:
    validation["report"] = report(ok=False)
    with pytest.raises(AirflowFailException):
        validate(env, validation)
    drop(env)
    got = record(env)
    assert not got["passed"] and "shop.orders: (id) in (200, 400]" in got["error"]
    row = env.catalog.get_drill(got["drill_id"])
    assert row is not None and row.status is DrillStatus.FAILED and row.mismatches == 1
    assert row.details and row.details["failures"] == [
        "shop.orders: (id) in (200, 400]: 200 rows on both sides, contents differ"
    ]
    with pytest.raises(AirflowFailException, match="restore drill of uat FAILED"):
        gate(env)


def test_record_without_a_catalog_still_writes_the_report_and_a_refused_drill_says_why(env: Env) -> None:
    env.catalog_down = True
    env.xcom[("choose_restore_point", "error")] = "AirflowFailException: target 'dev' is not marked scratch: true"
    got = record(env, target="dev")
    assert not got["passed"] and "not marked scratch" in got["error"]
    assert got["notes"] == ["catalog unavailable: continuing without it"]
    assert json.loads(env.storage.read_bytes(f"uat/drills/{got['drill_id']}/drill.json"))["status"] == "failed"


def test_the_gate_wants_the_scratch_dropped(env: Env) -> None:
    env.xcom[("record_drill", "return_value")] = {"passed": True, "scratch_dropped": False, "target": "scratch1"}
    with pytest.raises(AirflowFailException, match="scratch cluster scratch1 still holds the restored data"):
        gate(env)


# ------------------------------------------------------------------------------ #16: due, basis, holds, tier 3

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


class Task:
    """``context["task"]``: what the check skips when no drill is due."""

    def get_flat_relatives(self, upstream: bool = False) -> list[SimpleNamespace]:
        return [SimpleNamespace(task_id="choose_restore_point"), SimpleNamespace(task_id="record_drill")]


def check(env: Env, monkeypatch: pytest.MonkeyPatch, *, run_type: str = "manual", schedule: str | None = None,
          tidb: Any = "v8.5.1", br: Any = "v8.5.1", key: Any = KEY) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    from tidbops_airflow.operators.drill import DrillCheckDueOperator

    def read(value: Any) -> Any:
        def reader(self: Any) -> Any:
            if isinstance(value, Exception):
                raise value
            return value() if callable(value) else value

        return reader

    monkeypatch.setattr(DrillCheckDueOperator, "_tidb_version", read(tidb))
    monkeypatch.setattr(DrillCheckDueOperator, "_br_version", read(br))
    monkeypatch.setattr(DrillCheckDueOperator, "_key_hex", read(key))
    skipped: list[str] = []
    monkeypatch.setattr(DrillCheckDueOperator, "skip", lambda self, ti, tasks: skipped.extend(t.task_id for t in tasks))
    cluster = env.cluster()
    cluster = cluster.model_copy(update={"schedules": cluster.schedules.model_copy(update={"drill": schedule})})
    op = DrillCheckDueOperator(task_id="check_drill_due", cluster=cluster)
    ctx = env.context(op.task_id)
    ctx["dag_run"].run_type = run_type
    ctx["task"] = Task()
    result = op.execute(ctx)
    env.xcom[(op.task_id, "return_value")] = result
    return result, skipped


def test_the_check_reads_the_basis_and_a_manual_run_is_due(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from tidbops.freshness import OBSERVED_EVENT, key_id

    got, skipped = check(env, monkeypatch)
    assert got["due"] and got["reason"] == "a manual run" and skipped == []
    assert got["basis"] == {
        "tidb_version": "v8.5.1", "br_version": "v8.5.1", "encryption_method": "aes256-ctr",
        "encryption_key_id": key_id("key_uat", KEY), "storage_uri": env.cluster().storage.uri,
    }  # fmt: skip
    assert KEY not in json.dumps(got) and KEY[:12] not in json.dumps(got)
    seen = env.catalog.list_events("uat", kind=OBSERVED_EVENT)
    assert len(seen) == 1 and seen[0].details["basis"] == got["basis"]
    check(env, monkeypatch)  # the same basis again: no second event
    assert len(env.catalog.list_events("uat", kind=OBSERVED_EVENT)) == 1


def test_the_drill_is_named_and_timed_by_when_its_run_really_started(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """check_drill_due fixes the run's real start; every later step names the drill by it, even after the run
    was cleared and Airflow gave it a new start_date."""
    seed_chain(env)
    got, _ = check(env, monkeypatch, run_type="scheduled", schedule="0 3 * * 0")
    assert got["started_at"] == RUN_AT.isoformat()
    env.xcom[("check_drill_due", "return_value")] = got
    real_context = env.context
    env.context = lambda task_id, cluster="uat": _restarted(real_context(task_id, cluster))  # type: ignore[method-assign]
    plan = choose(env)
    assert plan["drill_id"].startswith(f"uat-drill-{RUN_AT:%Y%m%dt%H%M%S}z-")
    prepare(env)
    row = env.catalog.get_drill(plan["drill_id"])  # the running row that holds the scratch
    assert row is not None and row.started_at == RUN_AT


def _restarted(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx["dag_run"].start_date = RUN_AT + timedelta(hours=5)  # the run cleared and started again
    ctx["dag_run"].logical_date = RUN_AT - timedelta(hours=9)  # its slot
    return ctx


def test_the_check_runs_br_version_while_it_reads_tidb(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """``br -V`` is a process: the TiDB version is read meanwhile (here the TiDB read waits for BR to start)."""
    import threading

    started = threading.Event()

    def br_version() -> str:
        started.set()
        return "v8.5.1"

    def tidb_version() -> str:
        if not started.wait(timeout=10):
            raise TimeoutError("br -V did not run alongside")
        return "v8.5.2"

    got, _ = check(env, monkeypatch, tidb=tidb_version, br=br_version)
    assert (got["basis"]["tidb_version"], got["basis"]["br_version"], got["notes"]) == ("v8.5.2", "v8.5.1", [])


def test_what_the_check_cannot_read_is_unknown_not_a_failure(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    got, _ = check(env, monkeypatch, tidb=ConnectionError("tidb_uat does not answer"),
                   br=FileNotFoundError("br"), key="not-hex")  # fmt: skip
    assert got["due"] and got["basis"]["tidb_version"] is None and got["basis"]["br_version"] is None
    assert got["basis"]["encryption_key_id"] == "key_uat"
    assert any("TiDB version not read: ConnectionError" in n for n in got["notes"])
    assert any("BR version not read: FileNotFoundError" in n for n in got["notes"])
    assert any("crypter key" in n for n in got["notes"]) and "not-hex" not in json.dumps(got)
    env.catalog_down = True
    with pytest.raises(DrillError, match="whether a drill is due is read from it"):
        check(env, monkeypatch)


def test_a_scheduled_check_skips_the_drill_unless_due(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from tidbops.catalog.records import DrillRecord

    basis, _ = check(env, monkeypatch)
    now = datetime.now(UTC)
    env.catalog.save_drill(
        DrillRecord(id="uat-drill-1", cluster="uat", target="scratch1", mode="snapshot", status=DrillStatus.PASSED,
                    started_at=now - timedelta(minutes=5), finished_at=now, basis=basis["basis"])
    )  # fmt: skip
    got, skipped = check(env, monkeypatch, run_type="scheduled", schedule="0 0 1 1 *")
    assert not got["due"] and skipped == ["choose_restore_point", "record_drill"]
    assert env.xcom[("check_drill_due", "return_value")]["due"] is False
    got, skipped = check(env, monkeypatch, run_type="scheduled", schedule="0 0 1 1 *", tidb="v8.5.2")
    assert got["due"] and skipped == [] and "TiDB version v8.5.1 → v8.5.2" in got["reason"]
    assert got["freshness"]["status"] == "stale"


def test_choose_holds_the_backups_and_record_marks_tier_3_and_releases_them(
    env: Env, validation: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = env.xcom[("choose_restore_point", "return_value")]
    held = env.catalog.held_backups("uat")
    assert held == {"uat-full-1": [plan["drill_id"]], "uat-incr-1": [plan["drill_id"]]}
    basis, _ = check(env, monkeypatch)
    validate(env, validation)
    drop(env)
    got = record(env)
    assert got["passed"] and got["basis"] == basis["basis"]
    row = env.catalog.get_drill(got["drill_id"])
    assert row is not None and row.basis == basis["basis"]
    assert [env.catalog.get(b).verified_tier for b in row.backups_used] == [3, 3]  # type: ignore[union-attr]
    assert env.catalog.held_backups("uat") == {}


def test_a_failed_drill_releases_its_holds_and_a_mismatch_fails_tier_3(env: Env, validation: dict[str, Any]) -> None:
    validation["report"] = report(ok=False)
    with pytest.raises(AirflowFailException):
        validate(env, validation)
    drop(env)
    got = record(env)
    assert not got["passed"] and got["details"]["tier3"]["ok"] is False
    assert [env.catalog.get(b).verify_failed for b in got["backups_used"]] == [True, True]  # type: ignore[union-attr]
    assert env.catalog.held_backups("uat") == {}


def test_a_cluster_without_suites_passes_on_content_and_says_so(env: Env, validation: dict[str, Any]) -> None:
    validation["suites"] = False
    got = validate(env, validation)
    assert got["ok"] and got["expectations"]["ran"] is False
    drop(env)
    rec = record(env)
    assert rec["passed"] and rec["caveats"] == ["no expectation suites for uat: expectations did not run"]
    assert rec["summary"].endswith("; CAVEAT: no expectation suites for uat: expectations did not run")
    assert rec["details"]["expectations_ran"] is False
