"""`tidbops playground up`, then BR typed from a shell exactly as against real BR: a full backup and
restore, then log backup and a point-in-time restore, each compared with the source's own history."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tidbops.br.output import parse_br_output, parse_log_status
from tidbops.tso import from_datetime, to_datetime

pytestmark = pytest.mark.playground

REPO = Path(__file__).resolve().parents[2]
BR = str(REPO / "include/tidbops_playground/bin/br")
SYSTEM = ("mysql", "sys", "information_schema", "performance_schema")


def shell_env(playground: Any) -> dict[str, str]:
    s3 = playground.registry.s3
    return {**os.environ, **playground.env, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}


def br(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([BR, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert proc.returncode == 0, f"br {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def tables(conn: Any) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
            f"AND TABLE_SCHEMA NOT IN {SYSTEM} AND TABLE_SCHEMA NOT LIKE 'tidbops%' ORDER BY 1, 2"
        )
        return [(str(a), str(b)) for a, b in cur.fetchall()]


def snapshot(conn: Any, as_of_tso: int | None = None) -> dict[str, list[tuple[Any, ...]]]:
    as_of = ""
    if as_of_tso is not None:
        as_of = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{to_datetime(as_of_tso).strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    out = {}
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        for db, t in tables(conn):
            cur.execute(f"SELECT * FROM `{db}`.`{t}`{as_of} ORDER BY 1")
            out[f"{db}.{t}"] = list(cur.fetchall())
    return out


def wipe(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("SET foreign_key_checks = 0")
        cur.execute(
            f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN {SYSTEM} AND SCHEMA_NAME NOT LIKE 'tidbops%'"
        )
        for (db,) in cur.fetchall():
            cur.execute(f"DROP DATABASE `{db}`")


def test_full_backup_restore_and_point_in_time_from_a_shell(playground: Any) -> None:
    cli = subprocess.run(
        [str(Path(os.sys.executable).parent / "tidbops"), "playground", "up", "--home", str(playground.home)],
        env={**os.environ, "TIDBOPS_PLAYGROUND_WRITER_TPS": str(playground.tps)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    env = shell_env(playground)
    reg = playground.registry
    dev, s1, s2 = reg.clusters["dev"], reg.clusters["scratch1"], reg.clusters["scratch2"]
    s3 = ["--s3.endpoint", reg.s3.endpoint]
    root = f"s3://{reg.s3.bucket}/dba-{int(time.time())}"
    for scratch in ("scratch1", "scratch2"):
        conn = playground.connect(scratch)
        wipe(conn)
        conn.close()

    # log backup first, so the full backup below lies inside the log range (PITR: log start <= full BackupTS)
    start = br(env, "log", "start", "--task-name", "pitr-dba", "--pd", dev.pd, "-s", f"{root}/log", *s3)
    assert '["log start success summary"]' in start.stdout
    try:
        backup = br(env, "backup", "full", "--pd", dev.pd, "-s", f"{root}/full", *s3)
        outcome = parse_br_output(backup.stdout + backup.stderr)
        assert outcome.success and outcome.command == "Full Backup" and outcome.backup_ts
        assert "Detail BR log in " in backup.stderr

        restore = br(env, "restore", "full", "--pd", s1.pd, "-s", f"{root}/full", *s3)
        assert '["Full Restore success summary"]' in restore.stdout
        src, dst = playground.connect("dev"), playground.connect("scratch1")
        expected = snapshot(src, as_of_tso=outcome.backup_ts)
        assert sum(map(len, expected.values())) > 0
        assert snapshot(dst) == expected, "restored rows differ from dev as of the BackupTS"

        # a point a few seconds after the full backup, with the writer changing rows meanwhile
        time.sleep(3)
        point = datetime.now(UTC).replace(microsecond=0)
        point_tso = from_datetime(point)
        deadline = time.monotonic() + 60
        while True:
            status = parse_log_status(br(env, "log", "status", "--json", "--pd", dev.pd).stdout)
            if status and status[0].checkpoint_ts and status[0].checkpoint_ts > point_tso:
                break
            assert time.monotonic() < deadline, f"log checkpoint never passed {point}: {status}"
            time.sleep(1)

        text_ts = point.strftime("%Y-%m-%d %H:%M:%S+0000")
        pitr = br(
            env,
            "restore",
            "point",
            "--pd",
            s2.pd,
            "-s",
            f"{root}/log",
            "--full-backup-storage",
            f"{root}/full",
            "--restored-ts",
            text_ts,
            *s3,
        )
        assert '["Full Restore success summary"]' in pitr.stdout and '["restore log success summary"]' in pitr.stdout
        assert snapshot(playground.connect("scratch2")) == snapshot(src, as_of_tso=point_tso), (
            "PITR differs from dev as of the point"
        )

        # outside the window: refused with the range named, nothing restored
        later = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%d %H:%M:%S+0000")
        refused = br(
            env, "restore", "point", "--pd", s1.pd, "-s", f"{root}/log", "--restored-ts", later, *s3, check=False
        )
        assert refused.returncode == 1
        assert "but the current existed log from" in refused.stderr
        assert "[BR:Common:ErrInvalidArgument]" in refused.stderr
        metadata = br(env, "log", "metadata", "-s", f"{root}/log", *s3)
        assert '["log metadata"]' in metadata.stdout
    finally:
        br(env, "log", "stop", "--task-name", "pitr-dba", "--pd", dev.pd, check=False)
        for scratch in ("scratch1", "scratch2"):  # leave the session's playground as we found it
            conn = playground.connect(scratch)
            wipe(conn)
            conn.close()
    assert json.loads(br(env, "log", "status", "--json", "--pd", dev.pd).stdout) == []
