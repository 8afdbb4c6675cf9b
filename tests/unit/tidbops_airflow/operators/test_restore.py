"""The on-demand restore's operators with patched I/O: the order of the checks (cheapest first: nothing
reads BR before the request, the catalog and the target's databases pass), the branch, the gate; and the
restore and validate operators drills share, as the on-demand restore uses them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from tests.helpers.restores import FakeBR, FakeTiDB
from tidbops import tso
from tidbops.catalog.records import BackupKind, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, Fleet, LogBackupConfig, RestoreConfig, StorageConfig
from tidbops_airflow.operators import restore as ops
from tidbops_airflow.operators.common import CleanFailure
from tidbops_airflow.operators.recovery import BRRestoreOperator, ValidateRestoreOperator

pytestmark = pytest.mark.operators

NOW = datetime.now(UTC).replace(microsecond=0)
FULL = "dev-full-20261122t010000z-0a0b0c0d"


def cluster(name: str, env: str = "dev", **kw: Any) -> ClusterConfig:
    return ClusterConfig(
        name=name, env=env, pd=(f"pd-{name}:2379",), tidb_conn_id=f"tidb_{name}", storage=StorageConfig(uri="s3://backups"),
        **kw,
    )  # fmt: skip


FLEET = Fleet(
    path=Path("fleet.yaml"),
    clusters={
        "dev": cluster("dev", log_backup=LogBackupConfig(enabled=True, task_name="pitr-dev")),
        "prod": cluster("prod", "prod", restore=RestoreConfig(allowed_targets=("prod",), allow_in_place=True)),
        "scratch1": cluster("scratch1", "scratch", scratch=True),
    },
)


class TI:
    def __init__(self) -> None:
        self.xcom: dict[tuple[str, str], Any] = {}
        self.task_id, self.dag_id, self.run_id, self.try_number = "plan_restore", "tidb_restore", "manual__1", 1

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcom.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, key)] = value


@pytest.fixture
def plan_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ops.RestorePlanOperator, list[str]]:
    monkeypatch.setattr("tidbops_airflow.dagbuilder.fleet", lambda: FLEET)
    sqlite = tmp_path / "catalog.db"
    cat = Catalog.from_url(f"sqlite:///{sqlite}")
    cat.migrate()
    cat.start_backup(NewBackup(id=FULL, cluster="dev", kind=BackupKind.FULL, storage_uri=f"s3://backups/dev/{FULL}",
                               started_at=NOW - timedelta(hours=1)))  # fmt: skip
    cat.finish_backup(FULL, backup_ts=tso.from_datetime(NOW - timedelta(hours=1)))
    cat.mark_verified(FULL, True, "ok")
    cat.close()
    calls: list[str] = []
    op = ops.RestorePlanOperator(task_id="plan_restore", catalog_sqlite_path=str(sqlite))
    databases = {"scratch1": ["old"], "prod": ["shop"], "dev": ["shop"]}
    monkeypatch.setattr(op, "_target_databases", lambda t: calls.append(f"sql {t.name}") or databases[t.name])
    monkeypatch.setattr(op, "_target_log_tasks", lambda t: calls.append(f"br log status {t.name}") or [])
    monkeypatch.setattr(op, "_log_range", lambda s: calls.append("br log metadata") or None)
    notes: list[str] = []
    monkeypatch.setattr(op, "_set_note", lambda context, text: calls.append("note") or notes.append(text) or True)
    op.notes = notes  # type: ignore[attr-defined]  # what the run's note was set to, in order
    return op, calls


def context(**conf: Any) -> dict[str, Any]:
    params = {"source_cluster": "dev", "target_cluster": "scratch1", "reason": "INC-1", **conf}
    return {"params": params, "ti": TI(), "dag_run": SimpleNamespace(run_after=NOW, triggering_user_name="alice")}


def test_a_backup_id_point_is_planned_from_the_catalog_and_the_target_check(plan_op: Any) -> None:
    op, calls = plan_op
    ctx = context(restore_point=FULL, tables=["shop.orders"])
    result = op.execute(ctx)  # type: ignore[arg-type]
    assert calls == ["sql scratch1", "br log status scratch1", "note"]  # no log metadata: a backup needs none
    assert result["plan"]["steps"][0]["backup_id"] == FULL and result["plan"]["wipe"] == ["old"]
    assert result["requested_by"] == "alice" and "requested by alice" in result["text"]
    assert "-f shop.orders" in result["plan"]["commands"][0]


@pytest.mark.parametrize(
    ("conf", "guardrail", "reached"),
    [
        ({"target_cluster": "prod"}, "target_not_allowed", []),
        ({"source_cluster": "prod", "target_cluster": "prod"}, "confirm", []),
        ({"source_cluster": "prod", "target_cluster": "prod", "confirm": "prod"}, "target_not_empty", ["sql prod"]),
        ({"restore_point": "dev-full-20261122t020000z-0f0f0f0f"}, "backup_not_restorable", []),
        ({"restore_point": "2020-01-01T00:00:00Z"}, "outside_window",
         ["sql scratch1", "br log status scratch1", "br log metadata"]),
    ],
)  # fmt: skip
def test_a_refusal_says_its_guardrail_and_reads_no_further(
    plan_op: Any, conf: dict[str, Any], guardrail: str, reached: list[str]
) -> None:
    op, calls = plan_op
    ctx = context(**conf)
    with pytest.raises(CleanFailure, match=rf"restore refused \({guardrail}\)") as refused:
        op.execute(ctx)  # type: ignore[arg-type]
    assert not isinstance(refused.value, Exception)  # a SystemExit: Airflow logs one line, no traceback
    assert calls == [*reached, "note"]
    assert ctx["ti"].xcom[("plan_restore", "refused")] == guardrail and ctx["ti"].xcom[("plan_restore", "error")]
    (note,) = op.notes
    source, target = ctx["params"]["source_cluster"], ctx["params"]["target_cluster"]
    assert note.startswith(f"**REFUSED** ({guardrail.replace('_', chr(92) + '_')}): {source} → {target}; nothing ran")
    assert "Traceback" not in note and len(note) <= 1000


def test_the_branch_follows_the_plan(plan_op: Any) -> None:
    op, _ = plan_op
    ctx = context(restore_point=FULL)
    planned = op.execute(ctx)  # type: ignore[arg-type]
    branch = ops.RestoreTargetBranchOperator(task_id="choose_target", restore_task_ids=["restore__scratch1"])
    ti = TI()
    ti.xcom[("plan_restore", "return_value")] = planned
    assert branch.choose_branch({"ti": ti}) == []  # type: ignore[arg-type]  # a dry run
    planned["plan"]["request"]["dry_run"] = False
    assert branch.choose_branch({"ti": ti}) == ["restore__scratch1"]  # type: ignore[arg-type]
    planned["plan"]["target"] = "scratch9"
    with pytest.raises(ValueError, match="no restore task for target scratch9"):
        branch.choose_branch({"ti": ti})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "ok"), [("succeeded", True), ("dry_run", True), ("refused", False), ("failed", False)]
)
def test_the_gate_fails_a_refused_or_failed_request(status: str, ok: bool) -> None:
    ti = TI()
    ti.xcom[("record_restore", "return_value")] = {
        "status": status,
        "summary": f"restore x {status}",
        "restore_id": "x",
    }
    gate = ops.RestoreGateOperator(task_id="assert_restore_succeeded")
    if ok:
        assert gate.execute({"ti": ti})["status"] == status  # type: ignore[arg-type]
    else:
        with pytest.raises(CleanFailure, match=f"restore x {status}"):
            gate.execute({"ti": ti})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- holds (#16)


def test_a_real_restore_holds_its_backups_from_plan_until_record(
    plan_op: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    op, _ = plan_op
    sqlite = str(tmp_path / "catalog.db")
    cat = Catalog.from_url(f"sqlite:///{sqlite}")
    dry = op.execute(context(restore_point=FULL))  # type: ignore[arg-type]
    assert dry["plan"]["request"]["dry_run"] and cat.held_backups("dev") == {}, "a dry run holds nothing"
    ctx = context(restore_point=FULL, dry_run=False)
    planned = op.execute(ctx)  # type: ignore[arg-type]
    restore_id = planned["plan"]["restore_id"]
    assert cat.held_backups("dev") == {FULL: [restore_id]}
    # the BR timeout (4h by default) for its one step, plus the margin
    with cat.engine.begin() as conn:
        from tidbops.catalog.schema import backup_holds

        row = conn.execute(backup_holds.select()).mappings().one()
    assert row["expires_at"] - row["taken_at"] == timedelta(hours=7)

    # record_restore (all_done) releases them whatever happened: here the restore failed
    ti = ctx["ti"]
    ti.xcom[("plan_restore", "return_value")] = planned
    ti.xcom[("restore__scratch1", "error")] = "BRError: download sst failed"
    record = ops.RestoreRecordOperator(
        task_id="record_restore", restore_task_ids=["restore__scratch1"], catalog_sqlite_path=sqlite
    )
    ti.task_id = "record_restore"
    got = record.execute({**ctx, "ti": ti})  # type: ignore[arg-type]
    assert got["restore_id"] == restore_id and got["status"] == "failed"
    assert cat.held_backups("dev") == {}
    cat.close()


def test_a_plan_that_cannot_hold_its_backups_does_not_start(plan_op: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    op, _ = plan_op

    def down(self: Any, *a: Any, **kw: Any) -> None:
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, ConnectionError("catalog down"))

    monkeypatch.setattr(Catalog, "hold_backups", down)
    ctx = context(restore_point=FULL, dry_run=False)
    with pytest.raises(Exception, match="catalog down"):
        op.execute(ctx)  # type: ignore[arg-type]
    assert "catalog down" in ctx["ti"].xcom[("plan_restore", "error")]


# ------------------------------------------------- restore and validate: the operators drills use too


@dataclass
class Servers:
    """The clusters' databases (TiDBHook) and BR's runs (BRHook)."""

    tidb: FakeTiDB
    br: FakeBR


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Servers:
    found = Servers(FakeTiDB({"tidb_scratch1": ["old"], "tidb_prod": ["shop"], "tidb_dev": ["shop"]}), FakeBR())
    monkeypatch.setattr("tidbops_airflow.hooks.tidb.TiDBHook", found.tidb.hook())
    monkeypatch.setattr("tidbops_airflow.hooks.br.BRHook", found.br.hook())
    return found


def planned(op: ops.RestorePlanOperator, **conf: Any) -> dict[str, Any]:
    """A run's XCom once ``plan_restore`` planned ``conf``."""
    ctx = context(restore_point=FULL, **conf)
    ctx["ti"].xcom[("plan_restore", "return_value")] = op.execute(ctx)  # type: ignore[arg-type]
    return ctx


