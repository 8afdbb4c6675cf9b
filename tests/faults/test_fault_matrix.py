"""The fault matrix (#18): one fault at a time while the fleet's pipelines run through a real Airflow.

Each test is one row: it injects the fault, runs the pipeline, records what happened, lifts the fault,
measures how long the pipeline takes to succeed again, and checks that no row was lost, that the catalog
agrees with storage, and that the alert route got exactly what it should (one alert for an episode that
ends in a failed task; none when a retry healed it). The rows share one playground and one Airflow
(tests/faults/conftest.py); the table is printed at the end and written to ``$TIDBOPS_FAULTS_TABLE``
(``make test-faults``: docs/reliability.md).

Backup rows use dev (not encrypted, so its data files can be decoded to count rows).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_backup_when_things_break import s3_down
from tests.e2e.test_log_backup_check import br
from tests.faults.conftest import CATALOG_CLUSTER, Bed
from tests.faults.matrix import Row, alerts_for, catalog_vs_storage, raw_storage, rows_lost, write_table
from tidbops import tso
from tidbops.br.output import LogTaskStatus, parse_log_status
from tidbops.catalog.manifest import rebuild_catalog
from tidbops.catalog.records import BackupStatus
from tidbops_playground import faults, manager
from tidbops_playground.airflow import VENV_BIN, _alive, _descendants

pytestmark = pytest.mark.faults

FULL = "tidb_backup_full__dev"
LOG_CHECK = "tidb_log_backup_check__dev"
LOG_TASK = "pitr-dev"
INCR = "tidb_backup_incremental__dev"
RUN_TIMEOUT = 180.0
FAILED = {"up_for_retry", "failed"}
_ROWS: list[Row] = []
_STARTED = time.monotonic()


_HOME: list[Path] = []  # the bed's playground home, for _br_pids


@pytest.fixture(scope="module", autouse=True)
def _table(bed: Bed) -> Iterator[None]:
    _HOME[:] = [bed.home]
    yield
    print("\n" + write_table(_ROWS, time.monotonic() - _STARTED))


@contextmanager
def row(bed: Bed, fault: str, pipeline: str, expected: str, alerts_expected: int) -> Iterator[Row]:
    """A matrix row: recorded whatever happens; every fault of every cluster cleared on the way out."""
    r = Row(fault=fault, pipeline=pipeline, expected=expected, alerts_expected=alerts_expected)
    _ROWS.append(r)
    try:
        yield r
    except BaseException as exc:
        r.observed = f"{r.observed}; the test stopped: {type(exc).__name__}: {str(exc)[:300]}"
        raise
    finally:
        faults.clear_faults(bed.home)
        bed.proxy.set_mode("pass")


def trigger(bed: Bed, dag_id: str, note: str, conf: dict[str, Any] | None = None) -> str:
    bed.api.wait_for_dag(dag_id)
    bed.api.unpause(dag_id)
    return bed.api.trigger(dag_id, conf=conf, note=f"faults: {note}")


def states(bed: Bed, dag_id: str, run_id: str) -> dict[str, str | None]:
    return {t["task_id"]: t["state"] for t in bed.api.task_instances(dag_id, run_id)}


def run_backup(bed: Bed, run_id: str, dag_id: str = FULL) -> Any:
    """The catalog row of the backup this run made."""
    target = bed.api.xcom(dag_id, run_id, "plan_backup")
    return bed.catalog.get(target["backup_id"])


def finish(bed: Bed, r: Row, cluster: str, backup_id: str | None) -> None:
    """Rows lost in the final backup, the catalog against storage, then the row's verdict."""
    if backup_id is not None:
        r.data_lost = rows_lost(bed, cluster, backup_id)
    ok, r.consistent = catalog_vs_storage(bed, cluster)
    r.passed = ok and r.data_lost in (0, None) and r.alerts == r.alerts_expected
    assert ok, r.consistent
    assert r.data_lost in (0, None), f"{r.data_lost} row(s) differ between the source and the backup"
    assert r.alerts == r.alerts_expected, f"{r.alerts} alert(s), expected {r.alerts_expected}"


