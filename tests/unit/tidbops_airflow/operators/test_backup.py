"""The backup pipeline's operators with patched hooks: a real SQLite catalog, real local storage, a fake BR.

The fake BR hook writes what BR writes (``backup.lock``, data files, ``backupmeta`` last) into the
``--storage`` directory of the argv it is given, or fails midway the way BR does (partial files, no
``backupmeta``, ``BRError``). ``execute`` is called with a minimal context (the DAG run and the try).
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
from unittest import mock

import pytest
from sqlalchemy.exc import OperationalError

from tidbops import tso
from tidbops.backup import BackupInProgressError, BackupTargetError, BackupVerificationError
from tidbops.br.errors import BRError
from tidbops.br.output import BROutcome, parse_br_output
from tidbops.catalog.errors import ManifestError
from tidbops.catalog.manifest import MANIFEST_NAME, backup_path
from tidbops.catalog.records import BackupKind, BackupStatus, NewBackup, make_backup_id
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig, EncryptionConfig, RetentionConfig, StorageConfig
from tidbops.storage import LocalStorage
from tidbops.timefmt import iso
from tidbops_airflow.operators.backup import (
    BRBackupOperator,
    BRBackupPlanOperator,
    BRBackupPreflightOperator,
    BRBackupRecordOperator,
    BRBackupVerifyOperator,
    run_info,
)

pytestmark = pytest.mark.operators

RUN_AT = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
TS_BASE = tso.from_datetime(datetime(2026, 11, 21, 1, 0, tzinfo=UTC))
BR_TS = tso.from_datetime(RUN_AT + timedelta(seconds=30))
BR_ERROR = (
    "Error: error happen in store 1 at 127.0.0.1:20161: Io(Os { code: 28, kind: StorageFull, message: "
    '"No space left on device" }): [BR:KV:ErrKVStorage]tikv storage occur I/O error'
)
DATA = {"store1/1_2_3_abc_1_write.sst": b"w" * 1000, "store4/7_1_1_def_1_write.sst": b"x" * 17}


# --------------------------------------------------------------------------------------------- fakes


@dataclass
class FakeBR:
    """What the patched BRHook does when asked to run BR; records every argv."""

    mode: str = "ok"  # ok | fail
    calls: list[list[str]] = field(default_factory=list)
    killed: bool = False

    def write(self, argv: list[str]) -> None:
        root = LocalStorage(Path(argv[argv.index("--storage") + 1][len("local://") :]))
        root.write_bytes("backup.lock", b"lock")
        for path, data in DATA.items():
            root.write_bytes(path, data)
        if self.mode == "fail":
            raise BRError(exit_code=1, outcome=parse_br_output(BR_ERROR), stderr_tail=BR_ERROR)
        root.write_bytes("backupmeta", json.dumps({"EndVersion": BR_TS}).encode())


@pytest.fixture
def br(monkeypatch: pytest.MonkeyPatch) -> FakeBR:
    fake = FakeBR()

    class Hook:
        def __init__(self, *, cluster: ClusterConfig, **_: Any) -> None:
            self.cluster = cluster

        @contextlib.contextmanager
        def session(self, name: str = "br", data_key: Any = None) -> Iterator[SimpleNamespace]:
            key = "/run/key-file" if self.cluster.br.encryption else None
            yield SimpleNamespace(cluster=self.cluster, env={}, key_file=key, log_file="/tmp/br.log", secrets=())

        def run(self, argv: list[str], session: Any, **_: Any) -> SimpleNamespace:
            fake.calls.append(argv)
            fake.write(argv)
            outcome = BROutcome(recognised=True, success=True, backup_ts=BR_TS, size_bytes=1017, total_kv=42)
            return SimpleNamespace(outcome=outcome, seconds=1.5)

        def kill(self) -> None:
            fake.killed = True

    monkeypatch.setattr("tidbops_airflow.hooks.br.BRHook", Hook)
    return fake


@dataclass
class Env:
    tmp: Path
    catalog: Catalog
    cluster: ClusterConfig
    catalog_down: bool = False

    @property
    def root(self) -> LocalStorage:
        return LocalStorage(self.tmp / "backups")

    def dir_of(self, backup_id: str, kind: BackupKind = BackupKind.FULL) -> LocalStorage:
        return self.root.child(backup_path(self.cluster.name, kind, backup_id))


def make_cluster(tmp: Path, **br: Any) -> ClusterConfig:
    return ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri=f"local://{tmp / 'backups'}"),
        br=BRConfig(**br),
        retention=RetentionConfig(max_chain_length=2),
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    catalog = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.migrate()
    e = Env(tmp_path, catalog, make_cluster(tmp_path))

    class Hook:
        def __init__(self, **_: Any) -> None:
            pass

        def get_catalog_or_none(self) -> Catalog | None:
            # a fresh object per task, as in Airflow (the operator closes it)
            return None if e.catalog_down else Catalog.from_url(str(catalog.engine.url))

    monkeypatch.setattr("tidbops_airflow.hooks.catalog.CatalogHook", Hook)
    yield e
    catalog.close()


def context(run_id: str = "manual__1", try_number: int = 1, kind: str = "full") -> dict[str, Any]:
    dag_run = SimpleNamespace(
        logical_date=None,
        run_after=RUN_AT,
        start_date=RUN_AT,
        run_type="manual",
        triggering_user_name="admin",
        run_id=run_id,
    )
    ti = SimpleNamespace(dag_id=f"tidb_backup_{kind}__dev", run_id=run_id, try_number=try_number)
    return {"dag_run": dag_run, "ti": ti}


def plan(env: Env, kind: str = "full", ctx: dict[str, Any] | None = None, facts: Any = None) -> dict[str, Any]:
    op = BRBackupPlanOperator(task_id="plan_backup", cluster=env.cluster, kind=kind, cluster_facts=facts)
    return op.execute(ctx or context(kind=kind))  # type: ignore[arg-type]


def run(env: Env, target: dict[str, Any], ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    op = BRBackupOperator(task_id="run_br_backup", cluster=env.cluster, target=target)
    return op.execute(ctx or context(kind=target["kind"]))  # type: ignore[arg-type]


def record(env: Env, target: dict[str, Any], backup: dict[str, Any], ctx: dict[str, Any] | None = None) -> Any:
    op = BRBackupRecordOperator(task_id="record_backup", cluster=env.cluster, target=target, backup=backup)
    return op.execute(ctx or context(kind=target["kind"]))  # type: ignore[arg-type]


def verify(env: Env, target: dict[str, Any]) -> dict[str, Any]:
    op = BRBackupVerifyOperator(task_id="verify_backup", cluster=env.cluster, target=target)
    return op.execute(context(kind=target["kind"]))  # type: ignore[arg-type]


def whole_run(env: Env, kind: str = "full", run_id: str = "manual__1") -> dict[str, Any]:
    ctx = context(run_id, kind=kind)
    target = plan(env, kind, ctx)
    backup = run(env, target, ctx)
    record(env, target, backup, ctx)
    verify(env, target)
    return target


def seed_succeeded(env: Env, backup_id: str, ts: int, *, kind: BackupKind = BackupKind.FULL, **kw: Any) -> None:
    env.catalog.start_backup(
        NewBackup(
            id=backup_id,
            cluster="dev",
            kind=kind,
            storage_uri=f"{env.cluster.storage.uri}/{backup_path('dev', kind, backup_id)}",
            started_at=tso.to_datetime(ts) - timedelta(minutes=1),
            **kw,
        )
    )
    env.catalog.finish_backup(backup_id, backup_ts=ts)


def files_of(storage: LocalStorage) -> dict[str, bytes]:
    return {o.path: storage.read_bytes(o.path) for o in storage.list("")}


# ---------------------------------------------------------------------------------------------- plan


def _chain(env: Env, n_incr: int, verified: bool = True) -> None:
    seed_succeeded(env, "dev-full-base", TS_BASE)
    env.catalog.mark_verified("dev-full-base", verified, "ok")
    prev, ts = "dev-full-base", TS_BASE
    for i in range(n_incr):
        nxt = ts + (60_000 << 18)
        seed_succeeded(env, f"dev-incr-{i}", nxt, kind=BackupKind.INCREMENTAL, base_backup_id=prev, last_backup_ts=ts)
        env.catalog.mark_verified(f"dev-incr-{i}", True, "ok")
        prev, ts = f"dev-incr-{i}", nxt


@pytest.mark.parametrize(
    ("pipeline", "history", "facts", "catalog_down", "kind", "base", "reason"),
    [
        pytest.param("full", 1, None, False, "full", None, "always takes a full", id="full-pipeline-plans-full"),
        pytest.param(
            "incremental",
            None,
            None,
            False,
            "full",
            None,
            "no succeeded full",
            id="incremental-without-base-plans-full",
        ),
        pytest.param(
            "incremental", 1, None, False, "incremental", "dev-incr-0", "incremental #2", id="incremental-on-chain"
        ),
        pytest.param("incremental", 2, None, False, "full", None, "max_chain_length is 2", id="chain-too-long-full"),
        pytest.param(
            "incremental",
            1,
            {"gc_safe_point": (datetime(2026, 11, 21, 23, 0, tzinfo=UTC)).isoformat()},
            False,
            "full",
            None,
            "older than the GC safepoint",
            id="base-older-than-gc-safepoint-plans-full",
        ),
        pytest.param(
            "incremental", 1, None, True, "full", None, "catalog is unavailable", id="catalog-down-plans-full"
        ),
    ],
)
def test_plan(
    env: Env,
    pipeline: str,
    history: int | None,
    facts: Any,
    catalog_down: bool,
    kind: str,
    base: str | None,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if history is not None:
        _chain(env, history)
    env.catalog_down = catalog_down
    target = plan(env, pipeline, facts=facts)
    assert (target["kind"], target["base_backup_id"]) == (kind, base)
    assert reason in target["reason"]
    expected_id = make_backup_id(
        "dev", BackupKind(kind), RUN_AT, dag_id=f"tidb_backup_{pipeline}__dev", run_id="manual__1"
    )
    assert target["backup_id"] == expected_id
    short = "full" if kind == "full" else "incr"
    assert target["storage_uri"] == f"{env.cluster.storage.uri}/dev/{short}/{expected_id}"
    if kind == "incremental":
        assert target["last_backup_ts"] == TS_BASE + (60_000 << 18)
    else:
        assert target["last_backup_ts"] is None


def test_plan_is_deterministic_per_run_and_unique_across_runs(env: Env) -> None:
    first = plan(env, "full", context("manual__1"))
    assert plan(env, "full", context("manual__1", try_number=2)) == first
    assert plan(env, "full", context("manual__2"))["storage_uri"] != first["storage_uri"]


def test_plan_retry_keeps_what_the_run_started(env: Env, br: FakeBR) -> None:
    _chain(env, 1)
    ctx = context(kind="incremental")
    target = plan(env, "incremental", ctx)
    run(env, target, ctx)  # the chain changes: this backup is now its tail
    again = plan(env, "incremental", context(try_number=2, kind="incremental"))
    assert {k: again[k] for k in ("backup_id", "kind", "last_backup_ts")} == {
        k: target[k] for k in ("backup_id", "kind", "last_backup_ts")
    }
    assert "this run already started incremental backup" in again["reason"]


def test_plan_catches_the_catalog_up_from_manifests(env: Env, br: FakeBR) -> None:
    env.catalog_down = True
    target = whole_run(env, "full", "manual__1")
    assert env.catalog.get(target["backup_id"]) is None
    env.catalog_down = False
    nxt = plan(env, "incremental", context("manual__2", kind="incremental"))
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.verified
    assert row.backup_ts == BR_TS and row.try_number == 1 and row.triggered_by == "manual:admin"
    assert nxt["catch_up"]["added"] == [target["backup_id"]]
    assert nxt["catch_up"]["verified"] == [target["backup_id"]]
    assert (nxt["kind"], nxt["base_backup_id"]) == ("incremental", target["backup_id"])


# ----------------------------------------------------------------------------------------------- run


def test_run_full_records_running_then_succeeded(env: Env, br: FakeBR) -> None:
    target = plan(env)
    out = run(env, target)
    assert len(br.calls) == 1
    argv = br.calls[0]
    assert argv[:3] == ["br", "backup", "full"] and "--lastbackupts" not in argv
    assert argv[argv.index("--storage") + 1] == target["storage_uri"]
    assert out == {**out, "action": "ran", "backup_ts": BR_TS, "size_bytes": 1017, "catalog": "recorded"}
    json.dumps(out)  # JSON-safe XCom
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED
    assert (row.backup_ts, row.size_bytes, row.total_kv, row.br_duration_s) == (BR_TS, 1017, 42, 1.5)
    assert (row.dag_id, row.run_id, row.try_number, row.triggered_by) == (
        "tidb_backup_full__dev",
        "manual__1",
        1,
        "manual:admin",
    )
    kinds = [e.kind for e in env.catalog.list_events(backup_id=target["backup_id"])]
    assert kinds == ["backup.started", "backup.succeeded"]


def test_run_incremental_passes_lastbackupts(env: Env, br: FakeBR) -> None:
    _chain(env, 0)
    target = plan(env, "incremental")
    run(env, target)
    argv = br.calls[0]
    assert argv[argv.index("--lastbackupts") + 1] == str(TS_BASE)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and (row.base_backup_id, row.last_backup_ts) == ("dev-full-base", TS_BASE)


def test_run_encrypted_cluster_passes_the_key_file_never_the_key(tmp_path: Path, env: Env, br: FakeBR) -> None:
    env.cluster = make_cluster(tmp_path, encryption=EncryptionConfig(method="aes256-ctr", key_conn_id="k"))
    target = plan(env)
    run(env, target)
    argv = br.calls[0]
    assert argv[argv.index("--crypter.key-file") + 1] == "/run/key-file"
    assert "--crypter.key" not in argv
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.encryption_method == "aes256-ctr"


def test_br_error_marks_the_row_failed_with_the_error(env: Env, br: FakeBR) -> None:
    br.mode = "fail"
    target = plan(env)
    with pytest.raises(BRError, match=r"\[BR:KV:ErrKVStorage\]"):
        run(env, target)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.FAILED
    assert row.error is not None and "[BR:KV:ErrKVStorage]" in row.error and "No space left" in row.error
    where = env.dir_of(target["backup_id"])
    assert not where.exists(MANIFEST_NAME) and not where.exists("backupmeta")


@pytest.mark.parametrize(
    "situation",
    [
        pytest.param("catalog-row", id="adopt-completed-known-to-the-catalog"),
        pytest.param("manifest", id="adopt-completed-from-its-manifest"),
        pytest.param("decode", id="adopt-completed-via-br-debug-decode"),
    ],
)
def test_retry_adopts_a_completed_backup_and_never_overwrites_it(
    env: Env, br: FakeBR, situation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context()
    target = plan(env, "full", ctx)
    first = run(env, target, ctx)
    if situation == "manifest":
        record(env, target, first, ctx)
        env.catalog.engine.dispose()
        Path(str(env.catalog.engine.url.database)).unlink()  # the catalog lost everything
        env.catalog = Catalog.from_url(str(env.catalog.engine.url))
        env.catalog.migrate()
    elif situation == "decode":
        env.catalog_down = True
    decoded: list[str] = []
    monkeypatch.setattr("tidbops.backup.read_end_version", lambda session, uri, timeout=0: decoded.append(uri) or BR_TS)
    where = env.dir_of(target["backup_id"])
    before = files_of(where)
    out = run(env, target, context(try_number=2))
    assert len(br.calls) == 1, "BR ran again"
    assert files_of(where) == before, "a completed backup was touched"
    expected_source = {"catalog-row": "catalog", "manifest": "manifest", "decode": "br debug decode"}[situation]
    assert (out["action"], out["source"], out["backup_ts"], out["try_number"]) == (
        "adopted",
        expected_source,
        BR_TS,
        2,
    )
    assert decoded == ([target["storage_uri"]] if situation == "decode" else [])
    if situation != "decode":
        row = env.catalog.get(target["backup_id"])
        assert row is not None and row.status is BackupStatus.SUCCEEDED and row.backup_ts == BR_TS


def test_retry_clears_what_a_failed_try_left_then_runs_br(env: Env, br: FakeBR) -> None:
    br.mode = "fail"
    target = plan(env)
    with pytest.raises(BRError):
        run(env, target)
    where = env.dir_of(target["backup_id"])
    assert {o.path for o in where.list("")} == {"backup.lock", *DATA}
    br.mode = "ok"
    out = run(env, target, context(try_number=2))
    assert out["action"] == "ran" and out["cleared_files"] == 3
    assert len(br.calls) == 2
    assert {o.path for o in where.list("")} == {"backup.lock", "backupmeta", *DATA}
    row = env.catalog.get(target["backup_id"])
    assert row is not None and (row.status, row.try_number, row.error) == (BackupStatus.SUCCEEDED, 2, None)
    assert "backup.restarted" in [e.kind for e in env.catalog.list_events(backup_id=target["backup_id"])]


def test_a_manifest_without_backupmeta_is_left_alone(env: Env, br: FakeBR) -> None:
    target = plan(env)
    where = env.dir_of(target["backup_id"])
    where.write_bytes(MANIFEST_NAME, b"{}")
    where.write_bytes("store1/x.sst", b"data")
    with pytest.raises(BackupTargetError, match="damaged backup"):
        run(env, target)
    assert br.calls == [] and {o.path for o in where.list("")} == {MANIFEST_NAME, "store1/x.sst"}


def test_a_succeeded_row_without_backupmeta_is_not_backed_up_over(env: Env, br: FakeBR) -> None:
    target = plan(env)
    seed_succeeded(env, target["backup_id"], BR_TS)
    with pytest.raises(BackupTargetError, match=r"the catalog says backup .* is succeeded"):
        run(env, target)
    assert br.calls == []


def test_catalog_down_the_backup_still_succeeds_with_its_manifest(env: Env, br: FakeBR) -> None:
    env.catalog_down = True
    ctx = context()
    target = plan(env, "full", ctx)
    out = run(env, target, ctx)
    assert out["catalog"] == "unavailable" and out["action"] == "ran"
    rec = record(env, target, out, ctx)
    assert rec["written"] is True and rec["catalog"] == "unavailable"
    manifest = json.loads(env.dir_of(target["backup_id"]).read_bytes(MANIFEST_NAME))
    assert manifest["backup"]["id"] == target["backup_id"]
    assert manifest["backup"]["backup_ts"] == BR_TS
    assert {f["path"] for f in manifest["files"]} == {"backup.lock", "backupmeta", *DATA}
    assert verify(env, target)["ok"] is True
    assert env.catalog.list_backups("dev") == []


def test_catalog_dying_mid_step_does_not_fail_the_backup(env: Env, br: FakeBR) -> None:
    target = plan(env)

    class Dying(Catalog):
        def finish_backup(self, *a: Any, **k: Any) -> Any:
            raise OperationalError("UPDATE backups", {}, ConnectionRefusedError(111, "Connection refused"))

    with mock.patch(
        "tidbops_airflow.hooks.catalog.CatalogHook.get_catalog_or_none",
        lambda self: Dying(env.catalog.engine),
        create=True,
    ):
        out = run(env, target)
    assert out["catalog"] == "unavailable"
    assert any("catalog unavailable (record the success)" in n for n in out["notes"])
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.RUNNING  # caught up by the record step
    record(env, target, out)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.status is BackupStatus.SUCCEEDED and row.manifest_uri


def test_on_kill_kills_br(env: Env, br: FakeBR) -> None:
    op = BRBackupOperator(task_id="run_br_backup", cluster=env.cluster, target=plan(env))
    op.on_kill()  # before execute: nothing to kill
    assert br.killed is False
    op.execute(context())  # type: ignore[arg-type]
    op.on_kill()
    assert br.killed is True


def test_a_plan_for_another_cluster_is_refused(env: Env, br: FakeBR) -> None:
    target = {**plan(env), "cluster": "prod"}
    with pytest.raises(ValueError, match="the plan is for cluster 'prod'"):
        run(env, target)


# -------------------------------------------------------------------------------------------- record


def test_record_writes_the_manifest_once(env: Env, br: FakeBR) -> None:
    ctx = context()
    target = plan(env, "full", ctx)
    out = run(env, target, ctx)
    first = record(env, target, out, ctx)
    where = env.dir_of(target["backup_id"])
    assert first["written"] is True and first["manifest_uri"] == f"{where.uri}/{MANIFEST_NAME}"
    text = where.read_bytes(MANIFEST_NAME)
    again = record(env, target, out, context(try_number=2))
    assert again["written"] is False and where.read_bytes(MANIFEST_NAME) == text
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.manifest_uri == first["manifest_uri"]


def test_record_refuses_a_manifest_of_another_backup(env: Env, br: FakeBR) -> None:
    ctx = context()
    target = plan(env, "full", ctx)
    out = run(env, target, ctx)
    record(env, target, out, ctx)
    with pytest.raises(ManifestError, match="not overwriting it"):
        record(env, target, {**out, "backup_ts": BR_TS + 1}, ctx)


# -------------------------------------------------------------------------------------------- verify


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(lambda s: s.delete(["store4/7_1_1_def_1_write.sst"]), "1 missing", id="missing-file"),
        pytest.param(
            lambda s: s.write_bytes("store1/1_2_3_abc_1_write.sst", b"short", overwrite=True),
            "1 wrong size",
            id="wrong-size",
        ),
        pytest.param(lambda s: s.delete(["backupmeta"]), "no backupmeta", id="backupmeta-gone"),
        pytest.param(lambda s: s.delete([MANIFEST_NAME]), "does not exist", id="no-manifest"),
    ],
)
def test_verify_fails_and_marks_the_row_unverified(env: Env, br: FakeBR, damage: Any, message: str) -> None:
    ctx = context()
    target = plan(env, "full", ctx)
    record(env, target, run(env, target, ctx), ctx)
    damage(env.dir_of(target["backup_id"]))
    with pytest.raises(BackupVerificationError, match=message):
        verify(env, target)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.verify_failed and row.verify_detail and message in row.verify_detail


def test_a_verified_backup_is_an_event_of_its_asset_with_id_backupts_and_size(env: Env, br: FakeBR) -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from tidbops_airflow.assets import backups_asset

    ctx = context()
    target = plan(env, "full", ctx)
    record(env, target, run(env, target, ctx), ctx)
    asset = backups_asset("dev")
    op = BRBackupVerifyOperator(task_id="verify_backup", cluster=env.cluster, target=target, outlets=[asset])
    ctx["outlet_events"] = events = OutletEventAccessors()
    op.execute(ctx)  # type: ignore[arg-type]
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.backup_ts and row.backup_time and row.size_bytes
    assert asset.uri == "x-tidb://dev/backups"
    assert events[asset].extra == {
        "backup_id": row.id, "cluster": "dev", "kind": "full", "backup_ts": row.backup_ts,
        "backup_time": iso(row.backup_time), "size_bytes": row.size_bytes, "verified": True,
        "storage_uri": row.storage_uri,
    }  # fmt: skip


def test_verify_marks_the_row_verified(env: Env, br: FakeBR) -> None:
    target = whole_run(env)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.verified and row.verify_detail and row.verify_detail.startswith("ok: 4 files")


# ----------------------------------------------------------------------------------------- preflight


def _running_row(env: Env, run_id: str, age: timedelta) -> str:
    clock = datetime.now(UTC) - age
    old = Catalog(env.catalog.engine, clock=lambda: clock)
    backup_id = make_backup_id("dev", BackupKind.FULL, clock, dag_id="tidb_backup_full__dev", run_id=run_id)
    old.start_backup(
        NewBackup(
            id=backup_id,
            cluster="dev",
            kind=BackupKind.FULL,
            storage_uri=f"{env.cluster.storage.uri}/dev/full/{backup_id}",
            started_at=clock,
            dag_id="tidb_backup_full__dev",
            run_id=run_id,
        )
    )
    return backup_id


def preflight(env: Env, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    op = BRBackupPreflightOperator(task_id="check_cluster", cluster=env.cluster)
    return op.execute(ctx or context())  # type: ignore[arg-type]


def test_preflight_records_the_cluster_facts(env: Env, tidb_hook: mock.MagicMock) -> None:
    facts = preflight(env)
    tidb_hook.assert_called_once_with(tidb_conn_id="tidb_dev")
    assert facts["tidb_version"] == "v8.5.1" and facts["gc_life_time_seconds"] == 600.0
    assert facts["gc_safe_point"] == "2026-11-22T04:00:00.000Z" and facts["catalog"] == "ok"
    (event,) = env.catalog.list_events(kind="cluster.checked")
    assert event.cluster == "dev" and event.details and event.details["gc_life_time_seconds"] == 600.0


@pytest.mark.parametrize(
    ("run_id", "age", "blocks"),
    [
        pytest.param("scheduled__other", timedelta(minutes=5), True, id="other-run-running-blocks"),
        pytest.param("scheduled__other", timedelta(hours=5), False, id="other-run-older-than-br-timeout-ignored"),
        pytest.param("manual__1", timedelta(minutes=5), False, id="own-run-earlier-try-ignored"),
    ],
)
def test_preflight_refuses_while_another_br_job_runs(
    env: Env, tidb_hook: mock.MagicMock, run_id: str, age: timedelta, blocks: bool
) -> None:
    backup_id = _running_row(env, run_id, age)
    if blocks:
        with pytest.raises(BackupInProgressError, match=f"backup {backup_id} .* has been running for 5m"):
            preflight(env)
    else:
        assert preflight(env)["cluster"] == "dev"


def test_preflight_without_catalog_still_checks_the_cluster(env: Env, tidb_hook: mock.MagicMock) -> None:
    env.catalog_down = True
    assert preflight(env)["catalog"] == "unavailable"


def test_preflight_fails_when_the_cluster_does_not_answer(env: Env, tidb_hook: mock.MagicMock) -> None:
    from tidbops.tidb import TiDBUnreachableError

    tidb_hook.return_value.cluster_facts.side_effect = TiDBUnreachableError("connection 'tidb_dev' does not answer")
    with pytest.raises(TiDBUnreachableError):
        preflight(env)


# -------------------------------------------------------------------------------------------- context


def test_run_info_is_the_real_start_and_keeps_a_scheduled_runs_slot() -> None:
    ctx = context()
    info = run_info(ctx)
    assert (info.started_at, info.scheduled_for, info.triggered_by) == (RUN_AT, None, "manual:admin")
    ctx["dag_run"].logical_date = RUN_AT - timedelta(days=1)
    ctx["dag_run"].run_type = SimpleNamespace(value="scheduled")
    ctx["dag_run"].triggering_user_name = None
    info = run_info(ctx)
    assert (info.started_at, info.scheduled_for, info.triggered_by) == (RUN_AT, RUN_AT - timedelta(days=1), "scheduled")
    assert run_info(ctx, started_at=RUN_AT + timedelta(hours=1)).started_at == RUN_AT + timedelta(hours=1)
    ctx["dag_run"].start_date = None  # not started as Airflow sees it (a test run): now
    assert abs(run_info(ctx).started_at - datetime.now(UTC)) < timedelta(minutes=1)


def late_scheduled_run(run_id: str = "scheduled__2026-11-21T13:00:00+00:00", kind: str = "full") -> dict[str, Any]:
    """A scheduled run for the 13:00 slot that Airflow started at 01:00 the next day (after an unpause)."""
    ctx = context(run_id, kind=kind)
    ctx["dag_run"].logical_date = ctx["dag_run"].run_after = RUN_AT - timedelta(hours=12)
    ctx["dag_run"].run_type = SimpleNamespace(value="scheduled")
    ctx["dag_run"].triggering_user_name = None
    return ctx


def test_a_late_scheduled_run_is_named_and_catalogued_by_when_it_ran(env: Env, br: FakeBR) -> None:
    ctx = late_scheduled_run()
    target = plan(env, "full", ctx)
    assert target["backup_id"].startswith("dev-full-20261122t010000z-")  # RUN_AT, not the 13:00 slot
    assert datetime.fromisoformat(target["started_at"]) == RUN_AT
    record(env, target, run(env, target, ctx), ctx)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.started_at == RUN_AT
    assert row.scheduled_for == RUN_AT - timedelta(hours=12) and row.triggered_by == "scheduled"
    assert [b.scheduled_for for b in env.catalog.list_backups("dev")] == [RUN_AT - timedelta(hours=12)]


def test_a_manual_run_has_no_slot(env: Env, br: FakeBR) -> None:
    ctx = context()
    target = plan(env, "full", ctx)
    run(env, target, ctx)
    row = env.catalog.get(target["backup_id"])
    assert row is not None and row.scheduled_for is None and row.started_at == RUN_AT


def test_a_cleared_run_keeps_its_backup_without_the_catalog(env: Env, br: FakeBR) -> None:
    """Airflow gives a cleared run a new start_date: the plan finds the directory the run started by the
    run's hash, not by a time it can no longer know."""
    env.catalog_down = True
    ctx = late_scheduled_run()
    target = plan(env, "full", ctx)
    run(env, target, ctx)
    cleared = late_scheduled_run()
    cleared["dag_run"].start_date = RUN_AT + timedelta(hours=3)
    cleared["ti"].try_number = 1
    again = plan(env, "full", cleared)
    assert again["backup_id"] == target["backup_id"] and "this run already" in again["reason"]
    other = late_scheduled_run("scheduled__2026-11-22T13:00:00+00:00")  # another run: its own backup
    assert plan(env, "full", other)["backup_id"] != target["backup_id"]


