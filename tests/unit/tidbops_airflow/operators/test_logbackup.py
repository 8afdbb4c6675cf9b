"""The log backup check's operators with patched hooks: a real SQLite catalog, a fake `br`, a fake TiDB.

`br log status` is answered from a script (JSON without a status, as released builds print it, then the
table form), `br log metadata` / `log start` / `log resume` by a fake BRHook that records every argv.
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

from tidbops import tso
from tidbops.br.errors import BRError
from tidbops.br.output import BROutcome, parse_br_output
from tidbops.catalog.store import Catalog
from tidbops.config import AlertRoute, ClusterConfig, LogBackupConfig, StorageConfig
from tidbops.tidb import ClusterFacts, TiDBUnreachableError, parse_gc_time
from tidbops_airflow.operators.logbackup import (
    LogBackupCheckOperator,
    LogBackupHealthGateOperator,
    LogBackupNotifyOperator,
    LogBackupRepairOperator,
)

pytestmark = pytest.mark.operators


def now_ts(seconds_ago: float = 0) -> int:
    return tso.from_datetime(datetime.now(UTC) - timedelta(seconds=seconds_ago))


def make_cluster(**log_backup: Any) -> ClusterConfig:
    return ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri="s3://tidbops-backups", conn_id="s3_dev"),
        alerts=("ops-log",),
        log_backup=LogBackupConfig(**{"enabled": True, "task_name": "pitr-dev", **log_backup}),
    )


@dataclass
class Out:
    exit_code: int
    stdout: str
    stderr_tail: str = ""


@dataclass
class World:
    """What the fake `br` and TiDB answer, and what they were asked."""

    tasks: list[dict[str, Any]] = field(default_factory=list)  # name, status, checkpoint, errors
    status_calls: list[list[str]] = field(default_factory=list)
    br_calls: list[list[str]] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)  # br log <sub> → stderr of a failure
    gc_safe_point: str | None = None
    tidb_down: bool = False
    log_range: tuple[int, int] | None = None

    def status(self, argv: list[str]) -> Out:
        self.status_calls.append(argv)
        if "--json" in argv:
            items = [
                {"name": t["name"], "start_ts": now_ts(3600), "checkpoint": t["checkpoint"], "progress": [],
                 "storage": "s3://tidbops-backups/dev/log", "table_filter": ["*.*"], "estimate_qps": 1.0,
                 "last_errors": [{"store_id": 1, "last_error": {"error_code": c, "error_message": m}}
                                 for c, m in t.get("errors", [])]}
                for t in self.tasks
            ]  # fmt: skip
            return Out(0, json.dumps(items))
        if not self.tasks:
            return Out(0, "○ No Task Yet.")
        lines = [f"● Total {len(self.tasks)} Tasks."]
        for i, t in enumerate(self.tasks, 1):
            date = tso.to_datetime(t["checkpoint"]).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " +0000"
            lines += [f"> #{i} <", f"              name: {t['name']}", f"            status: ● {t['status']}"]
            lines += [f"checkpoint[global]: {date}; gap=1s"]
        return Out(0, "\n".join(lines))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    w = World(gc_safe_point=(datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y%m%d-%H:%M:%S.000 +0000"))
    monkeypatch.setattr("tidbops.br.runner.run", lambda argv, **_: w.status(list(argv)))

    class Hook:
        def __init__(self, *, cluster: ClusterConfig, **_: Any) -> None:
            self.cluster = cluster

        @contextlib.contextmanager
        def pd_access(self) -> Iterator[ClusterConfig]:
            yield self.cluster

        def run_pd(self, argv: list[str], cluster: ClusterConfig, *, timeout: float, log_file: str = "") -> Any:
            from tidbops.br import runner  # the fake BR's `br log status` answers (patched below)

            return runner.run(argv, timeout=timeout)

        @contextlib.contextmanager
        def session(self, name: str = "br") -> Iterator[SimpleNamespace]:
            yield SimpleNamespace(cluster=self.cluster, env={}, key_file=None, log_file=f"/tmp/{name}.log", secrets=())

        def run(self, argv: list[str], session: Any, **_: Any) -> SimpleNamespace:
            w.br_calls.append(argv)
            sub = argv[2]
            if sub in w.fail:
                text = w.fail[sub]
                raise BRError(exit_code=1, outcome=parse_br_output(text), stderr_tail=text)
            outcome = BROutcome(recognised=True, success=True)
            if sub == "metadata" and w.log_range:
                outcome = BROutcome(recognised=True, log_min_ts=w.log_range[0], log_max_ts=w.log_range[1])
            if sub == "start":
                w.tasks = [{"name": "pitr-dev", "status": "NORMAL", "checkpoint": now_ts()}]
            return SimpleNamespace(outcome=outcome, seconds=0.1)

        def kill(self) -> None:
            pass

    class TiDB:
        def __init__(self, **_: Any) -> None:
            pass

        def cluster_facts(self) -> ClusterFacts:
            if w.tidb_down:
                raise TiDBUnreachableError("TiDB of connection 'tidb_dev' at 127.0.0.1:4000 does not answer")
            safe_point = parse_gc_time(w.gc_safe_point) if w.gc_safe_point else None
            return ClusterFacts("8.0.11-TiDB-v8.5.1", "v8.5.1", safe_point, 600.0, datetime.now(UTC))

    monkeypatch.setattr("tidbops_airflow.hooks.br.BRHook", Hook)
    monkeypatch.setattr("tidbops_airflow.hooks.tidb.TiDBHook", TiDB)
    yield w


@pytest.fixture
def catalog_path(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "catalog.db")
    cat = Catalog.from_url(f"sqlite:///{path}")
    cat.migrate()
    cat.close()
    yield path


@dataclass
class TI:
    dag_id: str = "tidb_log_backup_check__dev"
    run_id: str = "manual__1"
    xcom: dict[str, Any] = field(default_factory=dict)
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom.get(task_ids)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def run_check(catalog_path: str, cluster: ClusterConfig | None = None, **kw: Any) -> dict[str, Any]:
    op = LogBackupCheckOperator(
        task_id="check_log_backup", cluster=cluster or make_cluster(), catalog_sqlite_path=catalog_path, **kw
    )
    return op.execute({"ti": TI()})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- check


def test_check_a_healthy_task(world: World, catalog_path: str) -> None:
    cp = now_ts(2) + 5
    world.tasks = [{"name": "pitr-dev", "status": "NORMAL", "checkpoint": cp}]
    world.log_range = (now_ts(3600), cp)
    doc = run_check(catalog_path)
    assert json.loads(json.dumps(doc)) == doc
    assert (doc["status"], doc["status_source"], doc["healthy"], doc["actions"]) == ("NORMAL", "json+text", True, [])
    assert doc["checkpoint_ts"] == cp and 0 <= doc["lag_seconds"] < 10 and doc["gc_hold_seconds"] > 590
    assert doc["window"]["log"]["source"] == "metadata" and "no full backup yet" in doc["window"]["reason"]
    assert world.status_calls[0][-3:] == ["--json", "--log-file", world.status_calls[0][-1]]
    assert [c[2] for c in world.br_calls] == ["metadata"]
    with Catalog.from_url(f"sqlite:///{catalog_path}").engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT status, healthy, run_id FROM log_backup_checks").all() == [
            ("NORMAL", 1, "manual__1")
        ]


def test_check_no_task_plans_a_start_and_reads_no_metadata(world: World, catalog_path: str) -> None:
    doc = run_check(catalog_path)
    assert doc["status"] == "ABSENT" and [a["kind"] for a in doc["actions"]] == ["start"]
    assert world.br_calls == [], "no task: no log to read"


def test_check_error_without_tidb_still_judges(world: World, catalog_path: str) -> None:
    world.tidb_down = True
    world.tasks = [{"name": "pitr-dev", "status": "ERROR", "checkpoint": now_ts(60), "errors": [("KV:X", "disk")]}]
    doc = run_check(catalog_path)
    assert [f["key"] for f in doc["findings"]] == ["task_error"] and "KV:X: disk" in doc["findings"][0]["message"]
    assert doc["gc_safe_point"] is None and "gc_held" not in doc["evaluated"]


def test_check_fails_when_br_cannot_read_the_status(world: World, catalog_path: str, monkeypatch: Any) -> None:
    err = "Error: pd address (127.0.0.1:2379) not available: [BR:PD:ErrPDUpdateFailed]"
    monkeypatch.setattr("tidbops.br.runner.run", lambda argv, **_: Out(1, "", err))
    with pytest.raises(BRError, match="ErrPDUpdateFailed"):
        run_check(catalog_path)


def test_check_frozen_threshold_from_the_run(world: World, catalog_path: str) -> None:
    world.tasks = [{"name": "pitr-dev", "status": "NORMAL", "checkpoint": now_ts(30)}]
    first = run_check(catalog_path, frozen_after="0s")
    second = run_check(catalog_path, frozen_after="0s")
    assert first["healthy"] and [f["key"] for f in second["findings"]] == ["checkpoint_frozen"]


def test_check_frozen_threshold_from_the_run_conf(world: World, catalog_path: str) -> None:
    world.tasks = [{"name": "pitr-dev", "status": "NORMAL", "checkpoint": now_ts(30)}]
    op = LogBackupCheckOperator(task_id="check_log_backup", cluster=make_cluster(), catalog_sqlite_path=catalog_path)
    runs = [{"ti": TI(), "dag_run": SimpleNamespace(conf=conf)} for conf in ({}, {}, {"frozen_after": "0s"})]
    docs = [op.execute(ctx) for ctx in runs]  # type: ignore[arg-type]
    assert [d["healthy"] for d in docs] == [True, True, False], "default 4m; the run's conf: 0s"


def test_check_branches_to_repair_only_with_actions(world: World, catalog_path: str, monkeypatch: Any) -> None:
    from airflow.sdk import DAG

    with DAG("tidb_log_backup_check__dev", schedule=None):
        op = LogBackupCheckOperator(
            task_id="check_log_backup",
            cluster=make_cluster(),
            repair_task_id="repair_log_backup",
            notify_task_id="notify_log_backup",
            catalog_sqlite_path=catalog_path,
        )
        repair = LogBackupRepairOperator(task_id="repair_log_backup", cluster=make_cluster(), check_task_id="x")
        notify = LogBackupNotifyOperator(
            task_id="notify_log_backup", cluster=make_cluster(), routes=[], check_task_id="check_log_backup"
        )
        op >> [repair, notify]
        repair >> notify
    branches: list[list[str]] = []
    monkeypatch.setattr(op, "do_branch", lambda context, follow: branches.append(sorted(follow)))
    ti = TI()
    doc = op.execute({"ti": ti})  # type: ignore[arg-type]
    assert branches == [["notify_log_backup", "repair_log_backup"]] and ti.pushed["return_value"] == doc
    world.tasks = [{"name": "pitr-dev", "status": "NORMAL", "checkpoint": now_ts(1)}]
    op.execute({"ti": TI()})  # type: ignore[arg-type]
    assert branches[-1] == ["notify_log_backup"]


# --------------------------------------------------------------------------------------------- repair


def repair(catalog_path: str, actions: list[dict[str, Any]], cluster: ClusterConfig | None = None) -> dict[str, Any]:
    op = LogBackupRepairOperator(
        task_id="repair_log_backup",
        cluster=cluster or make_cluster(),
        check_task_id="check_log_backup",
        catalog_sqlite_path=catalog_path,
    )
    return op.execute({"ti": TI(xcom={"check_log_backup": {"actions": actions}})})  # type: ignore[arg-type]


def test_repair_starts_and_notices(world: World, catalog_path: str) -> None:
    doc = repair(catalog_path, [{"kind": "start", "task_name": "pitr-dev", "reason": "no task"}])
    [argv] = world.br_calls
    assert argv[1:3] == ["log", "start"] and argv[argv.index("--log-file") + 1] == "/tmp/log-repair.log"
    assert [o["ok"] for o in doc["outcomes"]] == [True] and [n["key"] for n in doc["notices"]] == ["task_started"]


def test_repair_failure_is_an_alert_not_a_task_failure(world: World, catalog_path: str) -> None:
    world.fail["resume"] = (
        "Error: the global checkpoint ts: 1(x) has been gc. : [BR:Backup:ErrBackupGCSafepointExceeded]backup GC "
        "safepoint exceeded"
    )
    doc = repair(catalog_path, [{"kind": "resume", "task_name": "pitr-dev", "reason": "paused"}])
    [f] = doc["findings"]
    assert f["key"] == "resume_failed" and "ErrBackupGCSafepointExceeded" in f["message"]
    cat = Catalog.from_url(f"sqlite:///{catalog_path}")
    assert [s.key for s in cat.list_alert_states("dev", open_only=True)] == ["resume_failed"]


# --------------------------------------------------------------------------------------------- notify


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def send(routes: Any, cluster: str, notification: dict[str, Any], context: Any) -> tuple[list[str], dict]:
        out.append(notification)
        if notification.get("message") == "undeliverable":
            return [], {name: "ConnectionError: down" for name, _ in routes}
        return [name for name, _ in routes], {}

    monkeypatch.setattr("tidbops_airflow.notifiers.health.send_health_notification", send)
    return out


def notify(
    catalog_path: str | None, check: dict[str, Any] | None = None, repair_doc: dict[str, Any] | None = None
) -> Any:
    op = LogBackupNotifyOperator(
        task_id="notify_log_backup",
        cluster=make_cluster(),
        routes=[("ops-log", AlertRoute(kind="log"))],
        check_task_id="check_log_backup",
        repair_task_id="repair_log_backup",
        catalog_sqlite_path=catalog_path,
    )
    ti = TI(xcom={"check_log_backup": check or {}, "repair_log_backup": repair_doc})
    return op.execute({"ti": ti})  # type: ignore[arg-type]


def test_an_episode_notifies_once_then_recovers(world: World, catalog_path: str, sent: list[dict[str, Any]]) -> None:
    world.tasks = [{"name": "pitr-dev", "status": "NORMAL", "checkpoint": now_ts(30)}]
    for _ in range(3):  # frozen from the second check on
        check = run_check(catalog_path, frozen_after="0s")
        out = notify(catalog_path, check)
    assert [(n["kind"], n["key"]) for n in sent] == [("firing", "checkpoint_frozen")], "once, not every check"
    assert [a["key"] for a in out["open"]] == ["checkpoint_frozen"]
    assert sent[0]["title"] == "[FIRING] dev: log backup checkpoint frozen"
    world.tasks[0]["checkpoint"] = now_ts(1)  # healed
    out = notify(catalog_path, run_check(catalog_path, frozen_after="0s"))
    assert [(n["kind"], n["key"]) for n in sent][1:] == [("resolved", "checkpoint_frozen")] and out["open"] == []
    world.tasks[0]["checkpoint"] = now_ts(0.5)  # and moving
    notify(catalog_path, run_check(catalog_path, frozen_after="0s"))
    assert len(sent) == 2


def test_notices_from_the_repair_step(world: World, catalog_path: str, sent: list[dict[str, Any]]) -> None:
    doc = repair(catalog_path, [{"kind": "start", "task_name": "pitr-dev", "reason": "no task"}])
    notify(catalog_path, {}, doc)
    assert [(n["kind"], n["key"]) for n in sent] == [("notice", "task_started")]


def test_without_catalog_every_finding_goes_out(
    world: World, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tidbops_airflow.hooks.catalog.CatalogHook.get_catalog_or_none", lambda self: None)
    check = {"findings": [{"key": "task_error", "severity": "critical", "message": "store 1: KV:X"}]}
    out = notify(None, check)
    assert [(n["kind"], n["key"], n["deduplicated"]) for n in sent] == [("firing", "task_error", False)]
    assert out["catalog"] == "unavailable" and [a["key"] for a in out["open"]] == ["task_error"]


def test_nothing_delivered_fails_and_stays_owed(world: World, catalog_path: str, sent: list[dict[str, Any]]) -> None:
    from tidbops.catalog.records import AlertState

    now = datetime.now(UTC)
    cat = Catalog.from_url(f"sqlite:///{catalog_path}")
    state = AlertState("dev", "task_error", "critical", "undeliverable", first_seen=now, last_seen=now)
    cat.update_alert_states("dev", lambda s: [state])
    with pytest.raises(RuntimeError, match="no alert route delivered firing task_error"):
        notify(catalog_path)
    assert cat.list_alert_states("dev")[0].notified_at is None, "owed still: the retry sends it"


# ----------------------------------------------------------------------------------------------- gate


def test_gate() -> None:
    gate = LogBackupHealthGateOperator(
        task_id="assert_log_backup_healthy", cluster=make_cluster(), notify_task_id="notify_log_backup"
    )
    healthy = TI(xcom={"notify_log_backup": {"open": []}})
    assert gate.execute({"ti": healthy}) is None  # type: ignore[arg-type,func-returns-value]
    sick = TI(xcom={"notify_log_backup": {"open": [{"key": "task_error", "severity": "critical", "message": "m"}]}})
    with pytest.raises(AirflowFailException, match="log backup unhealthy: task_error"):
        gate.execute({"ti": sick})  # type: ignore[arg-type]