def recover(bed: Bed, dag_id: str, run_id: str, task_id: str, lifted: float) -> float:
    """Clear the failed task (what the DBA does once the fault is gone); seconds from lifting to success."""
    bed.api.clear_task(dag_id, run_id, task_id)
    state = bed.api.wait_cleared_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", bed.api.run_logs(dag_id, run_id)[-4000:]
    return time.monotonic() - lifted


def fail_then_recover(
    bed: Bed,
    r: Row,
    note: str,
    *,
    fault: Callable[[], AbstractContextManager[object]],
    expect: Callable[[dict[str, str | None]], str],
    timeout: float = RUN_TIMEOUT,
) -> None:
    """The body most rows share: under ``fault`` a full backup's run fails (``expect`` checks the task states
    and says what it saw); the fault is lifted; the failed task is cleared (what the DBA does) and the run
    ends with a verified backup; then rows lost, the catalog against storage and the alerts (one)."""
    mark = bed.sink.mark()
    with fault():
        run_id = trigger(bed, FULL, note)
        started = time.monotonic()
        state = bed.api.wait_run(FULL, run_id, timeout=timeout)
        took = time.monotonic() - started
        st = states(bed, FULL, run_id)
    lifted = time.monotonic()
    r.alerts = len(alerts_for(bed, mark, run_id))
    failed = sorted(t for t, s in st.items() if s == "failed")
    r.observed = f"run {state} after {took:.0f} s ({', '.join(failed) or 'no task'} failed); {expect(st)}"
    assert state == "failed" and failed, st
    r.recover_s = recover(bed, FULL, run_id, failed[0], lifted)
    backup = run_backup(bed, run_id)
    assert backup.status is BackupStatus.SUCCEEDED and backup.verified
    r.observed += "; cleared run succeeded, verified"
    finish(bed, r, "dev", backup.id)


@contextmanager
def dev_fault(bed: Bed, name: str, **params: Any) -> Iterator[None]:
    """An emulator fault on dev, cleared on the way out."""
    faults.set_fault(bed.home, "dev", name, **params)
    try:
        yield
    finally:
        faults.clear_faults(bed.home, "dev")


@contextmanager
def proxy_mode(bed: Bed, mode: str) -> Iterator[None]:
    bed.proxy.set_mode(mode)
    try:
        yield
    finally:
        bed.proxy.set_mode("pass")


@contextmanager
def stopped(bed: Bed, cluster: str) -> Iterator[None]:
    instance = manager.instance(bed.home, cluster)
    instance.stop()
    try:
        yield
    finally:
        instance.start()


class BRSampler:
    """Counts the ``br`` processes of one cluster every 0.1 s: the most that ever ran at once."""

    def __init__(self, pd: str) -> None:
        self.pd, self.most, self._stop = pd, 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, len(_br_pids(self.pd)))
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.most


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"not {what} after {timeout}s")


# ------------------------------------------------------------------------------------------- rows


def test_baseline_no_fault(bed: Bed) -> None:
    with row(bed, "none (baseline)", "full backup", "succeeds, verified", 0) as r:
        mark = bed.sink.mark()
        started = time.monotonic()
        run_id = trigger(bed, FULL, "baseline")
        state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT)
        took = time.monotonic() - started
        backup = run_backup(bed, run_id)
        r.alerts = len(alerts_for(bed, mark, run_id))
        r.observed = f"{state} in {took:.0f} s; backup {backup.status.value}, verified={backup.verified}"
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        assert backup.status is BackupStatus.SUCCEEDED and backup.verified
        finish(bed, r, "dev", backup.id)


def test_br_exits_1_halfway(bed: Bed) -> None:
    expected = "both tries fail, row failed, no manifest; after the fault, a cleared retry succeeds"
    with row(bed, "BR exits 1 halfway", "full backup", expected, 1) as r:

        def seen(st: dict[str, str | None]) -> str:
            assert st["run_br_backup"] == "failed", st
            return "row failed"

        fail_then_recover(bed, r, "BR exits 1 halfway", fault=lambda: dev_fault(bed, "backup_fail_midway"), expect=seen)


