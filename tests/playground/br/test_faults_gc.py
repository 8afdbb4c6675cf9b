"""Every injectable fault, the GC run (safepoints, ``mysql.tidb``, history purge) and SIGTERM handling."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidbops_playground.br import tso
from tidbops_playground.br.gc import run_gc
from tidbops_playground.br.log import advance
from tidbops_playground.br.pd import cluster_by_name
from tidbops_playground.faults import clear_faults, set_fault

from .conftest import BR, Playground, advance_now

pytestmark = pytest.mark.playground


@pytest.fixture()
def clean(fresh_dst: Playground) -> Iterator[Playground]:
    pg = fresh_dst

    def reset() -> None:
        cl = cluster_by_name(pg.home, "src")
        with cl.state() as st:
            st["log_tasks"] = {}
            st["service_safepoints"] = {}
            st["gc_safe_point"] = 0
            st["gc_purged_to"] = 0

    reset()
    yield pg
    clear_faults(pg.home)
    reset()


def _tree(url: str) -> list[str]:
    root = Path(url[len("local://") :])
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_backup_fail_midway_then_resume_from_checkpoint(clean: Playground) -> None:
    pg = clean
    url = pg.local("fail-midway")
    set_fault(pg.home, "src", "backup_fail_midway", after_files=1)
    r = pg.br("backup", "full", "--pd", pg.src.pd, "-s", url)
    assert r.rc == 1
    assert re.fullmatch(
        r"Error: error happen in store \d+ at 127\.0\.0\.1:\d+: Io\(Os \{ code: 28, kind: StorageFull, "
        r'message: "No space left on device" \}\): \[BR:KV:ErrKVStorage\]tikv storage occur I/O error',
        r.stderr.splitlines()[-1],
    )
    assert '["Full Backup failed summary"]' in r.stdout
    files = _tree(url)
    assert "backup.lock" in files and "backupmeta" not in files
    assert len([f for f in files if f.endswith(".sst")]) == 1
    assert "checkpoints/backup/checkpoint.meta" in files
    with cluster_by_name(pg.home, "src").state() as st:
        assert any(k.startswith("br-") for k in st["service_safepoints"])  # kept for the retry (checkpoint mode)
    first_ts = json.loads(Path(url[len("local://") :], "checkpoints/backup/checkpoint.meta").read_text())["backup-ts"]
    clear_faults(pg.home, "src")
    again = pg.br("backup", "full", "--pd", pg.src.pd, "-s", url)
    assert again.rc == 0, again.stderr
    assert "reuse checkpoint BackupTS" in again.log
    assert int(again.summary("Full Backup success summary")["BackupTS"]) == first_ts
    assert not any(f.startswith("checkpoints/") for f in _tree(url))
    restored = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
    assert restored.rc == 0, restored.stderr
    ts = int(again.summary("Full Backup success summary")["BackupTS"])
    tables = {("shop", "customers"), ("shop", "orders"), ("kinds", "everything")}
    assert pg.snapshot(pg.dst, tables=tables) == pg.snapshot(
        pg.src, as_of=tso.us_to_sql(tso.ts_to_read_us(ts)), tables=tables
    )


def test_backup_hang_and_sigterm(clean: Playground) -> None:
    pg = clean
    url = pg.local("hang")
    set_fault(pg.home, "src", "backup_hang")
    log = pg.tmp / "hang.log"
    proc = subprocess.Popen(
        [str(BR), "backup", "full", "--pd", pg.src.pd, "-s", url, "--log-file", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=pg.env(),
    )
    lock = Path(url[len("local://") :]) / "backup.lock"
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert proc.poll() is None  # still hanging
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.splitlines()[-1] == "Error: context canceled"
    text = log.read_text()
    assert "got signal to exit" in text and '["br failed"] [error="context canceled"]' in text
    assert '["Full Backup failed summary"]' in out
    assert "backupmeta" not in _tree(url)


def test_backup_slow(clean: Playground) -> None:
    pg = clean
    set_fault(pg.home, "src", "backup_slow", seconds=2)
    t0 = time.monotonic()
    r = pg.br("backup", "table", "--db", "shop", "-t", "customers", "--pd", pg.src.pd, "-s", pg.local("slow"))
    assert r.rc == 0, r.stderr
    assert time.monotonic() - t0 >= 2.0


def test_storage_write_error(clean: Playground) -> None:
    pg = clean
    set_fault(pg.home, "src", "storage_write_error", after=2)
    url = pg.local("write-error")
    r = pg.br("backup", "full", "--pd", pg.src.pd, "-s", url)
    assert r.rc == 1
    last = r.stderr.splitlines()[-1]
    assert last.startswith(f"Error: failed to write {url}/")
    assert last.endswith(": [BR:ExternalStorage:ErrStorageUnknown]unknown external storage error")
    assert len(_tree(url)) == 2


def test_restore_fail_midway(clean: Playground) -> None:
    pg = clean
    url = pg.local("restore-fail")
    assert pg.br("backup", "full", "--pd", pg.src.pd, "-s", url).rc == 0
    set_fault(pg.home, "dst", "restore_fail_midway", after_tables=1)
    r = pg.br("restore", "full", "--pd", pg.dst.pd, "-s", url)
    assert r.rc == 1
    assert r.stderr.splitlines()[-1].endswith("[BR:KV:ErrKVDownloadFailed]download sst failed")
    assert '["Full Restore failed summary"]' in r.stdout
    counts = [
        pg.sql(pg.dst, f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("kinds.everything", "shop.customers", "shop.orders")
    ]
    assert sum(1 for c in counts if int(c) > 0) == 1  # one table loaded, the others created but empty


def _start_task(pg: Playground, name: str) -> None:
    r = pg.br("log", "start", "--task-name", name, "--pd", pg.src.pd, "-s", pg.local(f"fault-log-{name}"))
    assert r.rc == 0, r.stderr


def test_log_checkpoint_frozen(clean: Playground) -> None:
    pg = clean
    _start_task(pg, "frozen")
    cp0 = advance_now(pg)
    assert cp0 is not None
    set_fault(pg.home, "src", "log_checkpoint_frozen")
    time.sleep(1.1)
    assert advance(pg.home, "src") == cp0
    status = pg.br("log", "status", "--pd", pg.src.pd)
    assert "            status: ● NORMAL" in status.stdout
    gap = re.search(r"gap=(\d+)s", status.stdout)
    assert gap and int(gap.group(1)) >= 1
    clear_faults(pg.home, "src")
    cp1 = advance_now(pg)
    assert cp1 is not None and cp1 > cp0


def test_log_task_error_and_resume(clean: Playground) -> None:
    pg = clean
    _start_task(pg, "erroring")
    set_fault(pg.home, "src", "log_task_error", store_id=4, message="injected: raft request failed")
    assert advance(pg.home, "src") is None
    status = pg.br("log", "status", "--pd", pg.src.pd)
    assert status.rc == 0  # ERROR still exits 0
    lines = status.stdout.splitlines()
    assert "                  status: ○ ERROR" in lines
    assert "          error[store=4]: KV:LogBackup:RaftReq" in lines
    assert any(re.fullmatch(r"error-happen-at\[store=4\]: \S+ \S+ \+0000; gap=\d+s", ln) for ln in lines)
    assert "  error-message[store=4]: injected: raft request failed" in lines
    js = json.loads(pg.br("log", "status", "--pd", pg.src.pd, "--json").stdout.splitlines()[-1])
    err = js[0]["last_errors"][0]
    assert err["store_id"] == 4 and err["last_error"]["error_code"] == "KV:LogBackup:RaftReq"
    assert err["last_error"]["error_message"] == "injected: raft request failed" and err["last_error"]["happen_at"] > 0
    clear_faults(pg.home, "src")
    assert pg.br("log", "resume", "--task-name", "erroring", "--pd", pg.src.pd).rc == 0
    assert "status: ● NORMAL" in pg.br("log", "status", "--pd", pg.src.pd).stdout
    assert advance_now(pg) is not None


def test_log_task_pause_fault(clean: Playground) -> None:
    pg = clean
    _start_task(pg, "pausing")
    set_fault(pg.home, "src", "log_task_pause")
    assert advance(pg.home, "src") is None
    assert "            status: ● PAUSE" in pg.br("log", "status", "--pd", pg.src.pd).stdout


def test_gc_safepoint_fault_blocks_resume_and_incremental(clean: Playground) -> None:
    pg = clean
    _start_task(pg, "gcd")
    cp = advance_now(pg)
    assert cp is not None
    assert pg.br("log", "pause", "--task-name", "gcd", "--pd", pg.src.pd).rc == 0
    sp = cp + 1  # just past the checkpoint, still before "now"
    set_fault(pg.home, "src", "gc_safepoint", ts=sp)
    r = pg.br("log", "resume", "--task-name", "gcd", "--pd", pg.src.pd)
    assert r.rc == 1
    assert r.stderr.splitlines()[-1] == (
        f"Error: the global checkpoint ts: {cp}({tso.go_time_string(cp)}) has been gc. : GC safepoint {sp} exceed "
        f"TS {cp}: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"
    )
    assert '["log resume failed summary"]' in r.stdout
    inc = pg.br(
        "backup", "db", "--db", "kinds", "--pd", pg.src.pd, "-s", pg.local("gc-incr"), "--lastbackupts", str(cp)
    )
    assert inc.rc == 1
    assert inc.stderr.splitlines()[-1] == (
        f"Error: GC safepoint {sp} exceed TS {cp}: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"
    )
    assert run_gc(pg.home, "src", purge_history=False) >= sp


def test_run_gc(clean: Playground, monkeypatch: pytest.MonkeyPatch) -> None:
    pg = clean
    cl = cluster_by_name(pg.home, "src")
    sp1 = run_gc(pg.home, "src", purge_history=False)
    assert abs(tso.physical(sp1) - (tso.now_ms() - 600_000)) < 5_000  # now - 10m (TiDB's minimum life time)
    rows = dict(pg.sql(pg.src, "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM mysql.tidb"))
    assert rows["tikv_gc_life_time"] == "10m0s"
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{3} [+-]\d{4}", rows["tikv_gc_safe_point"])
    assert rows["tikv_gc_safe_point"] == tso.tidb_gc_time(sp1)
    assert re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{3} [+-]\d{4}", rows["tikv_gc_last_run_time"])
    # a service safepoint holds GC back; the safepoint never moves backwards
    held = sp1 - (60_000 << 18)
    with cl.state() as st:
        st["service_safepoints"]["test-holder"] = {"ts": held, "expire_at_ms": tso.now_ms() + 60_000}
    assert run_gc(pg.home, "src", purge_history=False) == sp1
    # a short life time (the minimum is lowered for the test) lets GC purge old MariaDB history
    pg.sql(
        pg.src,
        "CREATE TABLE shop.gc_probe (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
        "INSERT INTO shop.gc_probe VALUES (1, 1)",
        "UPDATE shop.gc_probe SET v = 2",
        "UPDATE shop.gc_probe SET v = 3",
    )
    try:
        with cl.state() as st:
            st["service_safepoints"] = {}
        time.sleep(1.2)
        monkeypatch.setenv("TIDBOPS_PLAYGROUND_GC_MIN_LIFETIME", "1s")
        pg.sql(pg.src, "UPDATE mysql.tidb SET VARIABLE_VALUE = '1s' WHERE VARIABLE_NAME = 'tikv_gc_life_time'")
        assert pg.sql(pg.src, "SELECT COUNT(*) FROM shop.gc_probe FOR SYSTEM_TIME ALL")[0][0] == "3"
        sp2 = run_gc(pg.home, "src")
        assert sp2 > sp1
        assert pg.sql(pg.src, "SELECT COUNT(*) FROM shop.gc_probe FOR SYSTEM_TIME ALL")[0][0] == "1"
        old = pg.br("backup", "db", "--db", "shop", "--pd", pg.src.pd, "-s", pg.local("gc-old"), "--backupts", str(sp2))
        assert old.rc == 1 and "[BR:Backup:ErrBackupGCSafepointExceeded]" in old.stderr
    finally:
        pg.sql(
            pg.src,
            "UPDATE mysql.tidb SET VARIABLE_VALUE = '10m0s' WHERE VARIABLE_NAME = 'tikv_gc_life_time'",
            "DROP TABLE shop.gc_probe",
        )
