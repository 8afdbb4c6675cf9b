"""Log backup health: reading `br log status` (JSON, table, both), judging it, the alert episodes, a check
recorded in a real (SQLite) catalog, the repair step, and waiting for the checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops import tso
from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops.catalog.records import AlertState, BackupKind, LogBackupCheck, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig, LogBackupConfig, StorageConfig
from tidbops.logbackup import (
    CHECKPOINT_FROZEN,
    CHECKPOINT_LAG,
    GC_HELD,
    RESUME_FAILED,
    START_FAILED,
    TASK_ERROR,
    TASK_PAUSED,
    UNEXPECTED_TASK,
    Action,
    Finding,
    Notification,
    StatusReading,
    check_log_backup,
    checkpoint_progress,
    evaluate,
    mark_notified,
    observe,
    pending_notifications,
    read_log_status,
    repair_log_backup,
    target_tso,
    unsuppressed,
)
from tidbops.pitr import LogRange

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SAMPLES = Path(__file__).parent / "br" / "samples"


def ts_at(dt: datetime) -> int:
    return tso.from_datetime(dt)


def ago(seconds: float) -> int:
    return ts_at(NOW - timedelta(seconds=seconds))


def cluster(**log_backup: Any) -> ClusterConfig:
    cfg = {"enabled": True, "task_name": "pitr-dev", "max_checkpoint_lag": 600, **log_backup}
    return ClusterConfig(
        name="dev",
        env="dev",
        pd=("127.0.0.1:2379",),
        tidb_conn_id="tidb_dev",
        storage=StorageConfig(uri="s3://tidbops-backups"),
        log_backup=LogBackupConfig(**cfg),
    )


# ------------------------------------------------------------------------------- BR's outputs, built


@dataclass
class Task:
    name: str = "pitr-dev"
    status: str = "NORMAL"
    start: int = field(default_factory=lambda: ago(3600))
    checkpoint: int = field(default_factory=lambda: ago(5))
    errors: list[tuple[int, str, str]] = field(default_factory=list)


def json_out(tasks: list[Task], with_status: bool = False) -> str:
    items = []
    for t in tasks:
        item: dict[str, Any] = {"name": t.name, "start_ts": t.start, "end_ts": 999999999999999999}
        if with_status:
            item["status"] = t.status
        item |= {"table_filter": ["*.*"], "progress": [], "storage": "s3://tidbops-backups/dev/log"}
        item |= {"checkpoint": t.checkpoint, "estimate_qps": 3.5}
        item["last_errors"] = [
            {"store_id": s, "last_error": {"happen_at": 1795000000000, "error_code": c, "error_message": m}}
            for s, c, m in t.errors
        ]
        items.append(item)
    return "Detail BR log in /tmp/br.log \n" + json.dumps(items, separators=(",", ":"))


def _date(ts: int) -> str:
    return tso.to_datetime(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " +0000"


def table_out(tasks: list[Task]) -> str:
    if not tasks:
        return "○ No Task Yet.\n"
    lines = [f"● Total {len(tasks)} Tasks."]
    for i, t in enumerate(tasks, 1):
        symbol = "○" if t.status == "ERROR" else "●"
        rows = [("name", t.name), ("status", f"{symbol} {t.status}"), ("start", _date(t.start))]
        rows += [("storage", "s3://tidbops-backups/dev/log"), ("speed(est.)", "3.50 ops/s")]
        rows += [("checkpoint[global]", f"{_date(t.checkpoint)}; gap=5s")]
        for store, code, message in t.errors:
            rows += [(f"error[store={store}]", code), (f"error-message[store={store}]", message)]
        width = max(len(k) for k, _ in rows)
        lines.append(f"> #{i} <")
        lines += [f"{k.rjust(width)}: {v}" for k, v in rows]
    return "\n".join(lines) + "\n"


@dataclass
class Out:
    exit_code: int
    stdout: str
    stderr_tail: str = ""


@dataclass
class FakeBR:
    """Answers `br log status` (with and without --json) from a script; records every argv."""

    json_answer: Out | None
    table_answer: Out | None = None
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: list[str]) -> Out:
        self.calls.append(argv)
        answer = self.json_answer if "--json" in argv else self.table_answer
        assert answer is not None, f"unexpected call {argv}"
        return answer


def reading_of(tasks: list[Task], **kw: Any) -> StatusReading:
    return read_log_status(cluster(**kw), FakeBR(Out(0, json_out(tasks, with_status=True))))


# ------------------------------------------------------------------------------------------- reading


def test_json_with_status_is_read_once() -> None:
    br = FakeBR(Out(0, json_out([Task()], with_status=True)))
    r = read_log_status(cluster(), br, log_file="/tmp/br-status.log")
    assert r.source == "json" and [t.status for t in r.tasks] == ["NORMAL"]
    [argv] = br.calls
    assert argv[:3] == ["br", "log", "status"] and "--json" in argv and "--task-name" not in argv
    assert argv[argv.index("--pd") + 1] == "127.0.0.1:2379" and argv[-2:] == ["--log-file", "/tmp/br-status.log"]


@pytest.mark.parametrize("status", ["NORMAL", "PAUSE"])
def test_released_json_without_status_reads_the_table_for_it(status: str) -> None:
    task = Task(status=status, checkpoint=ago(5) + 77)  # a logical part: only JSON has it exactly
    br = FakeBR(Out(0, json_out([task])), Out(0, table_out([task])))
    r = read_log_status(cluster(), br)
    assert r.source == "json+text" and len(br.calls) == 2 and "--json" not in br.calls[1]
    [t] = r.tasks
    assert t.status == status and not t.status_derived
    assert t.checkpoint_ts == task.checkpoint, "the exact TSO from JSON, not the table's millisecond date"
    assert any("57959" in n for n in r.notes)


def test_released_json_with_store_errors_is_error_without_the_table() -> None:
    task = Task(status="ERROR", errors=[(1, "KV:LogBackup:RaftReq", "read index not ready")])
    br = FakeBR(Out(0, json_out([task])))
    r = read_log_status(cluster(), br)
    assert r.source == "json" and r.tasks[0].status == "ERROR" and r.tasks[0].status_derived


def test_sample_of_a_released_build() -> None:
    text = (SAMPLES / "log_status_json_released.txt").read_text()
    table = table_out([Task(name="pitr", status="PAUSE"), Task(name="pitr-old", status="ERROR")])
    r = read_log_status(cluster(), FakeBR(Out(0, text), Out(0, table)))
    assert [(t.name, t.status) for t in r.tasks] == [("pitr", "PAUSE"), ("pitr-old", "ERROR")]


def test_an_old_br_without_json_gets_the_table() -> None:
    br = FakeBR(Out(1, "", "Error: unknown flag: --json"), Out(0, table_out([Task(status="PAUSE")])))
    r = read_log_status(cluster(), br)
    assert r.source == "text" and r.tasks[0].status == "PAUSE"


def test_no_json_printed_reads_the_table() -> None:
    br = FakeBR(Out(0, table_out([Task()])), Out(0, table_out([Task()])))
    assert read_log_status(cluster(), br).source == "text"


def test_no_task_in_either_form() -> None:
    assert read_log_status(cluster(), FakeBR(Out(0, "[]"))).tasks == ()
    assert read_log_status(cluster(), FakeBR(Out(1, "", "unknown flag: --json"), Out(0, table_out([])))).tasks == ()


def test_br_failing_is_an_error_not_a_verdict() -> None:
    stderr = (
        "Error: pd address (127.0.0.1:2379) not available, error is connection refused, please check network: "
        "[BR:PD:ErrPDUpdateFailed]"
    )
    with pytest.raises(BRError) as err:
        read_log_status(cluster(), FakeBR(Out(1, "", stderr)))
    assert err.value.code == "BR:PD:ErrPDUpdateFailed" and err.value.exit_code == 1


def test_table_unreadable_after_statusless_json_leaves_the_status_unknown() -> None:
    r = read_log_status(cluster(), FakeBR(Out(0, json_out([Task()])), Out(1, "", "Error: boom")))
    assert r.source == "json" and r.tasks[0].status is None and any("unknown" in n for n in r.notes)


# ------------------------------------------------------------------------------------------- judging


def check(
    at: datetime, checkpoint: int | None, status: str = "NORMAL", task: str | None = "pitr-dev"
) -> LogBackupCheck:
    return LogBackupCheck(
        cluster="dev", checked_at=at, status=status, healthy=True, task_name=task, checkpoint_ts=checkpoint
    )


FROZEN_CP = ago(400)


@dataclass
class Judge:
    tasks: list[Task]
    keys: list[str]
    actions: list[str] = field(default_factory=list)
    status: str = "NORMAL"
    config: dict[str, Any] = field(default_factory=dict)
    previous: list[LogBackupCheck] = field(default_factory=list)
    gc: datetime | None = None
    text: str = ""


JUDGE = {
    "healthy": Judge([Task()], []),
    "no task: start it": Judge([], [], ["start"], "ABSENT"),
    "no task, log backup disabled: nothing": Judge([], [], [], "ABSENT", {"enabled": False, "task_name": None}),
    "lag over the limit": Judge([Task(checkpoint=ago(601))], [CHECKPOINT_LAG], text="lag 10m1s exceeds"),
    "lag at the limit": Judge([Task(checkpoint=ago(600))], []),
    "frozen: same checkpoint as the previous checks for long enough": Judge(
        [Task(checkpoint=FROZEN_CP)],
        [CHECKPOINT_FROZEN],
        previous=[check(NOW - timedelta(minutes=5), FROZEN_CP), check(NOW - timedelta(minutes=4.9), ago(700))],
        text="has not moved since 2026-11-22 09:55:00 UTC (2 checks over 5m0s) while the task says NORMAL",
    ),
    "frozen across three checks counts from the first": Judge(
        [Task(checkpoint=FROZEN_CP)],
        [CHECKPOINT_FROZEN],
        previous=[check(NOW - timedelta(minutes=1), FROZEN_CP), check(NOW - timedelta(minutes=6), FROZEN_CP)],
        text="(3 checks over 6m0s)",
    ),
    "same checkpoint, not for long enough yet": Judge(
        [Task(checkpoint=FROZEN_CP)], [], previous=[check(NOW - timedelta(minutes=1), FROZEN_CP)]
    ),
    "the checkpoint moved": Judge(
        [Task(checkpoint=ago(5))], [], previous=[check(NOW - timedelta(minutes=5), ago(300))]
    ),
    "same checkpoint, but the task was paused then": Judge(
        [Task(checkpoint=FROZEN_CP)], [], previous=[check(NOW - timedelta(minutes=5), FROZEN_CP, "PAUSE")]
    ),
    "same checkpoint, another task then": Judge(
        [Task(checkpoint=FROZEN_CP)], [], previous=[check(NOW - timedelta(minutes=5), FROZEN_CP, task="other")]
    ),
    "paused, auto_resume on: resume it": Judge([Task(status="PAUSE", checkpoint=ago(900))], [], ["resume"], "PAUSE"),
    "paused, auto_resume off: alert": Judge(
        [Task(status="PAUSE", checkpoint=ago(900))],
        [TASK_PAUSED],
        [],
        "PAUSE",
        {"auto_resume": False},
        text="auto_resume is off",
    ),
    "error: alert with the store's error": Judge(
        [Task(status="ERROR", checkpoint=ago(900), errors=[(7, "KV:LogBackup:RaftReq", "read index not ready")])],
        [TASK_ERROR],
        [],
        "ERROR",
        text="store 7 at 2026-11-18 11:06:40 UTC: KV:LogBackup:RaftReq: read index not ready",
    ),
    "error without a store error (a lag-limit pause)": Judge(
        [Task(status="ERROR")], [TASK_ERROR], [], "ERROR", text="no store error was printed"
    ),
    "another task runs": Judge(
        [Task(name="legacy")], [UNEXPECTED_TASK], [], text="no log backup task named 'pitr-dev'; BR runs legacy"
    ),
    "GC held by the log backup": Judge(
        [Task(status="PAUSE", checkpoint=ts_at(NOW - timedelta(hours=30)))],
        [TASK_PAUSED, GC_HELD],
        [],
        "PAUSE",
        {"auto_resume": False},
        gc=NOW - timedelta(hours=30),
        text="log backup task pitr-dev holds it",
    ),
    "GC held, no task (a leftover safepoint)": Judge(
        [], [GC_HELD], ["start"], "ABSENT", gc=NOW - timedelta(hours=25), text="pingcap/tidb#52082"
    ),
    "GC held by someone else": Judge(
        [Task()], [GC_HELD], gc=NOW - timedelta(hours=25), text="another service safepoint holds it"
    ),
    "GC young enough": Judge([Task()], [], gc=NOW - timedelta(minutes=10)),
}


@pytest.mark.parametrize("case", JUDGE.values(), ids=JUDGE.keys())
def test_evaluate(case: Judge) -> None:
    c = cluster(**case.config)
    ev = evaluate(c, reading_of(case.tasks, **case.config), now=NOW, previous=case.previous, gc_safe_point=case.gc)
    assert [f.key for f in ev.findings] == case.keys, [f.message for f in ev.findings]
    assert [a.kind for a in ev.actions] == case.actions
    assert ev.status == case.status
    assert ev.healthy is (not case.keys)
    if case.text:
        assert any(case.text in f.message for f in ev.findings), [f.message for f in ev.findings]
    # keys an action still decides are not judged here; GC only with a safepoint
    assert (START_FAILED in ev.evaluated) is ("start" not in case.actions)
    assert (RESUME_FAILED in ev.evaluated) is ("resume" not in case.actions)
    assert (GC_HELD in ev.evaluated) is (case.gc is not None)


def test_frozen_threshold_is_configurable() -> None:
    previous = [check(NOW - timedelta(seconds=10), FROZEN_CP)]
    ev = evaluate(cluster(), reading_of([Task(checkpoint=FROZEN_CP)]), now=NOW, previous=previous, frozen_after=5)
    assert [f.key for f in ev.findings] == [CHECKPOINT_FROZEN]


def test_an_unknown_state_is_judged_as_normal() -> None:
    reading = StatusReading(replace(reading_of([Task(checkpoint=ago(700))])).tasks, "json")
    reading = StatusReading(tuple(replace(t, status=None) for t in reading.tasks), "json")
    ev = evaluate(cluster(), reading, now=NOW)
    assert ev.status == "UNKNOWN" and [f.key for f in ev.findings] == [CHECKPOINT_LAG]


# ----------------------------------------------------------------------------------- alert episodes


def finding(key: str, message: str = "boom") -> Finding:
    return Finding(key, "critical", message)


def run_checks(
    steps: list[tuple[list[str], set[str] | None]], remind_after: float | None = None
) -> list[list[tuple[str, str]]]:
    """Each step: the keys found, and the keys judged (None: all found + lag + frozen). Returns, per step,
    the notifications sent (kind, key) — each marked sent right away."""
    states: dict[str, AlertState] = {}
    sent: list[list[tuple[str, str]]] = []
    for i, (keys, judged) in enumerate(steps):
        now = NOW + timedelta(minutes=5 * i)
        evaluated = judged if judged is not None else {*keys, CHECKPOINT_LAG, CHECKPOINT_FROZEN}
        for s in observe(states, "dev", [finding(k, f"step {i}") for k in keys], evaluated, now):
            states[s.key] = s
        notes = pending_notifications(states.values(), now, remind_after)
        for n in notes:
            states[n.key] = mark_notified(states[n.key], n, now)
        sent.append([(n.kind, n.key) for n in notes])
    return sent


def test_an_episode_fires_once_then_recovers_once() -> None:
    f = CHECKPOINT_FROZEN
    sent = run_checks([([f], None), ([f], None), ([f], None), ([], None), ([], None)])
    assert sent == [[("firing", f)], [], [], [("resolved", f)], []]


def test_a_new_episode_after_recovery_fires_again() -> None:
    f = CHECKPOINT_LAG
    sent = run_checks([([f], None), ([], None), ([f], None)])
    assert sent == [[("firing", f)], [("resolved", f)], [("firing", f)]]


def test_keys_not_judged_keep_their_state() -> None:
    sent = run_checks([([GC_HELD], None), ([], set()), ([], {GC_HELD})])
    assert sent == [[("firing", GC_HELD)], [], [("resolved", GC_HELD)]]


def test_reminders_when_asked() -> None:
    f = TASK_ERROR
    sent = run_checks([([f], None)] * 4, remind_after=600)  # checks every 5 minutes
    assert sent == [[("firing", f)], [], [("reminder", f)], []]


def test_episode_bookkeeping() -> None:
    s1 = observe({}, "dev", [finding(TASK_ERROR, "first")], {TASK_ERROR}, NOW)[0]
    assert (s1.first_seen, s1.last_seen, s1.occurrences, s1.episodes, s1.is_open) == (NOW, NOW, 1, 1, True)
    later = NOW + timedelta(minutes=5)
    s2 = observe({TASK_ERROR: s1}, "dev", [finding(TASK_ERROR, "second")], {TASK_ERROR}, later)[0]
    assert (s2.first_seen, s2.last_seen, s2.occurrences, s2.message) == (NOW, later, 2, "second")
    s3 = observe({TASK_ERROR: s2}, "dev", [], {TASK_ERROR}, later)[0]
    assert s3.resolved_at == later and not s3.is_open
    s4 = observe({TASK_ERROR: s3}, "dev", [finding(TASK_ERROR)], {TASK_ERROR}, later)[0]
    assert (s4.episodes, s4.occurrences, s4.resolved_at, s4.notified_at) == (2, 1, None, None)


def test_a_resolved_episode_never_notified_sends_no_recovery() -> None:
    s = observe({}, "dev", [finding(TASK_ERROR)], {TASK_ERROR}, NOW)[0]
    s = observe({TASK_ERROR: s}, "dev", [], {TASK_ERROR}, NOW)[0]
    assert pending_notifications([s], NOW) == []


def test_notification_texts_and_round_trip() -> None:
    s = observe({}, "dev", [finding(CHECKPOINT_FROZEN, "checkpoint stuck")], {CHECKPOINT_FROZEN}, NOW)[0]
    [n] = pending_notifications([s], NOW)
    assert n.title == "[FIRING] dev: log backup checkpoint frozen"
    assert n.text == "[FIRING] dev: log backup checkpoint frozen: checkpoint stuck"
    assert Notification.from_dict(json.loads(json.dumps(n.to_dict()))) == n
    s = mark_notified(s, n, NOW)
    s = observe({s.key: s}, "dev", [], {CHECKPOINT_FROZEN}, NOW + timedelta(minutes=12))[0]
    [r] = pending_notifications([s], NOW)
    assert r.kind == "resolved" and r.text.startswith(
        "[RESOLVED] dev: log backup checkpoint frozen after 12m (since 2026-11-22 10:00:00 UTC)"
    )
    [u] = unsuppressed("dev", [finding(TASK_ERROR, "x")], NOW)
    assert not u.deduplicated and "not de-duplicated" in u.text


# --------------------------------------------------------------------------- a check, with the catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/catalog.db")
    cat.migrate()
    return cat


def add_full(catalog: Catalog, backup_id: str, at: datetime) -> None:
    catalog.start_backup(
        NewBackup(id=backup_id, cluster="dev", kind=BackupKind.FULL, storage_uri=f"s3://b/{backup_id}", started_at=at)
    )
    catalog.finish_backup(backup_id, backup_ts=ts_at(at))
    catalog.mark_verified(backup_id, True, "ok")


def test_checks_are_recorded_and_a_frozen_checkpoint_fires_at_the_second(catalog: Catalog) -> None:
    add_full(catalog, "dev-full-1", NOW - timedelta(minutes=50))
    frozen = Task(checkpoint=ago(30), start=ago(3600))
    results = []
    for i in range(3):
        now = NOW + timedelta(minutes=5 * i)
        results.append(
            check_log_backup(
                cluster(), reading_of([frozen]), now=now, catalog=catalog, gc_safe_point=now - timedelta(minutes=10),
                log_range=LogRange(frozen.start, frozen.checkpoint), dag_id="tidb_log_backup_check__dev",
                run_id=f"manual__{i}",
            )
        )  # fmt: skip
    assert [r.evaluation.healthy for r in results] == [True, False, False]
    assert [f.key for f in results[1].evaluation.findings] == [CHECKPOINT_FROZEN]
    history = catalog.list_log_backup_checks("dev")
    assert [c.run_id for c in history] == ["manual__2", "manual__1", "manual__0"], "newest first"
    newest = history[0]
    assert newest.id == results[2].record.id and newest.status == "NORMAL" and not newest.healthy
    assert newest.checkpoint_ts == frozen.checkpoint and newest.lag_seconds == pytest.approx(630, abs=0.01)
    assert newest.finding_keys == (CHECKPOINT_LAG, CHECKPOINT_FROZEN)
    assert (newest.window_base_backup_id, newest.window_start_ts, newest.window_end_ts) == (
        "dev-full-1",
        ts_at(NOW - timedelta(minutes=50)),
        frozen.checkpoint,
    )
    assert newest.gc_hold_seconds == pytest.approx(600)
    [state_frozen, state_lag] = catalog.list_alert_states("dev")
    assert (state_frozen.key, state_frozen.occurrences, state_frozen.notified_at) == (CHECKPOINT_FROZEN, 2, None)
    assert state_lag.key == CHECKPOINT_LAG and state_lag.first_seen == NOW + timedelta(minutes=10)
    doc = results[2].to_dict()
    assert json.loads(json.dumps(doc)) == doc and doc["window"]["base_backup_id"] == "dev-full-1"
    assert doc["catalog"] == "recorded" and doc["check_id"] == newest.id
    opened = [e for e in catalog.list_events(cluster="dev") if e.kind == "log_backup.alert_opened"]
    assert [e.details["key"] for e in opened] == [CHECKPOINT_FROZEN, CHECKPOINT_LAG]  # type: ignore[index]


def test_a_check_without_catalog_still_judges(catalog: Catalog) -> None:
    result = check_log_backup(cluster(), reading_of([Task(status="ERROR")]), now=NOW, catalog=None)
    assert result.catalog == "unavailable" and [f.key for f in result.evaluation.findings] == [TASK_ERROR]
    assert result.window.log is not None and result.window.log.source == "status"
    assert any("frozen-checkpoint rule is not applied" in n for n in result.notes)


def test_old_checks_are_pruned(catalog: Catalog) -> None:
    for days in (100, 1):
        check_log_backup(cluster(), reading_of([Task()]), now=NOW - timedelta(days=days), catalog=catalog)
    check_log_backup(cluster(), reading_of([Task()]), now=NOW, catalog=catalog)
    assert len(catalog.list_log_backup_checks("dev")) == 2


# ------------------------------------------------------------------------------------------- repair


@dataclass
class Session:
    cluster: ClusterConfig
    log_file: str = "/tmp/br-repair.log"


def failing(code: str, text: str) -> Callable[[list[str]], object]:
    def run(argv: list[str]) -> object:
        err = f"Error: {text}: [{code}]backup GC safepoint exceeded"
        raise BRError(exit_code=1, outcome=parse_br_output(err), stderr_tail=err)

    return run


def test_repair_starts_a_missing_task(catalog: Catalog) -> None:
    calls: list[list[str]] = []
    result = repair_log_backup(
        Session(cluster()),
        [Action("start", "pitr-dev", "no task")],
        run_br=calls.append,
        catalog=catalog,
        now=NOW,
    )
    [argv] = calls
    assert argv[:3] == ["br", "log", "start"] and argv[argv.index("--task-name") + 1] == "pitr-dev"
    assert argv[argv.index("--storage") + 1] == "s3://tidbops-backups/dev/log" and "--log-file" in argv
    assert [o.ok for o in result.outcomes] == [True] and result.findings == ()
    [notice] = result.notices
    assert notice.kind == "notice" and "has been started" in notice.message and "next full backup" in notice.message
    assert [e.kind for e in catalog.list_events(cluster="dev")] == ["log_backup.started"]


def test_a_failed_resume_is_an_alert_until_a_resume_works(catalog: Catalog) -> None:
    action = Action("resume", "pitr-dev", "paused")
    text = "the global checkpoint ts: 4000(2026-11-20) has been gc. "
    failed = repair_log_backup(
        Session(cluster()),
        [action],
        run_br=failing("BR:Backup:ErrBackupGCSafepointExceeded", text),
        catalog=catalog,
        now=NOW,
    )
    [f] = failed.findings
    assert f.key == RESUME_FAILED and "ErrBackupGCSafepointExceeded" in f.message and "has been gc" in f.message
    assert failed.notices == () and not failed.outcomes[0].ok
    [state] = catalog.list_alert_states("dev", open_only=True)
    assert state.key == RESUME_FAILED
    ok = repair_log_backup(Session(cluster()), [action], run_br=lambda argv: None, catalog=catalog, now=NOW)
    assert ok.findings == () and ok.notices[0].key == "task_resumed"
    assert catalog.list_alert_states("dev", open_only=True) == []
    kinds = [e.kind for e in catalog.list_events(cluster="dev")]
    assert kinds == [
        "log_backup.resume_failed",
        "log_backup.alert_opened",
        "log_backup.resumed",
        "log_backup.alert_resolved",
    ]


# ------------------------------------------------------------------------------------------ waiting


@pytest.mark.parametrize(
    ("tasks", "state", "text"),
    [
        ([Task(checkpoint=ago(10))], "reached", "passed"),
        ([Task(checkpoint=ago(100))], "waiting", "1m30s before"),
        ([Task(status="PAUSE", checkpoint=ago(100))], "stuck", "is PAUSE"),
        ([Task(status="ERROR", checkpoint=ago(60), errors=[(1, "KV:X", "bad")])], "stuck", "KV:X: bad"),
        ([], "stuck", "no log backup task pitr-dev"),
    ],
)
def test_checkpoint_progress(tasks: list[Task], state: str, text: str) -> None:
    p = checkpoint_progress(reading_of(tasks), "pitr-dev", ago(10))
    assert p.state == state and text in p.message, p.message
    assert json.loads(json.dumps(p.to_dict()))["state"] == state


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (455000000000000000, 455000000000000000),
        ("455000000000000000", 455000000000000000),
        ("now", ts_at(NOW)),
        ("latest", ts_at(NOW)),
        ("2026-11-22T09:00:00Z", ts_at(NOW - timedelta(hours=1))),
        (NOW, ts_at(NOW)),
    ],
)
def test_target_tso(value: object, expected: int) -> None:
    assert target_tso(value, NOW) == expected


@pytest.mark.parametrize("value", [True, "yesterday", "2026-11-22T09:00:00", 0, 1.5])
def test_target_tso_refuses(value: object) -> None:
    with pytest.raises(ValueError):
        target_tso(value, NOW)