def test_retry_after_a_partial_upload(bed: Bed) -> None:
    expected = "try 1 leaves data files, no backupmeta; try 2 (automatic) clears them and succeeds; no alert"
    with row(bed, "retry after a partial upload", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        faults.set_fault(bed.home, "dev", "backup_fail_midway")
        run_id = trigger(bed, FULL, "retry after a partial upload")
        bed.api.wait_task(FULL, run_id, "run_br_backup", {"up_for_retry"}, timeout=RUN_TIMEOUT)
        faults.clear_faults(bed.home, "dev")
        lifted = time.monotonic()
        state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT)
        r.recover_s = time.monotonic() - lifted
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        log2 = bed.api.task_log(FULL, run_id, "run_br_backup", 2)
        backup = run_backup(bed, run_id)
        r.alerts = len(alerts_for(bed, mark, run_id))
        cleaned = "without a backupmeta" in log2
        r.observed = (
            f"try 2 {'cleared the partial files' if cleaned else 'did NOT say it cleared partial files'}; "
            f"run {state}; row {backup.status.value} (try {backup.try_number}), verified={backup.verified}"
        )
        assert cleaned, log2[-3000:]
        assert backup.status is BackupStatus.SUCCEEDED and backup.verified and backup.try_number == 2
        finish(bed, r, "dev", backup.id)


def test_storage_full_writes_refused(bed: Bed) -> None:
    expected = "BR fails with ErrStorageUnknown on both tries, row failed; a cleared retry succeeds"
    with row(bed, "storage full / writes refused", "full backup", expected, 1) as r:
        before = {b.id for b in bed.catalog.list_backups("dev")}

        def seen(st: dict[str, str | None]) -> str:
            [backup] = [b for b in bed.catalog.list_backups("dev") if b.id not in before]
            assert st["run_br_backup"] == "failed" and backup.status is BackupStatus.FAILED, (st, backup)
            assert "ErrStorageUnknown" in (backup.error or ""), backup.error
            return f"row failed: {(backup.error or '')[:80]}"

        fault = lambda: dev_fault(bed, "storage_write_error", after=2)  # noqa: E731
        fail_then_recover(bed, r, "storage writes refused", fault=fault, expect=seen)


def test_source_database_down(bed: Bed) -> None:
    expected = "check_cluster fails naming the connection, nothing planned or catalogued; a cleared run succeeds"
    with row(bed, "source DB down", "full backup", expected, 1) as r:
        before = {b.id for b in bed.catalog.list_backups("dev")}

        def seen(st: dict[str, str | None]) -> str:
            new = [b.id for b in bed.catalog.list_backups("dev") if b.id not in before]
            assert st["check_cluster"] == "failed" and new == [], (st, new)
            return "0 catalog rows"

        fail_then_recover(bed, r, "source database down", fault=lambda: stopped(bed, "dev"), expect=seen)


HARVEST = "tidb_slow_query_harvest__dev"


def test_slow_query_harvest_fails(bed: Bed) -> None:
    """#18 item 4: the harvest alerts through the cluster's routes, once per failed episode (its retry does not
    alert), and not at all once it succeeds again."""
    expected = "both tries of the harvest fail (source DB down): exactly 1 alert; a cleared run succeeds, no more"
    with row(bed, "slow-query harvest fails (source DB down)", "slow-query harvest", expected, 1) as r:
        from tidbops_playground import slowlogs

        today = datetime.now(UTC).date()
        slowlogs.reset(bed.home, bed.registry, "dev", today=today)
        until = {"until": datetime.combine(today, datetime.min.time(), UTC).isoformat()}
        mark = bed.sink.mark()
        with stopped(bed, "dev"):
            run_id = trigger(bed, HARVEST, "harvest, source down", conf=until)
            state = bed.api.wait_run(HARVEST, run_id, timeout=RUN_TIMEOUT)
            ti = bed.api.task_instance(HARVEST, run_id, "harvest_slow_queries")
        lifted = time.monotonic()
        posts = alerts_for(bed, mark, run_id)
        r.observed = (
            f"run {state}; harvest_slow_queries {ti['state']} after try {ti['try_number']}; alerts: "
            + ", ".join(f"{p.get('state') or 'failed'}:{p.get('task_id') or p.get('alert')}" for p in posts)
        )
        assert state == "failed" and ti["state"] == "failed" and ti["try_number"] == 2, (state, ti)
        r.recover_s = recover(bed, HARVEST, run_id, "harvest_slow_queries", lifted)
        r.alerts = len(alerts_for(bed, mark, run_id))  # after the healed run: still the one
        r.observed += "; cleared run succeeded"
        r.data_lost = None
        finish(bed, r, "dev", None)
        assert [p.get("task_id") for p in posts] == ["harvest_slow_queries"], posts


