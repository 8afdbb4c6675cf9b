"""The pure parts of restore drills: target refusal, restore point choice, BR argv, verdicts, records."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tidbops import tso
from tidbops.backup import RunInfo
from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus, DrillRecord, DrillStatus, make_drill_id
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig, DrillConfig, EncryptionConfig, StorageConfig
from tidbops.drill import (
    DrillError,
    DrillPlan,
    HistoryGoneError,
    NoRestorePointError,
    NotScratchError,
    RestoreStep,
    check_history,
    choose_pitr,
    choose_snapshot,
    clear_scratch,
    drill_dir,
    drill_id_for,
    drill_record,
    history_time,
    plan_drill,
    record_drill,
    record_to_dict,
    restore_argvs,
    run_restore,
    scratch_target,
    seed_for,
    source_read,
    summary_line,
    verdict,
)
from tidbops.pitr import LogRange, compute_window
from tidbops.storage import LocalStorage
from tidbops.validate.sql import Dialect

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
RUN = RunInfo(dag_id="tidb_restore_drill__uat", run_id="scheduled__2026-11-22", try_number=1, started_at=T0)


def source(mode: str = "snapshot", encrypted: bool = True) -> ClusterConfig:
    return ClusterConfig(
        name="uat",
        env="uat",
        pd=("pd-uat:2379",),
        tidb_conn_id="tidb_uat",
        storage=StorageConfig(uri="s3://backups/tidb", endpoint="http://minio:9000"),
        br=BRConfig(encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="key_uat") if encrypted else None),
        drill=DrillConfig(target="scratch1", mode=mode),  # type: ignore[arg-type]
    )


def scratch(name: str = "scratch1", is_scratch: bool = True) -> ClusterConfig:
    return ClusterConfig(
        name=name,
        env="scratch" if is_scratch else "dev",
        pd=(f"pd-{name}:2379",),
        tidb_conn_id=f"tidb_{name}",
        storage=StorageConfig(uri="s3://scratch-unused"),
        scratch=is_scratch,
        br=BRConfig(ratelimit_mib=64),
    )


def ts(hours: float) -> int:
    return tso.from_datetime(T0 + timedelta(hours=hours))


def backup(
    backup_id: str, hours: float, kind: BackupKind = BackupKind.FULL, base: str | None = None, **kw: Any
) -> BackupRecord:
    short = "full" if kind is BackupKind.FULL else "incr"
    defaults: dict[str, Any] = {
        "status": BackupStatus.SUCCEEDED,
        "verified": True,
        "verified_at": T0 + timedelta(hours=hours, minutes=5),
        "backup_ts": ts(hours),
        "backup_time": tso.to_datetime(ts(hours)),
    }
    defaults.update(kw)
    return BackupRecord(
        id=backup_id,
        cluster="uat",
        kind=kind,
        storage_uri=f"s3://backups/tidb/uat/{short}/{backup_id}",
        started_at=T0 + timedelta(hours=hours),
        base_backup_id=base,
        last_backup_ts=None if base is None else ts(hours - 1),
        **defaults,
    )


CHAIN = [
    backup("uat-full-1", 0),
    backup("uat-incr-1", 1, BackupKind.INCREMENTAL, "uat-full-1"),
    backup("uat-incr-2", 2, BackupKind.INCREMENTAL, "uat-incr-1"),
]


# ----------------------------------------------------------------------------------------- target


def test_only_a_cluster_marked_scratch_is_a_target() -> None:
    clusters = {"uat": source(), "scratch1": scratch(), "dev": scratch("dev", is_scratch=False)}
    assert scratch_target(clusters, source()).name == "scratch1"
    assert scratch_target(clusters, source(), "  ").name == "scratch1"  # an empty run param: the config's
    with pytest.raises(NotScratchError, match=r"'dev' is not marked scratch: true .*\(nothing touched\)"):
        scratch_target(clusters, source(), "dev")
    with pytest.raises(NotScratchError, match="'nope' is not a cluster of the fleet config"):
        scratch_target(clusters, source(), "nope")
    with pytest.raises(NotScratchError, match="no target"):
        scratch_target(clusters, source().model_copy(update={"drill": DrillConfig()}))


class FakeCursor:
    def __init__(self, schemas: list[str]) -> None:
        self.schemas = schemas
        self.statements: list[str] = []

    def execute(self, query: str, args: Any = None) -> None:
        self.statements.append(query)

    def fetchall(self) -> list[tuple[str]]:
        return [(s,) for s in self.schemas]

    def fetchone(self) -> Any:
        return None


def test_clear_scratch_drops_every_database_but_the_servers_own() -> None:
    cur = FakeCursor(["INFORMATION_SCHEMA", "crm", "metrics_schema", "mysql", "shop", "test", "tidbops_x"])
    assert clear_scratch(cur, scratch(), source="uat") == ["crm", "shop", "test", "tidbops_x"]
    assert cur.statements[1:] == [
        "SET FOREIGN_KEY_CHECKS = 0",
        "DROP DATABASE IF EXISTS `crm`",
        "DROP DATABASE IF EXISTS `shop`",
        "DROP DATABASE IF EXISTS `test`",
        "DROP DATABASE IF EXISTS `tidbops_x`",
        "SET FOREIGN_KEY_CHECKS = 1",
    ]


def test_clear_scratch_refuses_before_any_statement() -> None:
    cur = FakeCursor(["shop"])
    with pytest.raises(NotScratchError):
        clear_scratch(cur, scratch("dev", is_scratch=False), source="uat")
    assert cur.statements == []


# ---------------------------------------------------------------------------------- restore point


def test_snapshot_drill_restores_the_newest_verified_chain_in_order() -> None:
    steps, point, reason = choose_snapshot(CHAIN)
    assert [(s.kind, s.backup_id) for s in steps] == [
        ("full", "uat-full-1"),
        ("incremental", "uat-incr-1"),
        ("incremental", "uat-incr-2"),
    ]
    assert point == ts(2) and steps[-1].storage_uri == "s3://backups/tidb/uat/incr/uat-incr-2"
    assert "uat-incr-2" in reason and "2 incremental(s)" in reason


def test_snapshot_drill_prefers_verified_and_skips_what_failed_verification() -> None:
    unverified = [
        *CHAIN,
        backup("uat-incr-3", 3, BackupKind.INCREMENTAL, "uat-incr-2", verified=False, verified_at=None),
    ]
    _, point, reason = choose_snapshot(unverified)
    assert point == ts(2) and "uat-incr-3 is not verified yet" in reason
    bad = [*CHAIN[:2], replace(CHAIN[2], verified=False)]  # verified_at set, verified False: failed verification
    assert choose_snapshot(bad)[1] == ts(1)
    only_unverified = [replace(CHAIN[0], verified=False, verified_at=None)]
    assert "not verified against its manifest yet" in choose_snapshot(only_unverified)[2]


@pytest.mark.parametrize(
    "backups",
    [[], [replace(CHAIN[0], status=BackupStatus.FAILED, backup_ts=None)], CHAIN[1:]],
    ids=["none", "failed-full", "broken-chain"],
)
def test_nothing_restorable_is_said_so(backups: list[BackupRecord]) -> None:
    with pytest.raises(NoRestorePointError, match="no restorable snapshot backup"):
        choose_snapshot(backups)


def window(hours_of_log: float = 3) -> Any:
    log = LogRange(ts(-0.5), ts(hours_of_log))
    return compute_window("uat", CHAIN, log)


def test_pitr_point_is_drawn_with_its_seed_from_the_recent_end_of_the_window() -> None:
    now = T0 + timedelta(hours=3)
    step, point, reason = choose_pitr(window(), now, seed=42)
    assert (step, point) == choose_pitr(window(), now, seed=42)[:2]  # reproducible
    assert ts(3) - tso.compose(10 * 60 * 1000) <= point <= ts(3)
    assert step.kind == "point" and step.backup_id == "uat-full-1" and "seed 42" in reason
    others = {choose_pitr(window(), now, seed=s)[1] for s in range(20)}
    assert len(others) > 10


def test_pitr_point_after_the_checkpoint_says_the_drill_waits() -> None:
    now = T0 + timedelta(hours=3)
    _, point, reason = choose_pitr(window(hours_of_log=2.9), now, seed=7)
    assert point > ts(2.9) and "the log checkpoint" in reason and "must pass it first" in reason


def test_pitr_needs_a_window() -> None:
    no_window = compute_window("uat", CHAIN, LogRange(ts(5), ts(6)))  # the log started after every full backup
    with pytest.raises(NoRestorePointError, match="no PITR window for uat"):
        choose_pitr(no_window, T0 + timedelta(hours=6), seed=1)


def test_plans_round_trip_and_carry_what_the_steps_need() -> None:
    snap = plan_drill(source(), scratch(), RUN, T0, backups=CHAIN)
    assert (
        snap.drill_id == drill_id_for(source(), RUN) == make_drill_id("uat", T0, dag_id=RUN.dag_id, run_id=RUN.run_id)
    )
    assert snap.backups_used == ("uat-full-1", "uat-incr-1", "uat-incr-2") and snap.seed is None
    assert DrillPlan.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
    now = T0 + timedelta(hours=3)
    pitr = plan_drill(source("pitr"), scratch(), RUN, now, backups=CHAIN, window=window())
    assert pitr.seed == seed_for(pitr.drill_id) and pitr.log_storage_uri == "s3://backups/tidb/uat/log"
    assert pitr.steps[0].storage_uri == "s3://backups/tidb/uat/full/uat-full-1"
    assert DrillPlan.from_dict(pitr.to_dict()) == pitr
    assert plan_drill(source("pitr"), scratch(), RUN, now, backups=CHAIN, window=window(), seed=5).seed == 5
    with pytest.raises(NoRestorePointError, match="needs its PITR window"):
        plan_drill(source("pitr"), scratch(), RUN, now, backups=CHAIN)
    with pytest.raises(NotScratchError):
        plan_drill(source(), scratch("dev", is_scratch=False), RUN, T0, backups=CHAIN)
    with pytest.raises(ValueError, match="one 'point' step"):
        replace(pitr, log_storage_uri=None)


# ----------------------------------------------------------------------------------------- restore


def test_snapshot_restore_argv_reads_the_source_backups_into_the_scratch() -> None:
    plan = plan_drill(source(), scratch(), RUN, T0, backups=CHAIN)
    argvs = restore_argvs(plan, target=scratch(), source=source(), log_file="/tmp/br.log", crypter_key_file="/k")
    assert len(argvs) == 3
    first = argvs[0]
    assert first[:3] == ["br", "restore", "full"]
    assert first[first.index("--pd") + 1] == "pd-scratch1:2379"  # into the scratch
    assert first[first.index("--storage") + 1] == "s3://backups/tidb/uat/full/uat-full-1"
    assert first[first.index("--s3.endpoint") + 1] == "http://minio:9000"  # the source's storage options
    assert first[first.index("--crypter.method") + 1] == "aes256-ctr"  # the source's encryption
    assert first[first.index("--crypter.key-file") + 1] == "/k" and "--crypter.key" not in first
    assert first[first.index("--ratelimit") + 1] == "64"  # the target's BR options
    assert [a[a.index("--storage") + 1].rsplit("/", 1)[1] for a in argvs] == list(plan.backups_used)
    with pytest.raises(NotScratchError):
        restore_argvs(plan, target=scratch("dev", is_scratch=False), source=source())
    with pytest.raises(DrillError, match="the plan is uat → scratch1"):
        restore_argvs(plan, target=scratch("scratch2"), source=source(), crypter_key_file="/k")


def test_pitr_restore_argv_is_one_restore_point_to_the_drawn_ts() -> None:
    plan = plan_drill(source("pitr"), scratch(), RUN, T0 + timedelta(hours=3), backups=CHAIN, window=window())
    (argv,) = restore_argvs(plan, target=scratch(), source=source("pitr"), crypter_key_file="/k")
    assert argv[:3] == ["br", "restore", "point"]
    assert argv[argv.index("--storage") + 1] == "s3://backups/tidb/uat/log"
    assert argv[argv.index("--full-backup-storage") + 1] == "s3://backups/tidb/uat/full/uat-full-1"
    assert argv[argv.index("--restored-ts") + 1] == str(plan.restore_ts)
    assert "--start-ts" not in argv and argv[argv.index("--crypter.key-file") + 1] == "/k"


def test_run_restore_times_every_step_and_stops_at_the_first_failure() -> None:
    plan = plan_drill(source(), scratch(), RUN, T0, backups=CHAIN)
    ticks = iter(range(100))

    class Result:
        seconds = 0.5
        outcome = parse_br_output('["Full Restore success summary"] [total-kv=12]')

    ran: list[list[str]] = []
    outcome = run_restore(
        plan, [["a"], ["b"], ["c"]], lambda argv: ran.append(argv) or Result(), clock=lambda: float(next(ticks))
    )
    assert ran == [["a"], ["b"], ["c"]] and outcome.seconds == 7.0
    assert [r["backup_id"] for r in outcome.runs] == list(plan.backups_used)
    assert outcome.runs[0]["seconds"] == 1.0 and outcome.runs[0]["br_seconds"] == 0.5
    assert outcome.to_dict()["restore_seconds"] == 7.0

    def fail(argv: list[str]) -> Any:
        raise BRError(
            exit_code=1, outcome=parse_br_output("Error: boom: [BR:KV:ErrKVDownloadFailed]download sst failed")
        )

    with pytest.raises(BRError, match="ErrKVDownloadFailed"):
        run_restore(plan, [["a"], ["b"], ["c"]], fail)
    with pytest.raises(DrillError, match="2 command lines for 3 restore steps"):
        run_restore(plan, [["a"], ["b"]], fail)


# ----------------------------------------------------------------------------------------- history


def test_history_time_covers_the_tso_logical_part_as_microseconds() -> None:
    t = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
    assert history_time(tso.from_datetime(t)) == t
    assert history_time(tso.compose(tso.physical_ms(tso.from_datetime(t)), 456)) == t + timedelta(microseconds=456)
    assert history_time(tso.compose(tso.physical_ms(tso.from_datetime(t)), 5000)) == t + timedelta(microseconds=999)


def test_the_source_is_read_at_the_exact_point_on_each_server() -> None:
    point = tso.compose(tso.physical_ms(tso.from_datetime(T0)), 7)
    tidb = source_read(Dialect.TIDB, point)
    assert tidb.at is None and tidb.setup == (f"SET @@tidb_snapshot = '{point}'",) and tidb.teardown
    maria = source_read(Dialect.MARIADB, point)
    assert (
        maria.at == T0 + timedelta(microseconds=7)
        and maria.setup == ()
        and "FOR SYSTEM_TIME AS OF" in maria.description
    )
    with pytest.raises(HistoryGoneError, match="keeps no history"):
        source_read(Dialect.MYSQL, point)


def test_a_point_older_than_the_gc_safepoint_fails_saying_why() -> None:
    check_history("uat", ts(1), None)
    check_history("uat", ts(1), T0 + timedelta(minutes=59))
    with pytest.raises(HistoryGoneError) as err:
        check_history("uat", ts(1), T0 + timedelta(hours=2), 600)
    text = str(err.value)
    assert "older than uat's GC safepoint 2026-11-22T03:00:00.000Z" in text and "tidb_gc_life_time 10m" in text
    assert "history is gone" in text


# -------------------------------------------------------------------------------- verdict, record

GOOD = {
    "choose": {"mode": "snapshot", "target": "scratch1", "restore_ts": ts(2), "reason": "newest", "steps": [
        {"backup_id": "uat-full-1"}, {"backup_id": "uat-incr-1"}]},
    "prepare": {"target": "scratch1", "cleared": ["shop"]},
    "restore": {"restore_seconds": 12.5, "runs": [{"kind": "full"}]},
    "validate": {
        "ok": True, "tables_checked": 7, "rows_checked": 3000, "mismatches": 0, "seconds": 4.25, "failures": [],
        "tables": [{"table": "shop.orders", "ok": True}], "source_read": "history",
        "expectations": {"ok": True, "evaluated": 50, "success_ratio": 1.0, "failures": [], "suites": [],
                         "data_docs_uri": "s3://backups/tidb/uat/drills/x/data_docs/index.html"},
    },
    "drop": {"dropped": ["shop"], "dropped_ok": True},
}  # fmt: skip


def test_a_drill_passes_only_when_every_step_finished_and_nothing_differs() -> None:
    assert verdict(GOOD, {}).status is DrillStatus.PASSED
    bad_rows = {
        **GOOD,
        "validate": {**GOOD["validate"], "ok": False, "failures": ["shop.orders: (id) in (200, 400]: x"]},
    }
    v = verdict(bad_rows, {"validate": "AirflowFailException: …"})
    assert v.status is DrillStatus.FAILED and v.error and v.error.startswith("validate: AirflowFailException")
    assert v.failures == ("shop.orders: (id) in (200, 400]: x",)
    v = verdict({**bad_rows}, {})
    assert v.error == "validate: shop.orders: (id) in (200, 400]: x"
    no_restore = {**GOOD, "restore": None, "validate": None}
    assert verdict(no_restore, {"restore": "BRError: [BR:KV:ErrKVDownloadFailed]"}).error == (
        "restore: BRError: [BR:KV:ErrKVDownloadFailed]"
    )
    assert verdict(no_restore, {}).error == "restore: did not finish (no result)"
    assert verdict({**GOOD, "drop": None}, {"drop": "x"}).status is DrillStatus.PASSED  # dropping is not the verdict
    pitr_steps = ("choose", "wait", "prepare", "restore", "validate")
    assert verdict(GOOD, {}, pitr_steps).error == "wait: did not finish (no result)"
    gx = {**GOOD, "validate": {**GOOD["validate"], "ok": False, "expectations": {"failures": ["shop.orders: fresh"]}}}
    assert verdict(gx, {}).error == "validate: expectations: shop.orders: fresh"


def test_the_record_carries_the_rto_and_what_was_checked(tmp_path: Path) -> None:
    now = T0 + timedelta(minutes=3)
    record = drill_record(
        source(), RUN, GOOD, {}, target="scratch1", report_uri="s3://b/uat/drills/x/drill.json", now=now
    )
    assert record.status is DrillStatus.PASSED and record.id == drill_id_for(source(), RUN)
    assert record.backups_used == ("uat-full-1", "uat-incr-1") and record.restore_ts == ts(2)
    assert (record.restore_seconds, record.validation_seconds, record.rto_seconds) == (12.5, 4.25, 16.75)
    assert (record.tables_checked, record.rows_checked, record.mismatches) == (7, 3000, 0)
    assert record.gx_success_ratio == 1.0 and record.scratch_dropped is True
    assert record.data_docs_uri == "s3://backups/tidb/uat/drills/x/data_docs/index.html"
    line = summary_line(record)
    assert "PASSED" in line and "RTO 16.75s (restore 12.5s + validation 4.25s)" in line and "3000 rows" in line
    failed = drill_record(source(), RUN, {"choose": None}, {"choose": "NotScratchError: 'uat' is not marked scratch"},
                          target="uat", report_uri=None, now=now)  # fmt: skip
    assert failed.status is DrillStatus.FAILED and failed.target == "uat" and failed.rto_seconds is None
    assert failed.scratch_dropped is False and "FAILED" in summary_line(failed)
    assert drill_dir("uat", record.id) == f"uat/drills/{record.id}"

    # recorded: the catalog row, and drill.json in storage; a catalog outage loses neither the report nor the run
    storage = LocalStorage(tmp_path / "store")
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    saved, notes = record_drill(record, storage=storage, catalog=catalog)
    assert notes == tuple(f"{b}: not marked at tier 3: backup {b!r} is not in the catalog" for b in record.backups_used)
    assert saved.status is DrillStatus.PASSED and catalog.get_drill(record.id) == saved
    assert json.loads(storage.read_bytes("drill.json"))["rto_seconds"] == 16.75
    assert record_to_dict(saved)["passed"] is True
    saved, notes = record_drill(failed, storage=None, catalog=None)
    assert saved is failed and notes == ("catalog unavailable: continuing without it",)


def test_drill_records_refuse_what_the_catalog_cannot_hold() -> None:
    base = DrillRecord(
        id="uat-drill-x", cluster="uat", target="scratch1", mode="snapshot", status="running", started_at=T0
    )
    assert base.status is DrillStatus.RUNNING and base.holds_target
    with pytest.raises(ValueError, match="drill mode"):
        replace(base, mode="weekly")
    with pytest.raises(ValueError, match="gx_success_ratio"):
        replace(base, gx_success_ratio=1.5)
    with pytest.raises(ValueError, match="must not carry credentials"):
        replace(base, data_docs_uri="s3://b/x?access-key=AKIA")
    with pytest.raises(ValueError, match="has no time zone"):
        replace(base, started_at=T0.replace(tzinfo=None))
    assert (
        RestoreStep.from_dict({"kind": "full", "backup_id": "a", "storage_uri": "s3://b/a", "backup_ts": 1}).kind
        == "full"
    )
    with pytest.raises(ValueError, match="not full, incremental or point"):
        RestoreStep.from_dict({"kind": "log", "backup_id": "a", "storage_uri": "s", "backup_ts": 1})


def test_an_error_an_earlier_try_left_does_not_fail_a_step_that_then_succeeded() -> None:
    assert verdict(GOOD, {"restore": "BRError: from try 1", "choose": "x"}).status is DrillStatus.PASSED
    not_ok = {**GOOD, "validate": {**GOOD["validate"], "ok": False}}
    assert verdict(not_ok, {"validate": "AirflowFailException: shop.orders"}).error == (
        "validate: AirflowFailException: shop.orders"
    )


# ------------------------------------------------------------------------------ source fingerprints


def test_recorded_fingerprints_round_trip_with_typed_key_bounds() -> None:
    from datetime import date
    from decimal import Decimal

    from tidbops.drill import RecordedTable, SourceFingerprints, fingerprints_path
    from tidbops.validate.fingerprint import Chunk, ChunkSum
    from tidbops.validate.schema import Column, Index, TableDef

    table = TableDef(
        "shop",
        "t",
        (Column("k", 1, "varbinary(8)", False), Column("d", 2, "decimal(5,2)", False)),
        (Index("PRIMARY", True, ("k", "d")),),
    )
    bounds = [
        (None, (b"\x00\xff", Decimal("1.50"))),
        ((b"\x00\xff", Decimal("1.50")), (datetime(2026, 1, 2, 3, 4, 5, 6), date(2026, 1, 2))),
        ((7, 2.5, "x", timedelta(seconds=90), None), None),
    ]
    recorded = SourceFingerprints(
        "uat",
        "uat-full-1",
        ts(1),
        T0,
        100,
        "history",
        (
            RecordedTable(table, tuple((Chunk(lo, hi), ChunkSum(i, i * 7)) for i, (lo, hi) in enumerate(bounds))),
            RecordedTable(replace(table, name="u"), None),
        ),
        1.5,
        ("budget reached",),
    )
    again = SourceFingerprints.from_bytes(recorded.to_bytes())
    assert again == recorded and again.rows == 3 and again.fingerprinted == 1
    assert again.summary()["chunks"] == 3
    assert fingerprints_path("uat", "uat-full-1") == "uat/drills/fingerprints/uat-full-1.json"
    with pytest.raises(DrillError, match="version 2; this code reads 1"):
        SourceFingerprints.from_bytes(recorded.to_bytes().replace(b'"version": 1', b'"version": 2'))


def test_gone_history_falls_back_to_the_fingerprints_recorded_after_the_backup(monkeypatch: pytest.MonkeyPatch) -> None:
    import tidbops.drill as drill

    def gone(*a: Any, **kw: Any) -> Any:
        raise HistoryGoneError("older than uat's GC safepoint")

    monkeypatch.setattr(drill, "validate_content", gone)
    monkeypatch.setattr(
        drill, "compare_recorded", lambda target, recorded, on_table=None: ("recorded", recorded.backup_ts)
    )
    recorded = SimpleNamespace(backup_ts=ts(2), backup_id="uat-incr-2")
    got = drill.validate_restore(None, None, cluster="uat", restore_ts=ts(2), load_recorded=lambda: recorded)  # type: ignore[arg-type]
    assert got == ("recorded", ts(2))
    with pytest.raises(HistoryGoneError, match="no source fingerprints were recorded"):
        drill.validate_restore(None, None, cluster="uat", restore_ts=ts(2))  # type: ignore[arg-type]
    with pytest.raises(HistoryGoneError, match="no source fingerprints were recorded"):  # another backup's
        drill.validate_restore(None, None, cluster="uat", restore_ts=ts(3), load_recorded=lambda: recorded)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"{not json", b"[]", b'{"version": 1}', b'{"version": 1, "tables": [{"table": 5}]}', b"[" * 50_000,
     b'{"version": 1, "cluster": "dev", "backup_id": "b", "backup_ts": "x", "tables": []}'],
)  # fmt: skip
def test_recorded_fingerprints_from_storage_that_are_not_ours_fail_with_one_line(data: bytes) -> None:
    from tidbops.drill import SourceFingerprints

    with pytest.raises(DrillError) as info:
        SourceFingerprints.from_bytes(data, source="s3://b/dev/drills/fingerprints/x.json")
    text = str(info.value)
    assert text.startswith("s3://b/dev/drills/fingerprints/x.json: not source fingerprints tidbops wrote (")
    assert "\n" not in text and len(text) < 400
