"""Log backup (``br log ...``), the advancer, truncation and PITR exactness (br-cli.md §1.4, §3, §4.3, §5)."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tidbops_playground.br import tso
from tidbops_playground.br.log import advance
from tidbops_playground.br.pd import cluster_by_name, get_ts

from .conftest import Playground, advance_now

pytestmark = pytest.mark.playground


@pytest.fixture()
def src_tasks_cleared(fresh_dst: Playground) -> Iterator[Playground]:
    pg = fresh_dst

    def clear() -> None:
        cl = cluster_by_name(pg.home, "src")
        with cl.state() as st:
            st["log_tasks"] = {}

    clear()
    yield pg
    clear()


def _advance(pg: Playground) -> int:
    cp = advance_now(pg)
    assert cp is not None
    return cp


def _read_us(ts: int) -> str:
    return tso.us_to_sql(tso.ts_to_read_us(ts))


def test_log_task_lifecycle(src_tasks_cleared: Playground) -> None:
    pg = src_tasks_cleared
    url = pg.local("log-lifecycle")
    st = pg.br("log", "start", "--task-name", "pitr", "--pd", pg.src.pd, "-s", url)
    assert st.rc == 0, st.stderr
    start = st.summary("log start")
    assert re.fullmatch(
        r"\{taskName=pitr,startTs=\d+,endTS=999999999999999999,tableFilter=\*\.\*\}", start["streamTaskInfo"]
    )
    assert st.summary("log start success summary")["total-ranges"] == "0"
    root = Path(url[len("local://") :])
    meta = json.loads((root / "backupmeta").read_text())
    start_ts = int(re.search(r"startTs=(\d+)", start["streamTaskInfo"]).group(1))  # type: ignore[union-attr]
    assert meta["StartVersion"] == start_ts and meta["EndVersion"] == 0 and (root / "backup.lock").exists()

    again = pg.br("log", "start", "--task-name", "other", "--pd", pg.src.pd, "-s", pg.local("log-other"))
    assert again.rc == 1
    assert again.stderr.splitlines()[-1] == (
        "Error: It supports single stream log task currently: [BR:Stream:ErrStreamLogTaskExist]stream task "
        "already exists"
    )
    assert (
        '["log start failed summary"] [total-ranges=1] [ranges-succeed=0] [ranges-failed=1] '
        '[unit-name="log start"]' in again.stdout
    )

    status = pg.br("log", "status", "--pd", pg.src.pd)
    assert status.rc == 0
    lines = status.stdout.splitlines()
    assert lines[0] == "● Total 1 Tasks."
    assert lines[1] == "> #1 <"
    assert lines[2] == "              name: pitr"
    assert lines[3] == "            status: ● NORMAL"
    assert re.fullmatch(r"             start: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})? \+0000", lines[4])
    assert lines[5] == "               end: 2090-11-18 14:07:45.624 +0000"
    assert lines[6] == f"           storage: {url}"
    assert lines[7] == "       speed(est.): 0.00 ops/s"
    assert re.fullmatch(r"checkpoint\[global\]: \S+ \S+ \+0000; gap=\d+s", lines[8])
    assert "success summary" not in status.stdout  # log status prints no summary

    js = pg.br("log", "status", "--pd", pg.src.pd, "--json")
    data = json.loads(js.stdout.splitlines()[-1])
    assert list(data[0]) == [
        "name",
        "start_ts",
        "end_ts",
        "table_filter",
        "progress",
        "storage",
        "checkpoint",
        "estimate_qps",
        "last_errors",
    ]  # v8.5 has no "status" key (pingcap/tidb#57959)
    assert data[0]["checkpoint"] == start_ts and data[0]["estimate_qps"] == 0 and '"estimate_qps":0,' in js.stdout
    js9 = pg.br("log", "status", "--pd", pg.src.pd, "--json", env=pg.env(TIDBOPS_BR_EMULATE_VERSION="v9.0.0"))
    assert json.loads(js9.stdout.splitlines()[-1])[0]["status"] == "NORMAL"

    blocked = pg.br("restore", "full", "--pd", pg.src.pd, "-s", pg.local("whatever"))
    assert blocked.rc == 1
    assert blocked.stderr.splitlines()[-1] == (
        "Error: failed to check task exists: log backup task is running: pitr, please stop the task before restore, "
        "and after PITR operation finished, create log-backup task again and create a full backup on this cluster"
    )

    assert pg.br("log", "pause", "--task-name", "pitr", "--pd", pg.src.pd).rc == 0
    paused = pg.br("log", "status", "--pd", pg.src.pd)
    assert "            status: ● PAUSE" in paused.stdout
    twice = pg.br("log", "pause", "--task-name", "pitr", "--pd", pg.src.pd)
    assert twice.stderr.splitlines()[-1] == (
        "Error: The task pitr is paused already.: [BR:KV:ErrKVUnknown]unknown error occur on tikv"
    )
    assert advance(pg.home, "src") is None  # a paused task does not advance
    res = pg.br("log", "resume", "--task-name", "pitr", "--pd", pg.src.pd)
    assert res.rc == 0 and '["log resume success summary"]' in res.stdout
    active = pg.br("log", "resume", "--task-name", "pitr", "--pd", pg.src.pd)
    assert "The task pitr is active already." in active.stderr
    missing = pg.br("log", "stop", "--task-name", "nope", "--pd", pg.src.pd)
    assert missing.stderr.splitlines()[-1] == "Error: no such task nope: [BR:PiTR:ErrTaskNotFound]task not found"
    no_name = pg.br("log", "pause", "--pd", pg.src.pd)
    assert no_name.stderr.splitlines()[-1] == (
        "Error: Miss parameters task-name: [BR:Common:ErrInvalidArgument]invalid argument"
    )
    stop = pg.br("log", "stop", "--task-name", "pitr", "--pd", pg.src.pd)
    assert stop.rc == 0 and '["log stop"]' in stop.stdout
    none = pg.br("log", "status", "--pd", pg.src.pd)
    assert none.stdout.splitlines()[-1] == "○ No Task Yet."
    assert pg.br("log", "status", "--pd", pg.src.pd, "--json").stdout.splitlines()[-1] == "[]"
    tz = pg.br(
        "log",
        "start",
        "--task-name",
        "x",
        "--start-ts",
        "2024-01-01 00:00:00",
        "--pd",
        pg.src.pd,
        "-s",
        pg.local("log-tz"),
    )
    assert tz.stderr.splitlines()[-1] == (
        "Error: must set timezone when using datetime format ts, e.g. '2018-05-11 01:42:23+0800'"
    )


def test_pitr_is_exact(src_tasks_cleared: Playground) -> None:
    pg = src_tasks_cleared
    log_url = pg.s3("pitr-log")
    full_url = pg.s3("pitr-full")
    assert pg.br("log", "start", "--task-name", "pitr", "--pd", pg.src.pd, "-s", log_url).rc == 0
    b = pg.br("backup", "full", "--pd", pg.src.pd, "-s", full_url)
    assert b.rc == 0, b.stderr
    backup_ts = int(b.summary("Full Backup success summary")["BackupTS"])
    pg.sql(
        pg.src,
        "INSERT INTO shop.customers (id, name, email, balance) VALUES (2001, 'pitr ✓ 😀', 'p@x', 3.141593)",
        "UPDATE shop.orders SET amount = 1.0001, meta = '{\"after\": true}' WHERE id BETWEEN 100 AND 120",
        "DELETE FROM shop.orders WHERE id IN (130, 131)",
        "CREATE TABLE shop.audit (id INT PRIMARY KEY, what VARCHAR(20), at DATETIME(6)) WITH SYSTEM VERSIONING",
        "INSERT INTO shop.audit VALUES (1, 'created', '2024-01-01 00:00:00.5')",
        "UPDATE kinds.everything SET f = 2.71828, payload = 0x00FF00 WHERE id = 1",
    )
    cp1 = _advance(pg)
    t1 = get_ts(cluster_by_name(pg.home, "src"))
    pg.sql(
        pg.src,
        "DELETE FROM shop.customers WHERE id = 39",  # ON DELETE CASCADE removes its orders too
        "UPDATE shop.customers SET id = 3000 WHERE id = 2001",
        "INSERT INTO shop.audit VALUES (2, 'later', NOW(6))",
        "UPDATE shop.orders SET note = NULL WHERE id = 1",
    )
    cp2 = _advance(pg)
    assert cp2 > t1 > cp1 > backup_ts

    root_files = [k for k, _ in _s3_list(pg, "pitr-log/")]
    assert "pitr-log/backup.lock" in root_files and "pitr-log/backupmeta" in root_files
    assert any(re.fullmatch(r"pitr-log/v1/backupmeta/[0-9A-F]{16}-[0-9a-f-]{36}\.meta", k) for k in root_files)
    assert any(re.fullmatch(r"pitr-log/v1/\d{8}/\d{2}/\d+/\d+-[0-9a-f-]{36}\.log", k) for k in root_files)
    for store in pg.src.store_ids:
        assert struct.unpack("<Q", _s3_get(pg, f"pitr-log/v1/global_checkpoint/{store}.ts"))[0] == cp2

    status = json.loads(pg.br("log", "status", "--pd", pg.src.pd, "--json").stdout.splitlines()[-1])
    assert status[0]["checkpoint"] == cp2
    assert pg.br("log", "stop", "--task-name", "pitr", "--pd", pg.src.pd).rc == 0

    tables = {
        ("shop", "customers"),
        ("shop", "orders"),
        ("shop", "audit"),
        ("kinds", "everything"),
        ("shop", "big_orders"),
    }
    r = pg.restore_point(log_url, full_url, "--restored-ts", str(t1))
    assert r.rc == 0, r.stderr
    assert '["Full Restore success summary"]' in r.stdout
    log_sum = r.summary("restore log success summary")
    assert log_sum["source-start-point"] == str(backup_ts) and log_sum["source-end-point"] == str(t1)
    assert int(log_sum["total-kv-count"]) > 0
    assert "Point Restore success summary" not in r.stdout
    assert pg.snapshot(pg.dst, tables=tables) == pg.snapshot(pg.src, as_of=_read_us(t1), tables=tables)

    pg.reset_dst()
    r2 = pg.restore_point(log_url, full_url)
    assert r2.rc == 0, r2.stderr
    assert r2.summary("restore log success summary")["source-end-point"] == str(cp2)
    assert pg.snapshot(pg.dst, tables=tables) == pg.snapshot(pg.src, as_of=_read_us(cp2), tables=tables)

    # --- the range rules and their exact texts
    exists = pg.restore_point(log_url, full_url)
    assert exists.rc == 1
    assert re.fullmatch(
        r"Error: databases (\w+,)*\w+ existed in restored cluster, please drop them before execute PiTR: "
        r"\[BR:Restore:ErrDatabasesAlreadyExisted\]databases already existed in restored cluster",
        exists.stderr.splitlines()[-1],
    )
    pg.reset_dst()
    beyond = cp2 + (10_000 << 18)
    rng = pg.restore_point(log_url, full_url, "--restored-ts", str(beyond))
    info_min = json.loads(_s3_get(pg, "pitr-log/backupmeta"))["StartVersion"]
    assert rng.stderr.splitlines()[-1] == (
        f"Error: restore log from {backup_ts}({tso.go_time_string(backup_ts)}) to {beyond}"
        f"({tso.go_time_string(beyond)}),  but the current existed log from {info_min}"
        f"({tso.go_time_string(info_min)}) to {cp2}({tso.go_time_string(cp2)}): "
        "[BR:Common:ErrInvalidArgument]invalid argument"
    )
    assert " UTC)" in rng.stderr and ",  but the current" in rng.stderr
    excl = pg.restore_point(log_url, full_url, "--start-ts", str(backup_ts))
    assert excl.stderr.splitlines()[-1] == (
        "Error: start-ts and full-backup-storage are mutually exclusive: [BR:Common:ErrInvalidArgument]invalid argument"
    )
    notz = pg.br("restore", "point", "--pd", pg.dst.pd, "-s", log_url, "--restored-ts", "2030-01-01 00:00:00")
    assert "must set timezone when using datetime format ts" in notz.stderr
    snap_dir = pg.br("log", "metadata", "-s", full_url)
    assert snap_dir.stderr.splitlines()[-1] == (
        "Error: the storage has been used for full backup: [BR:ExternalStorage:ErrStorageUnknown]unknown external "
        "storage error"
    )


def test_gap_between_snapshot_and_log(src_tasks_cleared: Playground) -> None:
    pg = src_tasks_cleared
    full_url = pg.local("gap-full")
    b = pg.br("backup", "db", "--db", "kinds", "--pd", pg.src.pd, "-s", full_url)
    backup_ts = int(b.summary("Database Backup success summary")["BackupTS"])
    log_url = pg.local("gap-log")
    assert pg.br("log", "start", "--task-name", "gap", "--pd", pg.src.pd, "-s", log_url).rc == 0
    pg.sql(pg.src, "UPDATE kinds.everything SET u = 7 WHERE id = 2")
    _advance(pg)
    start = json.loads(Path(log_url[len("local://") :], "backupmeta").read_text())["StartVersion"]
    r = pg.restore_point(log_url, full_url)
    assert r.rc == 1
    assert r.stderr.splitlines()[-1] == (
        f"Error: it has gap between full backup ts:{backup_ts}({tso.go_time_string(backup_ts)}) and log backup "
        f"ts:{start}({tso.go_time_string(start)}). : [BR:Common:ErrInvalidArgument]invalid argument"
    )


def test_truncate_and_metadata(src_tasks_cleared: Playground) -> None:
    pg = src_tasks_cleared
    url = pg.local("truncate-log")
    root = Path(url[len("local://") :])
    assert pg.br("log", "start", "--task-name", "tr", "--pd", pg.src.pd, "-s", url).rc == 0
    pg.sql(pg.src, "UPDATE kinds.everything SET u = 11 WHERE id = 4")
    cp1 = _advance(pg)
    pg.sql(pg.src, "UPDATE kinds.everything SET u = 12 WHERE id = 4")
    cp2 = _advance(pg)
    logs_before = sorted(p.name for p in root.rglob("*.log"))
    assert len(logs_before) >= 2
    md = pg.br("log", "metadata", "-s", url)
    fields = md.summary("log metadata")
    assert int(fields["log-max-ts"]) == cp2
    assert fields["log-max-date"] == tso.format_date(cp2)
    assert '["log metadata success summary"]' in md.stdout

    until = cp1 + 1
    tr = pg.br("log", "truncate", "--until", str(until), "-s", url, stdin="")  # stdin not a TTY: no prompt
    assert tr.rc == 0, tr.stderr
    out = tr.stdout.splitlines()
    assert re.fullmatch(r"Reading Metadata\.\.\. DONE \{ take = \S+ \}", out[0])
    assert re.fullmatch(rf"We are going to remove \d+ files, until {re.escape(tso.format_fixed4(until))}\.", out[1])
    assert re.fullmatch(
        r"Clearing Data Files and Metadata DONE \{ take = \S+, kv-count = \d+, kv-size = \d+\(\S+\) \}", out[2]
    )
    assert "success summary" not in tr.stdout
    assert (root / "v1_stream_trancate_safepoint.txt").read_text() == str(until)
    assert not (root / "truncating.lock").exists()
    assert len(list(root.rglob("*.log"))) < len(logs_before)
    md2 = pg.br("log", "metadata", "-s", url).summary("log metadata")
    assert int(md2["log-min-ts"]) == until and int(md2["log-max-ts"]) == cp2
    no_until = pg.br("log", "truncate", "-s", url, "-y")
    assert no_until.stderr.splitlines()[-1] == (
        "Error: please provide the `--until` ts: [BR:Common:ErrInvalidArgument]invalid argument"
    )
    older = pg.br("log", "truncate", "--until", str(cp1 - 5), "-s", url, "-y")
    assert older.rc == 0
    assert older.stdout.splitlines()[0].startswith("According to the log, you have truncated backup data before ")
    assert (root / "v1_stream_trancate_safepoint.txt").read_text() == str(until)  # never moves back
    (root / "truncating.lock").write_text("{}")
    locked = pg.br("log", "truncate", "--until", str(cp2), "-s", url, "-y")
    assert locked.rc == 1 and "manually delete the lock file truncating.lock at the external storage." in locked.stderr


def _s3_client(pg: Playground):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=pg.s3_endpoint,
        aws_access_key_id="test-access-key",
        aws_secret_access_key="test-secret-key-SHOULD-NEVER-LEAK",
        region_name="us-east-1",
    )


def _s3_list(pg: Playground, prefix: str) -> list[tuple[str, int]]:
    resp = _s3_client(pg).list_objects_v2(Bucket="backups", Prefix=prefix)
    return [(o["Key"], o["Size"]) for o in resp.get("Contents", [])]


def _s3_get(pg: Playground, key: str) -> bytes:
    return bytes(_s3_client(pg).get_object(Bucket="backups", Key=key)["Body"].read())