def test_a_real_restore_wipes_the_scratch_target_then_runs_br_from_the_sources_backups(
    plan_op: Any, servers: Servers
) -> None:
    op, _ = plan_op
    ctx = planned(op, dry_run=False, tables=["shop.orders"])
    ctx["ti"].task_id = "restore__scratch1"
    run = BRRestoreOperator(task_id="restore__scratch1", plan_task_id="plan_restore", target="scratch1",
                            catalog_sqlite_path=op.catalog_sqlite_path)  # fmt: skip
    got = run.execute(ctx)  # type: ignore[arg-type]
    assert got["plan_id"] == ctx["ti"].xcom[("plan_restore", "return_value")]["plan"]["restore_id"]
    assert got["cleared"] == ["old"] and servers.tidb.schemas["tidb_scratch1"] == []
    assert got["br_seconds"] == 0.25 and [r["backup_id"] for r in got["runs"]] == [FULL]
    ((into, source, argv),) = servers.br.calls
    assert (into, source, argv[:3]) == ("scratch1", "dev", ["br", "restore", "full"])
    assert argv[argv.index("-f") + 1] == "shop.orders" and argv[argv.index("--pd") + 1] == "pd-scratch1:2379"


def test_a_dry_run_and_another_targets_task_are_skipped_without_touching_anything(
    plan_op: Any, servers: Servers
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    op, _ = plan_op
    dry = planned(op)
    run = BRRestoreOperator(task_id="restore__scratch1", plan_task_id="plan_restore", target="scratch1")
    with pytest.raises(AirflowSkipException, match="dry run"):
        run.execute(dry)  # type: ignore[arg-type]
    other = BRRestoreOperator(task_id="restore__prod", plan_task_id="plan_restore", target="prod")
    with pytest.raises(AirflowSkipException, match="the plan restores into scratch1, not prod"):
        other.execute(planned(op, dry_run=False))  # type: ignore[arg-type]
    validate = ValidateRestoreOperator(task_id="validate", plan_task_id="plan_restore", restore_task_ids=["x"])
    with pytest.raises(AirflowSkipException, match="dry run"):
        validate.execute(dry)  # type: ignore[arg-type]
    with pytest.raises(AirflowSkipException, match="validate_after is off"):
        validate.execute(planned(op, dry_run=False))  # type: ignore[arg-type]
    with pytest.raises(AirflowSkipException, match="no restore finished"):
        validate.execute(planned(op, dry_run=False, validate_after=True))  # type: ignore[arg-type]
    assert servers.tidb.statements == {} and servers.br.calls == []


def test_a_target_that_is_not_empty_any_more_is_refused_before_br_without_retry(
    plan_op: Any, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    op, _ = plan_op
    dev = FLEET.clusters["dev"].model_copy(update={"restore": RestoreConfig(allowed_targets=("scratch1", "qa"))})
    fleet = Fleet(path=FLEET.path, clusters={**FLEET.clusters, "dev": dev, "qa": cluster("qa", "qa")})
    monkeypatch.setattr("tidbops_airflow.dagbuilder.fleet", lambda: fleet)
    monkeypatch.setattr(op, "_target_databases", lambda t: [])  # empty when planned
    ctx = planned(op, target_cluster="qa", confirm="qa", dry_run=False)
    ctx["ti"].task_id = "restore__qa"
    servers.tidb.schemas["tidb_qa"] = ["someone_elses"]  # then someone wrote into it
    run = BRRestoreOperator(task_id="restore__qa", plan_task_id="plan_restore", target="qa")
    with pytest.raises(AirflowFailException, match="target qa is not empty: databases someone_elses"):
        run.execute(ctx)  # type: ignore[arg-type]
    assert "TargetNotEmptyError" in ctx["ti"].xcom[("restore__qa", "error")]
    assert servers.br.calls == [] and not [q for q in servers.tidb.statements["tidb_qa"] if q.startswith("DROP")]
    assert servers.tidb.schemas["tidb_qa"] == ["someone_elses"]


def test_a_request_the_fleet_config_no_longer_allows_is_refused_when_it_would_run(
    plan_op: Any, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    op, calls = plan_op
    ctx = planned(op, dry_run=False)
    ctx["ti"].task_id = "restore__scratch1"
    narrowed = FLEET.clusters["dev"].model_copy(update={"restore": RestoreConfig(allowed_targets=("dev",))})
    fleet = Fleet(path=FLEET.path, clusters={**FLEET.clusters, "dev": narrowed})
    monkeypatch.setattr("tidbops_airflow.dagbuilder.fleet", lambda: fleet)
    run = BRRestoreOperator(task_id="restore__scratch1", plan_task_id="plan_restore", target="scratch1")
    monkeypatch.setattr(run, "_set_note", lambda context, text: calls.append(text) or True)
    with pytest.raises(CleanFailure, match=r"restore refused \(target_not_allowed\): scratch1 is not an allowed"):
        run.execute(ctx)  # type: ignore[arg-type]
    assert ctx["ti"].xcom[("restore__scratch1", "refused")] == "target_not_allowed"
    assert calls[-1].startswith("**REFUSED** (target\\_not\\_allowed): dev → scratch1")
    assert servers.tidb.statements == {} and servers.br.calls == []
