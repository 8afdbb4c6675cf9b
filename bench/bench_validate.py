"""Validation benchmark: compare_table on a 1M-row table in two real MariaDB servers, against a bare scan.

Two private MariaDB servers (the playground's launcher: own data directories and loopback ports, stopped
and removed at the end) each hold the same ``bench.events`` (``--rows`` rows of seven columns: integers, strings,
a decimal, a datetime, NULLs). In one run, rounds alternate (the order rotates each round):

  (a) floor:      ``SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS(',', <every column>)))`` of the whole table
                  on the source, then on the target: what a DBA would type to compare two copies (the
                  issue's floor; it cannot tell NULL from '');
  (a') NULL-aware floor: the same bare scans with compare_table's row expression (fingerprint algorithm
                  2, NULL marks included): the cheapest whole-table checksum a validator could use;
  (b) sequential: ``compare_table(..., concurrent=False)``: each ``--chunk-rows`` chunk found and
                  fingerprinted on the target in one statement, then fingerprinted on the source;
  (c) concurrent: ``compare_table(...)``: a thread per side; on an integer key the source fingerprints the
                  range the target is guessing at the same time (chunks pipelined from the first one).

Also shown, not a goal: both bare scans at once on two threads (what two servers on this machine give at
best). A drill validates the way (c) does (``validate_content`` calls ``compare_table`` with its default,
``concurrent=True``; nothing in include/ or plugins/ passes ``concurrent=False``), so the goals of issue #19
apply to (c): a drill's validation at most 1.3x (a), and then 0.75x (a) by fingerprinting both sides at
once. (b) is (c)'s peer, one side after the other, shown with its ratio. Ratios to (a') are shown too.
Exit 1 when a goal is missed.

    .venv/bin/python bench/bench_validate.py [--rows 1000000] [--rounds 5] [--chunk-rows 50000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include")]

from tidbops.validate.fingerprint import DEFAULT_CHUNK_ROWS, compare_table, row_expr  # noqa: E402
from tidbops.validate.schema import TableDef, read_tables  # noqa: E402
from tidbops.validate.sql import Dialect, quote  # noqa: E402
from tidbops_playground.mariadb import MariaDBInstance  # noqa: E402

TABLE = """
CREATE TABLE bench.events (
  id BIGINT NOT NULL,
  account INT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  amount DECIMAL(14,4) NULL,
  created DATETIME(6) NOT NULL,
  note VARCHAR(64) NULL,
  flag TINYINT NULL,
  PRIMARY KEY (id)
)
"""
FILL = """
INSERT INTO bench.events
SELECT seq, seq * 7919 % 100000, ELT(1 + seq % 5, 'put', 'get', 'delete', 'scan', ''),
       IF(seq % 11 = 0, NULL, seq * 1.0625 % 100000), TIMESTAMP('2026-01-01 00:00:00') + INTERVAL (seq * 1733000) MICROSECOND,
       IF(seq % 13 = 0, NULL, CONCAT('note ', seq % 9973, REPEAT('x', seq % 30))), IF(seq % 3 = 0, NULL, seq % 2)
FROM bench.seq_1_to_{rows}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session(server: MariaDBInstance) -> Any:
    conn = server.connect()
    cur = conn.cursor()
    cur.execute("SET time_zone = '+00:00'")
    return cur


def floor_sql(table: TableDef) -> str:
    cols = ", ".join(quote(c.name) for c in sorted(table.columns, key=lambda c: c.position))
    return f"SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS(',', {cols}))) FROM bench.events"


