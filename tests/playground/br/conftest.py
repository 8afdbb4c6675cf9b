"""Session fixture for the br-emulator tests: two private MariaDB servers (``src`` source, ``dst`` scratch),
one S3 server, a registry in a temporary playground home, and a seeded source with every value type the
emulator must round-trip (DECIMAL, DATETIME(6), JSON, BLOB, utf8mb4 emoji/CJK, FLOAT, BIT, NULLs, FK)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.helpers.servers import free_port
from tidbops_playground.br.db import connect
from tidbops_playground.mariadb import MariaDBInstance
from tidbops_playground.registry import ClusterEntry, Registry, S3Endpoint, save_registry
from tidbops_playground.s3server import S3Server

REPO = Path(__file__).resolve().parents[3]
BR = REPO / "include" / "tidbops_playground" / "bin" / "br"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-SHOULD-NEVER-LEAK"
BUCKET = "backups"
SYSTEM_DBS = {"mysql", "sys", "information_schema", "performance_schema"}


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    log: str

    def summary(self, name: str) -> dict[str, str]:
        """The ``[k=v]`` fields of the ``["<name>"]`` line on stdout."""
        for line in self.stdout.splitlines():
            if f'["{name}"]' in line:
                return parse_fields(line)
        raise AssertionError(f"no {name!r} line in stdout:\n{self.stdout}\nstderr:\n{self.stderr}")


FIELD_RE = re.compile(r'\[([^\]=]+)=("(?:[^"\\]|\\.)*"|[^\]]*)\]')


def parse_fields(line: str) -> dict[str, str]:
    out = {}
    for key, value in FIELD_RE.findall(line):
        if value.startswith('"'):
            value = json.loads(value)
        out[key] = value
    return out


@dataclass
class Playground:
    home: Path
    src: ClusterEntry
    dst: ClusterEntry
    s3_endpoint: str
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("BR_LOG_TO_TERM", None)
        env.pop("TIDBOPS_BR_FAULTS", None)
        env.update(
            TIDBOPS_PLAYGROUND_HOME=str(self.home),
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            TZ="UTC",
        )
        env.update(extra)
        return env

    def br(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        stdin: str | None = None,
        log: bool = True,
    ) -> Result:
        log_file = self.tmp / f"br-{time.time_ns()}.log"
        argv = [str(BR), *args]
        if log and not any(a.startswith("--log-file") for a in args):
            argv += ["--log-file", str(log_file)]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env or self.env(),
            timeout=timeout,
            input=stdin if stdin is not None else "",
        )
        text = log_file.read_text() if log_file.exists() else ""
        return Result(proc.returncode, proc.stdout, proc.stderr, text)

    def local(self, name: str) -> str:
        return f"local://{self.tmp / 'storage' / name}"

    def s3(self, prefix: str) -> str:
        return f"s3://{BUCKET}/{prefix}?endpoint={self.s3_endpoint}"

    def conn(self, entry: ClusterEntry) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        """A session as the emulator opens one (UTC, utf8mb4, every value as text)."""
        return connect(entry)

    def backup_table(self, storage: str, *extra: str) -> Result:
        """``br backup table`` of ``shop.customers`` from the source cluster to ``storage``."""
        return self.br("backup", "table", "--db", "shop", "-t", "customers", "--pd", self.src.pd, "-s", storage, *extra)

    def restore_point(self, log_url: str, full_url: str, *extra: str) -> Result:
        """``br restore point`` onto the scratch cluster from the log at ``log_url`` and the full backup."""
        return self.br(
            "restore", "point", "--pd", self.dst.pd, "-s", log_url, "--full-backup-storage", full_url, *extra
        )

    def sql(self, entry: ClusterEntry, *statements: str) -> list[tuple[Any, ...]]:
        c = self.conn(entry)
        try:
            rows: list[tuple[Any, ...]] = []
            with c.cursor() as cur:
                for st in statements:
                    cur.execute(st)
                    rows = list(cur.fetchall())
            return rows
        finally:
            c.close()

    def reset_dst(self) -> None:
        dbs = [r[0] for r in self.sql(self.dst, "SHOW DATABASES")]
        stmts = [f"DROP DATABASE `{d}`" for d in dbs if d.lower() not in SYSTEM_DBS]
        if stmts:
            self.sql(self.dst, "SET FOREIGN_KEY_CHECKS=0", *stmts)
        state = self.dst.pd_state_file(self.home)
        if state.exists():
            data = json.loads(state.read_text())
            data["log_tasks"] = {}
            data["restore_tasks"] = {}
            data["gc_safe_point"] = 0
            state.write_text(json.dumps(data))

    def snapshot(
        self, entry: ClusterEntry, as_of: str | None = None, tables: set[tuple[str, str]] | None = None
    ) -> dict[tuple[str, str], tuple[str, int, str]]:
        """(db, table) → (SHOW CREATE without the AUTO_INCREMENT counter, row count, sha256 of the ordered rows;
        FLOAT read exactly)."""
        c = self.conn(entry)
        out: dict[tuple[str, str], tuple[str, int, str]] = {}
        try:
            with c.cursor() as cur:
                cur.execute(
                    "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA NOT IN ('mysql','sys','information_schema','performance_schema') "
                    "AND TABLE_SCHEMA NOT LIKE 'tidbops\\_%' ORDER BY 1, 2"
                )
                for db, t, ttype in cur.fetchall():
                    if tables is not None and (db, t) not in tables:
                        continue
                    if ttype == "VIEW":
                        cur.execute(f"SHOW CREATE VIEW `{db}`.`{t}`")
                        out[(db, t)] = (cur.fetchall()[0][1].split(" VIEW ", 1)[1], 0, "")
                        continue
                    cur.execute(f"SHOW CREATE TABLE `{db}`.`{t}`")
                    ddl = re.sub(r" AUTO_INCREMENT=\d+", "", cur.fetchall()[0][1])  # a counter, not schema
                    cur.execute(
                        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s "
                        "AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
                        (db, t),
                    )
                    cols = [f"CAST(`{n}` AS DOUBLE)" if dtype == "float" else f"`{n}`" for n, dtype in cur.fetchall()]
                    asq = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{as_of}'" if as_of and ttype == "SYSTEM VERSIONED" else ""
                    cur.execute(f"SELECT {', '.join(cols)} FROM `{db}`.`{t}`{asq} ORDER BY 1, 2")
                    rows = cur.fetchall()
                    out[(db, t)] = (ddl, len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
        finally:
            c.close()
        return out


SEED = [
    "CREATE DATABASE shop",
    "CREATE DATABASE kinds DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    "CREATE DATABASE empty_db",
    """CREATE TABLE shop.customers (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200),
        balance DECIMAL(20,6) NOT NULL DEFAULT 0, UNIQUE KEY uk_email (email)) WITH SYSTEM VERSIONING""",
    """CREATE TABLE shop.orders (
        id BIGINT NOT NULL PRIMARY KEY, customer_id BIGINT NOT NULL, amount DECIMAL(18,4) NOT NULL,
        created DATETIME(6) NOT NULL, note TEXT, meta JSON, KEY idx_customer (customer_id),
        CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES shop.customers (id) ON DELETE CASCADE
    ) WITH SYSTEM VERSIONING""",
    """CREATE TABLE kinds.everything (
        id INT NOT NULL PRIMARY KEY, payload BLOB, f FLOAT, d DOUBLE, bits BIT(12), e ENUM('a','b','c'),
        s SET('x','y'), t TIME(3), dt DATE, ts TIMESTAMP(6) NULL, y YEAR, bin VARBINARY(16), u TINYINT UNSIGNED,
        big BIGINT UNSIGNED, txt MEDIUMTEXT, j JSON, g INT AS (id * 2) VIRTUAL
    ) WITH SYSTEM VERSIONING""",
    "CREATE VIEW shop.big_orders AS SELECT id, amount FROM shop.orders WHERE amount > 100",
]


def advance_now(pg: Playground, cluster: str = "src") -> int | None:
    """The log task's ``advance`` up to this moment: every change committed before the call is flushed.

    ``advance(now_ms=now + lag)`` flushes up to the start of the current millisecond (a checkpoint is a
    whole millisecond), so a change committed earlier in that same millisecond was left out; on a quiet,
    fast machine a test's UPDATE and its advance often fall in one (seen in CI, 2026-12-07). Waiting 2 ms
    first puts every committed change before the checkpoint."""
    from tidbops_playground.br import tso
    from tidbops_playground.br.log import ADVANCE_LAG_MS, advance

    time.sleep(0.002)
    return advance(pg.home, cluster, now_ms=tso.now_ms() + ADVANCE_LAG_MS)


def seed_source(pg: Playground) -> None:
    c = pg.conn(pg.src)
    try:
        with c.cursor() as cur:
            for st in SEED:
                cur.execute(st)
            cur.executemany(
                "INSERT INTO shop.customers (id, name, email, balance) VALUES (%s, %s, %s, %s)",
                [
                    (i, f"客户 {i} 😀 Ünïcödé", f"c{i}@example.com" if i % 5 else None, f"{i * 1000}.{i:06d}")
                    for i in range(1, 41)
                ],
            )
            cur.executemany(
                "INSERT INTO shop.orders VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        i,
                        1 + i % 40,
                        f"{i * 37 % 1000}.{i % 10000:04d}",
                        f"2024-02-{1 + i % 28:02d} 01:02:03.{i:06d}",
                        None if i % 4 == 0 else "tab\there 'q' \"dq\" back\\slash\nnewline ✓",
                        None
                        if i % 6 == 0
                        else json.dumps({"k": i, "nested": {"a": [1, 2.5, None, "x"]}, "emoji": "🎉"}),
                    )
                    for i in range(1, 301)
                ],
            )
            cur.executemany(
                "INSERT INTO kinds.everything (id, payload, f, d, bits, e, s, t, dt, ts, y, bin, u, big, txt, j) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        i,
                        None if i == 3 else bytes(range(256))[i:] + b"\x00\x1a'\\\"",
                        3.1415927 * i,
                        0.1 + 0.2 * i,
                        i % 4096,
                        "abc"[i % 3],
                        "x,y" if i % 2 else "",
                        f"{i % 24:02d}:59:58.123",
                        "2024-02-29",
                        None if i % 3 == 0 else "2024-01-01 00:00:00.000001",
                        1990 + i % 50,
                        bytes([i]) * 3,
                        i,
                        2**64 - 1 - i,
                        "中文" * i,
                        '{"b": 1, "a": [true, false, null]}' if i % 2 else None,
                    )
                    for i in range(1, 31)
                ],
            )
    finally:
        c.close()


@pytest.fixture(scope="package")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    base = tmp_path_factory.mktemp("br-playground")
    home = base / "home"
    home.mkdir()
    (base / "tmp").mkdir()
    entries = {
        name: ClusterEntry(
            name=name,
            kind=kind,
            pd=f"127.0.0.1:{free_port()}",
            sql_host="127.0.0.1",
            sql_port=free_port(),
            sql_user="root",
            sql_password=password,
            cluster_id=cluster_id,
            tidb_version="v8.5.1",
        )
        for name, kind, password, cluster_id in (
            ("src", "source", "src-Pw-1", 7001),
            ("dst", "scratch", "dst-Pw-2", 7002),
        )
    }
    servers = [MariaDBInstance(e.cluster_dir(home), e.sql_port, e.sql_password) for e in entries.values()]
    s3 = S3Server(base / "s3", free_port())
    try:
        for s in servers:
            s.start()
        s3.start()
        import boto3

        boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        ).create_bucket(Bucket=BUCKET)
        save_registry(
            Registry(
                clusters=entries,
                s3=S3Endpoint(endpoint=s3.endpoint, bucket=BUCKET, access_key=ACCESS_KEY, secret_key=SECRET_KEY),
            ),
            home,
        )
        playground = Playground(
            home=home, src=entries["src"], dst=entries["dst"], s3_endpoint=s3.endpoint, tmp=base / "tmp"
        )
        seed_source(playground)
        time.sleep(0.05)
        yield playground
    finally:
        for s in servers:
            s.stop()
        s3.stop()


@pytest.fixture()
def fresh_dst(pg: Playground) -> Iterator[Playground]:
    """An empty scratch cluster and no armed faults, before and after the test."""
    from tidbops_playground.faults import clear_faults

    clear_faults(pg.home)
    pg.reset_dst()
    yield pg
    clear_faults(pg.home)
    pg.reset_dst()


@pytest.fixture()
def no_faults(pg: Playground) -> Iterator[Playground]:
    from tidbops_playground.faults import clear_faults

    clear_faults(pg.home)
    yield pg
    clear_faults(pg.home)