def test_s3_stopped(bed: Bed) -> None:
    expected = "plan_backup fails naming the endpoint (refused), nothing catalogued; a cleared run succeeds"
    with row(bed, "S3 stopped", "full backup", expected, 1) as r:
        fault = lambda: s3_down(bed.home, bed.bucket)  # noqa: E731
        fail_then_recover(bed, r, "S3 stopped", fault=fault, expect=lambda st: "refused")


def test_s3_blackholed(bed: Bed) -> None:
    expected = "connections hang; the task fails within bounded time naming the endpoint; a cleared run succeeds"
    with row(bed, "S3 blackholed (connections hang)", "full backup", expected, 1) as r:
        fault = lambda: proxy_mode(bed, "hang")  # noqa: E731
        fail_then_recover(bed, r, "S3 blackholed", fault=fault, expect=lambda st: "hung, bounded", timeout=600)


def test_s3_slow(bed: Bed) -> None:
    expected = "every S3 answer 0.5 s late: the backup is slower and succeeds, verified; no alert"
    with row(bed, "S3 slow (answers +0.5 s)", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        bed.proxy.set_mode("slow", delay=0.5)
        run_id = trigger(bed, FULL, "S3 slow")
        started = time.monotonic()
        state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT * 2)
        took = time.monotonic() - started
        bed.proxy.set_mode("pass")
        backup = run_backup(bed, run_id)
        r.alerts = len(alerts_for(bed, mark, run_id))
        r.observed = f"run {state} in {took:.0f} s; row {backup.status.value}, verified={backup.verified}"
        r.recover_s = 0.0
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        assert backup.status is BackupStatus.SUCCEEDED and backup.verified
        finish(bed, r, "dev", backup.id)


def test_br_killed_with_sigkill(bed: Bed) -> None:
    expected = "try 1 fails (BR killed), row failed; try 2 (automatic) succeeds; never 2 BR at once; no alert"
    with row(bed, "BR killed (SIGKILL)", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        pd = bed.registry.clusters["dev"].pd
        faults.set_fault(bed.home, "dev", "backup_slow", seconds=30)
        sampler = BRSampler(pd)
        run_id = trigger(bed, FULL, "BR killed with SIGKILL")
        bed.api.wait_task(FULL, run_id, "run_br_backup", {"running"}, timeout=RUN_TIMEOUT)
        pid = wait_for("a br backup of dev", lambda: _br_pids(pd), timeout=60)[0]
        time.sleep(2)
        faults.clear_faults(bed.home, "dev")
        os.kill(pid, signal.SIGKILL)
        lifted = time.monotonic()
        state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT)
        r.recover_s = time.monotonic() - lifted
        most = sampler.stop()
        backup = run_backup(bed, run_id)
        r.alerts = len(alerts_for(bed, mark, run_id))
        log1 = bed.api.task_log(FULL, run_id, "run_br_backup", 1)
        r.observed = f"run {state}; row {backup.status.value} (try {backup.try_number}); most BR at once: {most}"
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        assert "killed" in log1.lower() or "signal" in log1.lower() or "-9" in log1, log1[-2000:]
        assert backup.try_number == 2 and backup.verified and most == 1
        finish(bed, r, "dev", backup.id)


def _br_pids(pd: str, home: Path | None = None) -> list[int]:
    """The br invocations of this playground talking to ``pd`` (other playgrounds on the machine, e.g. a
    concurrent e2e run, use the same fake PD addresses: their processes are told apart by their home).

    One invocation is one process, except for a moment at its start: ``bin/br`` is a shell script whose
    command substitutions (``$(readlink …)``, ``$(cd …; pwd)``) fork subshells that carry the script's
    command line until they exec or exit. Such a child of a matching process is the same invocation, not a
    second BR (counting it once made the BR-killed row read "2 at once", 2026-12-07)."""
    home = home or _HOME[0]
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        # a real br binary, or the emulator (bin/br execs `python -m tidbops_playground.br`)
        is_br = any(w.endswith("/br") or w in ("br", "tidbops_playground.br") for w in words[:3])
        if not (is_br and pd in words):
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TIDBOPS_PLAYGROUND_HOME={home}".encode() in environ:
            pids.append(int(entry.name))
    matched = set(pids)
    return [pid for pid in pids if _parent_or_none(pid) not in matched]