def test_template_fields_hold_no_cluster_secrets() -> None:
    for op in (BRBackupPreflightOperator, BRBackupPlanOperator, BRBackupOperator, BRBackupRecordOperator):
        assert "cluster" not in op.template_fields
    assert BRBackupVerifyOperator.template_fields == ("target", "catalog_conn_id")


def test_failed_row_then_adoption_is_refused_when_backupts_is_not_after_the_base(env: Env, br: FakeBR) -> None:
    _chain(env, 0)
    target = plan(env, "incremental")
    where = LocalStorage(Path(target["storage_uri"][len("local://") :]))
    where.write_bytes("backupmeta", b"{}")
    with mock.patch("tidbops.backup.read_end_version", return_value=TS_BASE):
        with pytest.raises(BackupTargetError, match="not after the base"):
            run(env, target)
    assert br.calls == []


def test_steps_read_earlier_results_from_xcom_by_task_id(env: Env, br: FakeBR) -> None:
    """How the DAGs wire the steps: each reads the XCom of the task it names."""
    xcom: dict[str, Any] = {"check_cluster": {"gc_safe_point": "2026-11-22T00:00:00+00:00"}}
    ctx = context()
    ctx["ti"].xcom_pull = lambda task_ids: xcom.get(task_ids)
    kw: dict[str, Any] = {"cluster": env.cluster}
    steps = [
        ("plan_backup", BRBackupPlanOperator(task_id="plan_backup", kind="full", facts_task_id="check_cluster", **kw)),
        ("run_br_backup", BRBackupOperator(task_id="run_br_backup", target_task_id="plan_backup", **kw)),
        (
            "record_backup",
            BRBackupRecordOperator(
                task_id="record_backup", target_task_id="plan_backup", backup_task_id="run_br_backup", **kw
            ),
        ),
        ("verify_backup", BRBackupVerifyOperator(task_id="verify_backup", target_task_id="plan_backup", **kw)),
    ]
    for task_id, op in steps:
        xcom[task_id] = op.execute(ctx)  # type: ignore[arg-type]
    assert xcom["verify_backup"]["ok"] is True
    assert xcom["record_backup"]["backup_id"] == xcom["plan_backup"]["backup_id"]