def null_aware_floor_sql(table: TableDef) -> str:
    return f"SELECT COUNT(*), BIT_XOR(CRC32({row_expr(table)})) FROM bench.events"


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) the process has used: what a server spent, whatever else the machine ran."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[], object], pids: list[int | None]) -> tuple[float, float, object]:
    """Wall seconds, the servers' CPU seconds, and what ``fn`` returned."""
    cpu = sum(cpu_seconds(p) for p in pids)
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, sum(cpu_seconds(p) for p in pids) - cpu, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    ap.add_argument("--buffer-pool", default="1G", help="each server's innodb_buffer_pool_size (the table fits)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tidbops-bench-validate-"))
    servers = [
        MariaDBInstance(work / side, free_port(), secrets.token_hex(12), buffer_pool=args.buffer_pool)
        for side in ("source", "target")
    ]
    try:
        started = time.perf_counter()
        for server in servers:
            server.start()
            cur = session(server)
            cur.execute("CREATE DATABASE bench")
            cur.execute(TABLE)
            cur.execute(FILL.format(rows=args.rows))
            cur.execute("ANALYZE TABLE bench.events")
            cur.fetchall()
        source, target = (session(s) for s in servers)
        table = read_tables(target, ["bench"])["bench.events"]
        print(f"{args.rows:,} rows in two MariaDB servers, loaded in {time.perf_counter() - started:.1f}s")

        floor, null_aware = floor_sql(table), null_aware_floor_sql(table)

        def scan(cur: Any, sql: str = floor) -> tuple[int, int]:
            cur.execute(sql)
            rows, checksum = cur.fetchone()
            return int(rows), int(checksum)

        def floor_both() -> object:
            return scan(source), scan(target)

        def null_aware_both() -> object:
            return scan(source, null_aware), scan(target, null_aware)

        def floor_at_once() -> object:
            out: list[object] = [None, None]
            threads = [
                threading.Thread(target=lambda i=i, c=c: out.__setitem__(i, scan(c)))
                for i, c in enumerate((source, target))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return tuple(out)

        def compare(concurrent: bool) -> Callable[[], object]:
            return lambda: compare_table(
                source, target, table, at=None, source_dialect=Dialect.MARIADB, target_dialect=Dialect.MARIADB,
                chunk_rows=args.chunk_rows, concurrent=concurrent,
            )  # fmt: skip

        cases: dict[str, Callable[[], object]] = {
            "floor": floor_both,
            "NULL-aware floor": null_aware_both,
            "sequential": compare(False),
            "concurrent": compare(True),
            "floor, both at once": floor_at_once,
        }
        (s_rows, s_sum), (t_rows, t_sum) = floor_both()  # type: ignore[misc]  # warms both buffer pools
        assert s_rows == t_rows == args.rows and s_sum == t_sum, "the two copies differ"
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        pids = [server.pid() for server in servers]
        names = list(cases)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order each round
                seconds, cpu_used, result = timed(cases[name], pids)
                if name in ("sequential", "concurrent"):
                    assert result.ok and result.source_rows == result.target_rows == args.rows, result  # type: ignore[attr-defined]
                times[name].append(seconds)
                cpu[name].append(cpu_used)

        med = {name: statistics.median(values) for name, values in times.items()}
        base, aware = med["floor"], med["NULL-aware floor"]
        chunks = -(-args.rows // args.chunk_rows) + (1 if args.rows % args.chunk_rows == 0 else 0)
        print(
            f"table: bench.events, {len(table.columns)} columns; chunks of {args.chunk_rows:,} rows ({chunks} chunks); rounds: {args.rounds}"
        )
        for name, values in times.items():
            print(
                f"{name:20s} median {med[name]:.3f}s  {med[name] / base:.2f}x floor  {med[name] / aware:.2f}x NULL-aware  "
                f"(all: {', '.join(f'{v:.2f}' for v in values)}; servers' CPU {statistics.median(cpu[name]):.2f}s)"
            )
        conc = med["concurrent"] / base
        seq_ok, conc_ok = conc <= 1.3, conc <= 0.75
        print(f"goal: a drill's validation (concurrent) <= 1.30x floor: {'met' if seq_ok else 'MISSED'} ({conc:.2f}x)")
        print(f"goal: a drill's validation (concurrent) <= 0.75x floor: {'met' if conc_ok else 'MISSED'} ({conc:.2f}x)")
        print(f"its peer, one side after the other (sequential): {med['sequential'] / base:.2f}x floor")
        print(
            f"against the NULL-aware floor: sequential {med['sequential'] / aware:.2f}x "
            f"({'within' if med['sequential'] <= 1.3 * aware else 'above'} 1.30x), concurrent "
            f"{med['concurrent'] / aware:.2f}x ({'within' if med['concurrent'] <= 0.75 * aware else 'above'} 0.75x)"
        )
        return 0 if seq_ok and conc_ok else 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