def _parent_or_none(pid: int) -> int | None:
    try:
        return _parent(pid)
    except (OSError, ValueError, IndexError):
        return None


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def test_worker_killed_mid_br_task(bed: Bed) -> None:
    expected = "the task is retried; the retry never runs a second BR while the first lives; succeeds; no alert"
    with row(bed, "worker killed mid BR task", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        pd = bed.registry.clusters["dev"].pd
        faults.set_fault(bed.home, "dev", "backup_slow", seconds=20)
        sampler = BRSampler(pd)
        run_id = trigger(bed, FULL, "worker killed mid BR task")
        bed.api.wait_task(FULL, run_id, "run_br_backup", {"running"}, timeout=RUN_TIMEOUT)
        br_pid = wait_for("a br backup of dev", lambda: _br_pids(pd), timeout=60)[0]
        time.sleep(2)
        worker = _parent(br_pid)
        os.kill(worker, signal.SIGKILL)
        lifted = time.monotonic()
        faults.clear_faults(bed.home, "dev")
        state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT * 2)
        r.recover_s = time.monotonic() - lifted
        most = sampler.stop()
        backup = run_backup(bed, run_id)
        r.alerts = len(alerts_for(bed, mark, run_id))
        ti = bed.api.task_instance(FULL, run_id, "run_br_backup")
        r.observed = (
            f"run {state}; run_br_backup try {ti['try_number']}; row {backup.status.value}; most BR at once: {most}"
        )
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        assert backup.status is BackupStatus.SUCCEEDED and backup.verified
        assert most == 1, f"{most} br processes of dev ran at once"
        finish(bed, r, "dev", backup.id)


