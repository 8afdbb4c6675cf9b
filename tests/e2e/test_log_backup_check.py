"""Log backup (PITR) health through a real Airflow (REST API) on the playground, with the emulator's faults.

uat (``log_backup.auto_resume`` on) and prod (off) are used; no backup test arms a fault on them while
this module runs, and every fault is cleared and every log task stopped afterwards.

* no task → the check starts one (a notice; an ``events`` row);
* prod paused → alerted (auto_resume off), no resume; resumed by hand → recovery;
* uat checkpoint frozen while NORMAL → alerted at the second check, not again at the third; a full
  backup taken meanwhile lies after the log (no window: a gap); healed → recovery, and the window starts
  at that backup;
* uat ERROR → alerted with the store's error; resumed by hand → recovery;
* uat paused → resumed by the check (a notice);
* the deferrable wait's trigger polls the real ``br`` until the checkpoint passes now;
* the lag history in the catalog and in ``tidbops window``; no secret in any task log.

Checks are triggered back to back with ``frozen_after=5s`` (the playground's advancer moves the checkpoint
every 3 s, TiKV every 3 min: the production default is 4m).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops import tso
from tidbops.br.output import LogTaskStatus, parse_log_status
from tidbops.catalog.store import Catalog
from tidbops_airflow.triggers.logbackup import LogCheckpointTrigger
from tidbops_playground import faults, manager
from tidbops_playground.airflow import AirflowAPI
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

PIPELINE = "tidb_log_backup_check"
CONF = {"frozen_after": "5s"}
TASKS = {"uat": "pitr-uat", "prod": "pitr-prod"}
TIDBOPS = Path(sys.executable).parent / "tidbops"


@dataclass
class Run:
    cluster: str
    run_id: str
    state: str

    @property
    def dag_id(self) -> str:
        return f"{PIPELINE}__{self.cluster}"


class Checks:
    """Triggers checks of several clusters at once and reads what they did."""

    def __init__(self, api: AirflowAPI) -> None:
        self.api = api
        self.runs: list[Run] = []

    def run(self, *clusters: str) -> list[Run]:
        started = []
        for cluster in clusters:
            dag_id = f"{PIPELINE}__{cluster}"
            self.api.wait_for_dag(dag_id)
            self.api.unpause(dag_id)
            started.append((cluster, self.api.trigger(dag_id, conf=CONF, note="e2e log backup")))
        done = [Run(c, r, self.api.wait_run(f"{PIPELINE}__{c}", r, timeout=180)) for c, r in started]
        self.runs += done
        return done

    def one(self, cluster: str) -> Run:
        return self.run(cluster)[0]

    def xcom(self, run: Run, task_id: str) -> Any:
        return self.api.xcom(run.dag_id, run.run_id, task_id)

    def check(self, run: Run) -> dict[str, Any]:
        return dict(self.xcom(run, "check_log_backup"))

    def sent(self, run: Run) -> list[tuple[str, str]]:
        return [(s["kind"], s["key"]) for s in self.xcom(run, "notify_log_backup")["sent"]]

    def states(self, run: Run) -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in self.api.task_instances(run.dag_id, run.run_id)}

    def logs(self, run: Run) -> str:
        return self.api.run_logs(run.dag_id, run.run_id)


def br(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **manager.playground_env(home), "TIDBOPS_PLAYGROUND_HOME": str(home)}
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-log-backup-br.log")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def status(home: Path, registry: Registry, cluster: str) -> LogTaskStatus | None:
    out = br(home, "log", "status", "--pd", registry.clusters[cluster].pd)
    assert out.returncode == 0, out.stderr
    return next((t for t in parse_log_status(out.stdout) if t.name == TASKS[cluster]), None)


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.5)
    raise AssertionError(f"not {what} after {timeout}s")


def wait_status(home: Path, registry: Registry, cluster: str, wanted: str) -> LogTaskStatus:
    found: list[LogTaskStatus] = []

    def probe() -> bool:
        t = status(home, registry, cluster)
        found[:] = [t] if t else []
        return t is not None and t.status == wanted

    wait_for(f"{cluster} {wanted}", probe)
    return found[0]


def checkpoint(home: Path, registry: Registry, cluster: str) -> int:
    """The exact checkpoint TSO, from ``--json`` (the table form prints a time in ms: no logical bits)."""
    out = br(home, "log", "status", "--json", "--pd", registry.clusters[cluster].pd)
    assert out.returncode == 0, out.stderr
    t = next((t for t in parse_log_status(out.stdout) if t.name == TASKS[cluster]), None)
    assert t is not None and t.checkpoint_ts is not None
    return t.checkpoint_ts


def wait_frozen(home: Path, registry: Registry, cluster: str) -> int:
    """Until the checkpoint stays put across an advancer round (every 3 s)."""
    seen: list[int] = []

    def probe() -> bool:
        seen.append(checkpoint(home, registry, cluster))
        time.sleep(3.5)
        return checkpoint(home, registry, cluster) == seen[-1]

    wait_for(f"{cluster}'s checkpoint frozen", probe)
    return seen[-1]


def resume(home: Path, registry: Registry, cluster: str) -> None:
    """What the DBA does: `br log resume`."""
    out = br(home, "log", "resume", "--task-name", TASKS[cluster], "--pd", registry.clusters[cluster].pd)
    assert out.returncode == 0, out.stdout + out.stderr


async def _first(trigger: LogCheckpointTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


@pytest.fixture
def clean(playground_home: Path, registry: Registry) -> Iterator[None]:
    for cluster, task in TASKS.items():  # start from no task (an earlier module may have left one)
        faults.clear_faults(playground_home, cluster)
        if status(playground_home, registry, cluster) is not None:
            br(playground_home, "log", "stop", "--task-name", task, "--pd", registry.clusters[cluster].pd)
    try:
        yield
    finally:
        for cluster, task in TASKS.items():
            faults.clear_faults(playground_home, cluster)
            br(playground_home, "log", "stop", "--task-name", task, "--pd", registry.clusters[cluster].pd)


def test_log_backup_health(
    airflow: AirflowAPI,
    playground_home: Path,
    registry: Registry,
    catalog: Catalog,
    clean: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = playground_home
    checks = Checks(airflow)
    began = time.monotonic()

    # ---------------------------------------------------------------- no task → started (both clusters)
    for run in checks.run("uat", "prod"):
        assert run.state == "success", checks.logs(run)[-6000:]
        check = checks.check(run)
        assert (check["status"], [a["kind"] for a in check["actions"]]) == ("ABSENT", ["start"]), check
        repair = checks.xcom(run, "repair_log_backup")
        assert [(o["kind"], o["ok"]) for o in repair["outcomes"]] == [("start", True)], repair
        assert checks.sent(run) == [("notice", "task_started")]
        assert status(home, registry, run.cluster) is not None
        assert any(e.kind == "log_backup.started" for e in catalog.list_events(cluster=run.cluster))
    notify_log = airflow.task_log(checks.runs[0].dag_id, checks.runs[0].run_id, "notify_log_backup")
    assert "ALERT " in notify_log and "notice" in notify_log and "has been started" in notify_log

    # ------------------------------------------- uat frozen (baseline check) | prod paused → alerted
    wait_status(home, registry, "prod", "NORMAL")
    faults.set_fault(home, "prod", "log_task_pause")
    faults.set_fault(home, "uat", "log_checkpoint_frozen")
    frozen_at = wait_frozen(home, registry, "uat")
    wait_status(home, registry, "prod", "PAUSE")
    faults.clear_faults(home, "prod")  # the task stays paused; nothing resumes it but a resume
    airflow.wait_for_dag("tidb_backup_full__uat")
    airflow.unpause("tidb_backup_full__uat")
    backup_id = airflow.trigger("tidb_backup_full__uat", note="e2e: a full backup while the log is frozen")
    uat1, prod2 = checks.run("uat", "prod")
    assert uat1.state == "success" and checks.check(uat1)["checkpoint_ts"] == frozen_at, checks.check(uat1)
    assert prod2.state == "failed", "the gate is red while an alert is open"
    prod_check = checks.check(prod2)
    assert prod_check["status"] == "PAUSE" and prod_check["actions"] == []
    assert [f["key"] for f in prod_check["findings"]] == ["task_paused"]
    assert "auto_resume is off" in prod_check["findings"][0]["message"]
    assert checks.states(prod2)["repair_log_backup"] == "skipped"
    assert checks.states(prod2)["assert_log_backup_healthy"] == "failed"
    assert checks.sent(prod2) == [("firing", "task_paused")]
    assert status(home, registry, "prod").status == "PAUSE", "auto_resume off: not resumed"  # type: ignore[union-attr]

    # ------------------------------- uat frozen → alerted at the second check | prod resumed → recovery
    resume(home, registry, "prod")
    # frozen means unchanged for longer than frozen_after (5s) since the first check that saw it: a fast
    # machine can finish the prod assertions above sooner than that
    seen_at = datetime.fromisoformat(checks.check(uat1)["checked_at"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (seen_at + timedelta(seconds=6) - datetime.now(UTC)).total_seconds()))
    uat2, prod3 = checks.run("uat", "prod")
    uat_check = checks.check(uat2)
    assert uat2.state == "failed" and uat_check["status"] == "NORMAL" and uat_check["checkpoint_ts"] == frozen_at
    assert [f["key"] for f in uat_check["findings"]] == ["checkpoint_frozen"], uat_check
    assert "pingcap/tidb#53047" in uat_check["findings"][0]["message"]
    assert checks.sent(uat2) == [("firing", "checkpoint_frozen")]
    assert prod3.state == "success" and checks.sent(prod3) == [("resolved", "task_paused")]

    # ------------------------------------ a third frozen check: still failing, not paged again
    assert airflow.wait_run("tidb_backup_full__uat", backup_id, timeout=240) == "success"
    backup_ts = next(b.backup_ts for b in catalog.list_backups("uat") if b.run_id == backup_id)
    uat3 = checks.one("uat")
    assert uat3.state == "failed" and checks.sent(uat3) == [], "de-duplicated"
    window = checks.check(uat3)["window"]
    assert not window["exists"] and "before full backup" in window["reason"], window

    # --------------------------------------------------- healed → recovery; the window starts at the full
    faults.clear_faults(home, "uat")
    wait_for("uat's checkpoint past the full backup", lambda: checkpoint(home, registry, "uat") > (backup_ts or 0))
    uat4 = checks.one("uat")
    assert uat4.state == "success" and checks.sent(uat4) == [("resolved", "checkpoint_frozen")]
    window = checks.check(uat4)["window"]
    assert window["exists"] and window["start_ts"] == backup_ts and window["log"]["source"] == "metadata", window

    # ------------------------------------------------------------------ uat ERROR → alerted with the store error
    message = "retry time exceeds: failed to get the snapshot (region_id = 4242): read index not ready"
    faults.set_fault(home, "uat", "log_task_error", store_id=1, code="KV:LogBackup:RaftReq", message=message)
    wait_status(home, registry, "uat", "ERROR")
    faults.clear_faults(home, "uat")
    uat5 = checks.one("uat")
    error_check = checks.check(uat5)
    assert uat5.state == "failed" and error_check["status"] == "ERROR" and error_check["actions"] == []
    [finding] = error_check["findings"]
    assert finding["key"] == "task_error" and "store 1" in finding["message"] and message in finding["message"]
    assert "KV:LogBackup:RaftReq" in finding["message"]
    assert checks.sent(uat5) == [("firing", "task_error")]
    alert_log = airflow.task_log(uat5.dag_id, uat5.run_id, "notify_log_backup")
    assert "ALERT " in alert_log and "read index not ready" in alert_log and "task_error" in alert_log

    # ---------------------------------------------------------- the DBA resumes it → recovery notice
    resume(home, registry, "uat")
    uat6 = checks.one("uat")
    assert uat6.state == "success" and checks.sent(uat6) == [("resolved", "task_error")]

    # ---------------------------------------------------------------- uat paused → resumed by the check
    faults.set_fault(home, "uat", "log_task_pause")
    wait_status(home, registry, "uat", "PAUSE")
    faults.clear_faults(home, "uat")
    uat7 = checks.one("uat")
    assert uat7.state == "success", checks.logs(uat7)[-6000:]
    assert [a["kind"] for a in checks.check(uat7)["actions"]] == ["resume"]
    assert checks.sent(uat7) == [("notice", "task_resumed")]
    assert status(home, registry, "uat").status == "NORMAL"  # type: ignore[union-attr]

    # -------------------------- the deferrable wait's trigger, against the real br: "until the log passes now"
    for key, value in {**manager.playground_env(home), "TIDBOPS_PLAYGROUND_HOME": str(home)}.items():
        monkeypatch.setenv(key, value)
    target = tso.from_datetime(datetime.now(UTC))
    trigger = LogCheckpointTrigger(cluster="uat", target_ts=target, poll_interval=1)

    event = asyncio.run(asyncio.wait_for(_first(trigger), timeout=60))
    assert event["status"] == "reached" and event["checkpoint_ts"] >= target, event

    # ------------------------------------------------------------------- lag history: catalog and CLI
    history = catalog.list_log_backup_checks("uat")
    assert [c.status for c in reversed(history)] == [
        "ABSENT",
        "NORMAL",
        "NORMAL",
        "NORMAL",
        "NORMAL",
        "ERROR",
        "NORMAL",
        "PAUSE",
    ]
    assert all(c.lag_seconds is not None for c in history if c.status != "ABSENT")
    assert [c.healthy for c in reversed(history)] == [True, True, False, False, True, False, True, True]
    assert catalog.list_alert_states("uat", open_only=True) == []
    [latest_uat] = [c for c in catalog.latest_log_backup_checks() if c.cluster == "uat"]
    assert latest_uat.run_id == uat7.run_id
    url = f"sqlite:///{home / 'airflow' / 'tidbops_catalog.db'}"
    cli = subprocess.run(
        [str(TIDBOPS), "window", "--cluster", "uat", "--json", "--checks", "20", "--catalog", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    [report] = json.loads(cli.stdout)["clusters"]
    assert report["window"]["exists"] and report["window"]["base"]["backup_id"] is not None
    assert [h["status"] for h in report["history"]] == [c.status for c in history]
    text = subprocess.run(
        [str(TIDBOPS), "window", "--cluster", "uat", "--catalog", url], capture_output=True, text=True, timeout=60
    ).stdout
    assert text.startswith("uat: PITR window") and "lag history (newest first, last 8 checks)" in text

    # ------------------------------------------------------------------------------- no secret leaked
    assert registry.s3 is not None
    secrets = [registry.s3.secret_key, registry.clusters["uat"].sql_password]
    for run in checks.runs:
        logs = checks.logs(run)
        assert not [s for s in secrets if s and s in logs], f"a secret in the logs of {run.dag_id} {run.run_id}"
    print(f"log backup e2e: {len(checks.runs)} check runs in {time.monotonic() - began:.0f}s")