def test_a_missing_xcom_is_a_clear_error(env: Env, br: FakeBR) -> None:
    ctx = context()
    ctx["ti"].xcom_pull = lambda task_ids: None
    op = BRBackupOperator(task_id="run_br_backup", cluster=env.cluster, target_task_id="plan_backup")
    with pytest.raises(ValueError, match="no backup plan in the XCom of task 'plan_backup'"):
        op.execute(ctx)  # type: ignore[arg-type]


# ------------------------------------------------------------------- GC safepoint past the base (#18)

GC_ERROR = (
    "Error: failed to check gc safePoint, checkpoint ts 433177834291200000: GC safepoint 433193092308795392 exceed "
    "TS 433177834291200000: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"
)


@dataclass
class GCRefusingBR(FakeBR):
    """BR as it answers an incremental whose --lastbackupts is below the GC safepoint (a full goes through)."""

    def write(self, argv: list[str]) -> None:
        if "--lastbackupts" in argv:
            raise BRError(exit_code=1, outcome=parse_br_output(GC_ERROR), stderr_tail=GC_ERROR)
        super().write(argv)


def test_an_incremental_refused_below_gc_becomes_a_full_in_the_same_step(
    env: Env, br: FakeBR, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan read the safepoint before GC passed the base: BR refuses the incremental, the step takes a
    full backup instead (catalogued with the reason), and record/verify follow the full one."""
    refusing = GCRefusingBR()
    monkeypatch.setattr(br, "write", refusing.write)
    _chain(env, 0)
    ctx = context(kind="incremental")
    xcom: dict[str, Any] = {}
    ctx["ti"].xcom_pull = lambda task_ids: xcom.get(task_ids)
    xcom["plan_backup"] = target = plan(env, "incremental", ctx)
    assert target["kind"] == "incremental"
    xcom["run_br_backup"] = done = run(env, target, ctx)
    full = done["replanned"]
    assert full["kind"] == "full" and done["backup_id"] == full["backup_id"] != target["backup_id"]
    assert "ErrBackupGCSafepointExceeded" in full["reason"] and done["replanned_now"] is True
    assert [("--lastbackupts" in a) for a in br.calls] == [True, False]  # one refused incremental, then the full
    refused = env.catalog.get(target["backup_id"])
    assert refused is not None and refused.status is BackupStatus.FAILED
    assert refused.error is not None and "ErrBackupGCSafepointExceeded" in refused.error
    assert refused.error.startswith(f"replaced by full backup {full['backup_id']} of this run")
    record(env, target, done, ctx)
    op = BRBackupVerifyOperator(
        task_id="verify_backup", cluster=env.cluster, target_task_id="plan_backup", backup_task_id="run_br_backup"
    )
    assert op.execute(ctx)["ok"] is True  # type: ignore[arg-type]
    row = env.catalog.get(full["backup_id"])
    assert row is not None and row.kind is BackupKind.FULL and row.status is BackupStatus.SUCCEEDED and row.verified
    # the next incremental builds on the new full (the refused attempt does not poison the chain)
    nxt = plan(env, "incremental", context("manual__2", kind="incremental"))
    assert (nxt["kind"], nxt["base_backup_id"]) == ("incremental", full["backup_id"])


def test_a_retry_after_the_gc_refusal_goes_straight_to_the_full(
    env: Env, br: FakeBR, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing = GCRefusingBR()
    monkeypatch.setattr(br, "write", refusing.write)
    _chain(env, 0)
    target = plan(env, "incremental")
    env.catalog.start_backup(
        NewBackup(
            id=target["backup_id"],
            cluster="dev",
            kind=BackupKind.INCREMENTAL,
            storage_uri=target["storage_uri"],
            started_at=RUN_AT,
            base_backup_id=target["base_backup_id"],
            last_backup_ts=target["last_backup_ts"],
            dag_id="tidb_backup_incremental__dev",
            run_id="manual__1",
        )
    )
    env.catalog.fail_backup(target["backup_id"], f"BR Incremental Backup failed (exit 1): {GC_ERROR}")
    done = run(env, target, context(try_number=2, kind="incremental"))
    assert done["replanned"]["kind"] == "full" and done["replanned_now"] is False  # the notice went with try 1
    assert [("--lastbackupts" in a) for a in br.calls] == [False]


def test_other_br_errors_of_an_incremental_are_not_replanned(env: Env, br: FakeBR) -> None:
    br.mode = "fail"
    _chain(env, 0)
    target = plan(env, "incremental")
    with pytest.raises(BRError, match="ErrKVStorage"):
        run(env, target)
    assert len(br.calls) == 1