def test_two_triggers_of_the_same_backup(bed: Bed) -> None:
    expected = "the second run waits for the first (one run at a time); both succeed; never 2 BR at once"
    with row(bed, "two triggers of the same backup", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        pd = bed.registry.clusters["dev"].pd
        sampler = BRSampler(pd)
        first = trigger(bed, FULL, "two triggers (1)")
        second = trigger(bed, FULL, "two triggers (2)")
        s1 = bed.api.wait_run(FULL, first, timeout=RUN_TIMEOUT)
        s2 = bed.api.wait_run(FULL, second, timeout=RUN_TIMEOUT)
        most = sampler.stop()
        b1, b2 = run_backup(bed, first), run_backup(bed, second)
        r.alerts = len(alerts_for(bed, mark, first, second))
        r.recover_s = 0.0
        r.observed = f"runs {s1}, {s2}; two distinct backups: {b1.id != b2.id}; most BR at once: {most}"
        assert (s1, s2) == ("success", "success") and b1.id != b2.id and most == 1
        assert b1.verified and b2.verified
        finish(bed, r, "dev", b2.id)


def test_catalog_database_down(bed: Bed) -> None:
    expected = (
        "the backup runs, is verified against its manifest and lands; no alert; once the MariaDB catalog is back, "
        "rebuilding it from storage restores the row (verified)"
    )
    with row(bed, "catalog DB down (MariaDB)", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        instance = manager.instance(bed.home, CATALOG_CLUSTER)
        instance.stop()
        try:
            run_id = trigger(bed, FULL, "catalog database down")
            state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT)
            st = states(bed, FULL, run_id)
        finally:
            instance.start()
        lifted = time.monotonic()
        r.alerts = len(alerts_for(bed, mark, run_id))
        r.observed = f"run {state}; " + ", ".join(f"{t} {s}" for t, s in st.items() if s != "success")
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        target = bed.api.xcom(FULL, run_id, "plan_backup")
        backup_x = bed.api.xcom(FULL, run_id, "run_br_backup")
        assert bed.catalog.get(target["backup_id"]) is None, "a row came from somewhere while the catalog was down"
        report = rebuild_catalog(bed.catalog, raw_storage(bed), "dev", verify=True, check_hashes=True)
        r.recover_s = time.monotonic() - lifted
        backup = bed.catalog.get(target["backup_id"])
        r.observed += f"; catalog {backup_x.get('catalog')} during the run; rebuild: {report.summary()}"
        assert report.ok and backup is not None and backup.verified, report.summary()
        assert backup.backup_ts == backup_x["backup_ts"]
        finish(bed, r, "dev", backup.id)


def _log_task(bed: Bed, exact: bool = False) -> LogTaskStatus | None:
    """dev's log task as ``br log status`` shows it: the table (which prints the status), or with ``exact``
    the ``--json`` form (exact checkpoint TSOs; released BR builds print no status there)."""
    args = ("--json",) if exact else ()
    out = br(bed.home, "log", "status", *args, "--pd", bed.registry.clusters["dev"].pd)
    assert out.returncode == 0, out.stderr
    return next((t for t in parse_log_status(out.stdout) if t.name == LOG_TASK), None)


def _check(bed: Bed, note: str) -> tuple[str, str]:
    run_id = trigger(bed, LOG_CHECK, note, conf={"frozen_after": "5s"})
    return run_id, bed.api.wait_run(LOG_CHECK, run_id, timeout=RUN_TIMEOUT)


def _log_started(bed: Bed) -> None:
    """dev's log backup task exists and is NORMAL (the first check starts it)."""
    if _log_task(bed) is None:
        _check(bed, "start the log backup")
    wait_for("dev's log task NORMAL", lambda: (t := _log_task(bed)) is not None and t.status == "NORMAL", timeout=60)


def test_log_task_paused(bed: Bed) -> None:
    expected = "the check resumes it (auto_resume) and says so once (a notice); the checkpoint passes the pause"
    with row(bed, "log task paused", "log backup check", expected, 1) as r:
        _log_started(bed)
        faults.set_fault(bed.home, "dev", "log_task_pause")
        wait_for("dev's log task paused", lambda: (t := _log_task(bed)) is not None and t.status == "PAUSE", 60)
        faults.clear_faults(bed.home, "dev")  # the task stays paused until something resumes it
        paused_at = tso.from_datetime(datetime.now(UTC))
        mark = bed.sink.mark()
        run_id, state = _check(bed, "log task paused")
        lifted = time.monotonic()
        check = bed.api.xcom(LOG_CHECK, run_id, "check_log_backup")
        r.alerts = len(alerts_for(bed, mark, run_id))
        wait_for(
            "the checkpoint past the pause",
            lambda: (((t := _log_task(bed, exact=True)) and t.checkpoint_ts) or 0) > paused_at,
        )
        r.recover_s = time.monotonic() - lifted
        sent = [(s["kind"], s["key"]) for s in bed.api.xcom(LOG_CHECK, run_id, "notify_log_backup")["sent"]]
        r.observed = (
            f"run {state}; status {check['status']}; actions {[a['kind'] for a in check['actions']]}; sent {sent}"
        )
        r.data_lost = 0  # the log's checkpoint passed the moment the task paused: the pause is covered
        assert state == "success" and [a["kind"] for a in check["actions"]] == ["resume"], check
        finish(bed, r, "dev", None)


def test_checkpoint_frozen_while_normal(bed: Bed) -> None:
    expected = (
        "the second check (5 s later) fails and pages once; a third still fails, not paged again; "
        "once healed, one recovery and the checkpoint passes the freeze"
    )
    with row(bed, "checkpoint frozen while NORMAL", "log backup check", expected, 2) as r:
        _log_started(bed)
        faults.set_fault(bed.home, "dev", "log_checkpoint_frozen")
        mark = bed.sink.mark()
        first, s1 = _check(bed, "frozen (1)")
        time.sleep(6)
        second, s2 = _check(bed, "frozen (2)")
        third, s3 = _check(bed, "frozen (3)")
        frozen_ts = bed.api.xcom(LOG_CHECK, second, "check_log_backup")["checkpoint_ts"]
        faults.clear_faults(bed.home, "dev")
        lifted = time.monotonic()
        wait_for(
            "the checkpoint past the freeze",
            lambda: (((t := _log_task(bed, exact=True)) and t.checkpoint_ts) or 0) > frozen_ts,
        )
        fourth, s4 = _check(bed, "healed")
        r.recover_s = time.monotonic() - lifted
        posts = alerts_for(bed, mark, first, second, third, fourth)
        r.alerts = len(posts)
        r.observed = f"checks {s1}, {s2}, {s3}, {s4}; alerts: " + ", ".join(
            f"{p.get('state')}:{p.get('alert') or p.get('task_id')}" for p in posts
        )
        r.data_lost = 0  # the checkpoint moved past the frozen point once healed: the log covers it
        assert (s2, s3, s4) == ("failed", "failed", "success"), r.observed
        finish(bed, r, "dev", None)


def test_gc_safepoint_past_the_backup_point(bed: Bed) -> None:
    expected = (
        "the plan (safepoint read before it moved) picks an incremental; BR refuses it "
        "(ErrBackupGCSafepointExceeded); the same step takes a full instead, catalogued with the reason; "
        "verified; one notice"
    )
    with row(bed, "GC safepoint past the backup point", "incremental backup", expected, 1) as r:
        mark = bed.sink.mark()
        faults.set_fault(bed.home, "dev", "gc_safepoint", ts=tso.from_datetime(datetime.now(UTC)))
        run_id = trigger(bed, INCR, "GC safepoint past the last backup")
        state = bed.api.wait_run(INCR, run_id, timeout=RUN_TIMEOUT)
        faults.clear_faults(bed.home, "dev")
        posts = alerts_for(bed, mark, run_id)
        r.alerts = len(posts)
        plan = bed.api.xcom(INCR, run_id, "plan_backup")
        done = bed.api.xcom(INCR, run_id, "run_br_backup") or {}
        full = done.get("replanned") or {}
        refused = bed.catalog.get(plan["backup_id"])
        backup = bed.catalog.get(full.get("backup_id") or plan["backup_id"])
        r.observed = (
            f"run {state}; planned {plan.get('kind')}; BR: {'refused' if refused and refused.error else '?'} "
            f"({'ErrBackupGCSafepointExceeded' if refused and 'GCSafepoint' in (refused.error or '') else '-'}); "
            f"took {full.get('kind') or 'nothing else'} {full.get('backup_id', '')}; alerts: "
            + ", ".join(f"{p.get('state')}:{p.get('alert') or p.get('task_id')}" for p in posts)
        )
        r.recover_s = 0.0
        assert state == "success", bed.api.run_logs(INCR, run_id)[-4000:]
        assert plan["kind"] == "incremental" and full.get("kind") == "full", (plan, done)
        assert refused is not None and refused.status is BackupStatus.FAILED
        assert "ErrBackupGCSafepointExceeded" in (refused.error or ""), refused.error
        assert "ErrBackupGCSafepointExceeded" in full["reason"]
        assert backup is not None and backup.verified and backup.kind.value == "full"
        assert [p.get("alert") for p in posts] == ["backup_replanned_full"], posts
        finish(bed, r, "dev", backup.id)


COMPONENTS = (b"scheduler", b"dag-processor", b"triggerer", b"api-server")


def _components(bed: Bed) -> dict[str, int]:
    """The running Airflow components of the bed (``airflow standalone``'s children, or a row's replacements)."""
    assert bed.standalone.process is not None
    family = [bed.standalone.process.pid, *_descendants(bed.standalone.process.pid)]
    family += [p for pid in bed.own_processes for p in (pid, *_descendants(pid))]
    found: dict[str, int] = {}
    for pid in family:
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(words) > 2 and words[1].endswith(b"/airflow") and words[2] in COMPONENTS and _alive(pid):
            found.setdefault(words[2].decode(), pid)
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_text()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _start_component(bed: Bed, name: str, environ: dict[str, str]) -> int:
    """``airflow <name>`` again with the environment the old one had (what systemd or Kubernetes does)."""
    with open(bed.home / "airflow" / f"faults-{name}.log", "ab") as log:
        new = subprocess.Popen(
            [str(VENV_BIN / "airflow"), name],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    bed.own_processes.append(new.pid)
    return new.pid


class Supervisor:
    """Restarts any Airflow component of the bed that exits (``Restart=always`` / a Deployment's pod restart),
    checking every second; ``restarted`` says which it had to restart. ``airflow standalone`` itself does not
    restart a component that exits (its scheduler exits when it loses the metadata DB)."""

    def __init__(self, bed: Bed) -> None:
        self.bed = bed
        self.watched = _components(bed)
        self.environ = {name: _environ(pid) for name, pid in self.watched.items()}
        self.restarted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            for name, pid in list(self.watched.items()):
                if not _alive(pid):
                    self.watched[name] = _start_component(self.bed, name, self.environ[name])
                    self.restarted.append(name)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.restarted


def test_scheduler_restarted_mid_run(bed: Bed) -> None:
    expected = (
        "BR's task outlives or is retried across the restart; the run succeeds under the new scheduler; "
        "never 2 BR at once; no alert"
    )
    with row(bed, "scheduler restarted mid-run", "full backup", expected, 0) as r:
        mark = bed.sink.mark()
        pd = bed.registry.clusters["dev"].pd
        faults.set_fault(bed.home, "dev", "backup_slow", seconds=15)
        sampler = BRSampler(pd)
        run_id = trigger(bed, FULL, "scheduler restarted mid-run")
        bed.api.wait_task(FULL, run_id, "run_br_backup", {"running"}, timeout=RUN_TIMEOUT)
        wait_for("a br backup of dev", lambda: _br_pids(pd), timeout=60)
        old = _components(bed)["scheduler"]
        environ = _environ(old)
        os.kill(old, signal.SIGTERM)
        assert wait_for("the scheduler gone", lambda: not _alive(old), timeout=60)
        _start_component(bed, "scheduler", environ)
        lifted = time.monotonic()
        faults.clear_faults(bed.home, "dev")
        state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT * 2)
        r.recover_s = time.monotonic() - lifted
        most = sampler.stop()
        backup = run_backup(bed, run_id)
        ti = bed.api.task_instance(FULL, run_id, "run_br_backup")
        r.alerts = len(alerts_for(bed, mark, run_id))
        r.observed = (
            f"run {state}; run_br_backup try {ti['try_number']}; row {backup.status.value}; most BR at once: {most}"
        )
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        assert backup.status is BackupStatus.SUCCEEDED and backup.verified and most == 1
        finish(bed, r, "dev", backup.id)


def test_metadata_database_restarted_mid_run(bed: Bed) -> None:
    expected = (
        "PostgreSQL restarted under a running BR task: Airflow components that exit are restarted by their "
        "supervisor (systemd/Kubernetes; here the row's); the run succeeds; never 2 BR at once; no alert"
    )
    with row(bed, "Airflow metadata DB restarted mid-run", "full backup", expected, 0) as r:
        from tidbops_playground import postgres

        pg = postgres.configured(bed.home)
        if pg is None:
            r.observed = "not run: this Airflow's metadata DB is SQLite (no server to restart)"
            pytest.skip(r.observed)
        mark = bed.sink.mark()
        pd = bed.registry.clusters["dev"].pd
        faults.set_fault(bed.home, "dev", "backup_slow", seconds=15)
        sampler = BRSampler(pd)
        run_id = trigger(bed, FULL, "metadata DB restarted mid-run")
        bed.api.wait_task(FULL, run_id, "run_br_backup", {"running"}, timeout=RUN_TIMEOUT)
        wait_for("a br backup of dev", lambda: _br_pids(pd), timeout=60)
        supervisor = Supervisor(bed)
        try:
            pg.stop()
            time.sleep(5)
            pg.start()
            lifted = time.monotonic()
            faults.clear_faults(bed.home, "dev")
            state = bed.api.wait_run(FULL, run_id, timeout=RUN_TIMEOUT * 2)
            r.recover_s = time.monotonic() - lifted
        finally:
            restarted = supervisor.stop()
        most = sampler.stop()
        backup = run_backup(bed, run_id)
        ti = bed.api.task_instance(FULL, run_id, "run_br_backup")
        r.alerts = len(alerts_for(bed, mark, run_id))
        r.observed = (
            f"run {state}; run_br_backup try {ti['try_number']}; row {backup.status.value}; most BR at once: {most}; "
            f"exited and restarted by the supervisor: {', '.join(restarted) or 'none'}"
        )
        assert state == "success", bed.api.run_logs(FULL, run_id)[-4000:]
        assert backup.status is BackupStatus.SUCCEEDED and backup.verified and most == 1
        finish(bed, r, "dev", backup.id)
