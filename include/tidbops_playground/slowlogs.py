"""Slow queries for the playground's source clusters, for both harvest sources, fed night by night.

Per source cluster, the generator (:mod:`tidbops_playground.slowlog_gen`) writes 8 UTC days ending
yesterday, with a regression injected on the last day (``regressed_digests`` in the state file). They
are published in two "nights":

* night 1: days 1–7 (the baseline); night 2: adds day 8, the regressed day;
* **SQL source**: the rows go into ``tidbops_slowlog.cluster_slow_query`` on the cluster, a stand-in
  for ``INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY`` with TiDB's column names (the br emulator skips
  ``tidbops_*`` databases);
* **file source**: the files (``tidb-slow-<rotation time>.log`` per day, ``tidb-slow.log`` for the last)
  are copied to ``<home>/clusters/<name>/slowlog/tidb-0/`` and uploaded below
  ``s3://<bucket>/slowlog/<name>/tidb-0/``.

``up`` calls :func:`ensure` (night 1, once: a no-op when the state file exists). Tests and the demo call
:func:`reset` (fresh data ending yesterday, night 1) and :func:`load_night` (night 2).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tidbops.slowlog.parser import iter_entries
from tidbops_playground import manager, slowlog_gen
from tidbops_playground.registry import Registry

log = logging.getLogger(__name__)

DATABASE = "tidbops_slowlog"
TABLE = "cluster_slow_query"
FULL_TABLE = f"{DATABASE}.{TABLE}"
S3_PREFIX = "slowlog"
INSTANCE = "tidb-0"
DAYS = 8
ENTRIES_PER_DAY = 500
DIGESTS = 20
SEED = 1  # with these sizes, every regressed digest runs ≥ 10 times on the last day (the report's minimum)
STATE_FILE = "state.json"

DDL = f"""CREATE TABLE IF NOT EXISTS `{DATABASE}`.`{TABLE}` (
  `INSTANCE` VARCHAR(64) NOT NULL,
  `Time` DATETIME(6) NOT NULL,
  `Txn_start_ts` BIGINT UNSIGNED NULL,
  `User` VARCHAR(64) NULL,
  `Host` VARCHAR(64) NULL,
  `Query_time` DOUBLE NULL,
  `Process_time` DOUBLE NULL,
  `Wait_time` DOUBLE NULL,
  `Backoff_time` DOUBLE NULL,
  `Total_keys` BIGINT UNSIGNED NULL,
  `Process_keys` BIGINT UNSIGNED NULL,
  `DB` VARCHAR(64) NULL,
  `Is_internal` TINYINT(1) NULL,
  `Digest` VARCHAR(64) NULL,
  `Mem_max` BIGINT NULL,
  `Result_rows` BIGINT NULL,
  `Succ` TINYINT(1) NULL,
  `Plan_digest` VARCHAR(128) NULL,
  `Query` LONGTEXT NULL,
  KEY `ix_time` (`Time`)
) DEFAULT CHARSET=utf8mb4"""
_COLUMNS = (
    "INSTANCE", "Time", "User", "Host", "Query_time", "Process_time", "Wait_time", "Backoff_time", "Total_keys",
    "Process_keys", "DB", "Is_internal", "Digest", "Mem_max", "Result_rows", "Succ", "Plan_digest", "Query",
)  # fmt: skip


def slowlog_dir(home: Path, cluster: str) -> Path:
    return home / "clusters" / cluster / "slowlog"


def _state_path(home: Path, cluster: str) -> Path:
    return slowlog_dir(home, cluster) / STATE_FILE


def read_state(home: Path, cluster: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(_state_path(home, cluster).read_text()))
    except (OSError, ValueError):
        return None


def _write_state(home: Path, cluster: str, state: dict[str, Any]) -> None:
    _state_path(home, cluster).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


@contextmanager
def _session(home: Path, cluster: str) -> Iterator[Any]:
    """A connection to ``cluster``'s server, in UTC, closed when the block ends."""
    conn = manager.instance(home, cluster).connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        yield conn
    finally:
        conn.close()


def _night_files(state: dict[str, Any], night: int) -> list[Path]:
    files = [Path(f) for f in state["files"]]
    return files[:-1] if night == 1 else files[-1:]


def _rows(files: Iterable[Path]) -> Iterable[tuple[Any, ...]]:
    for entry in iter_entries(list(files)):
        yield (
            INSTANCE, datetime.fromtimestamp(entry.time, UTC).replace(tzinfo=None), entry.user, entry.host,
            entry.query_time, entry.process_time, entry.wait_time, entry.backoff_time, entry.total_keys,
            entry.process_keys, entry.db, int(entry.is_internal), entry.digest, entry.mem_max, entry.result_rows,
            int(entry.succ), entry.plan_digest, entry.sql,
        )  # fmt: skip


def _s3_objects(registry: Registry, cluster: str) -> tuple[Any, str, str]:
    assert registry.s3 is not None
    return manager.s3_client(registry.s3), registry.s3.bucket, f"{S3_PREFIX}/{cluster}/"


def load_night(home: Path, registry: Registry, cluster: str, night: int) -> dict[str, Any]:
    """Publish night ``night`` (1 or 2) of ``cluster``'s generated set to the table, the directory and S3."""
    state = read_state(home, cluster)
    if state is None:
        raise RuntimeError(f"no generated slow logs for {cluster}: call reset() first")
    if night in state["nights"]:
        return state
    files = _night_files(state, night)
    with _session(home, cluster) as conn:
        with conn.cursor() as cur:
            cols = ", ".join(f"`{c}`" for c in _COLUMNS)
            marks = ", ".join(["%s"] * len(_COLUMNS))
            rows = list(_rows(files))
            for i in range(0, len(rows), 1000):
                cur.executemany(f"INSERT INTO `{DATABASE}`.`{TABLE}` ({cols}) VALUES ({marks})", rows[i : i + 1000])
        conn.commit()
    visible = slowlog_dir(home, cluster) / INSTANCE
    visible.mkdir(parents=True, exist_ok=True)
    client, bucket, prefix = _s3_objects(registry, cluster)
    for f in files:
        shutil.copy2(f, visible / f.name)
        client.upload_file(str(f), bucket, f"{prefix}{INSTANCE}/{f.name}")
    state["nights"] = sorted({*state["nights"], night})
    _write_state(home, cluster, state)
    log.info("%s: slow-log night %s published (%s rows, %s file(s))", cluster, night, len(rows), len(files))
    return state


def reset(home: Path, registry: Registry, cluster: str, *, today: date | None = None) -> dict[str, Any]:
    """Fresh slow logs for ``cluster``: 8 days ending the day before ``today`` (UTC), night 1 published."""
    today = today or datetime.now(UTC).date()
    start = today - timedelta(days=DAYS)
    base = slowlog_dir(home, cluster)
    shutil.rmtree(base, ignore_errors=True)
    (base / "generated").mkdir(parents=True)
    result = slowlog_gen.generate(
        base / "generated", entries=DAYS * ENTRIES_PER_DAY, days=DAYS, start=start, seed=SEED, digests=DIGESTS,
        regress_day=DAYS - 1, split_daily=True, truncated_tail=False,
    )  # fmt: skip
    per_day: dict[str, int] = {}
    for truth in result.digests.values():
        if truth.kind == "internal":
            continue
        for day, (count, _ns) in truth.per_day.items():
            per_day[day] = per_day.get(day, 0) + count
    with _session(home, cluster) as conn:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
            cur.execute(DDL)
            cur.execute(f"DELETE FROM `{DATABASE}`.`{TABLE}`")
        conn.commit()
    client, bucket, prefix = _s3_objects(registry, cluster)
    old = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    if old:
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in old]})
    state = {
        "start": start.isoformat(),
        "days": [(start + timedelta(days=d)).isoformat() for d in range(DAYS)],
        "files": [str(f) for f in result.files],
        "regress_day": result.regress_day,
        "regressed_digests": result.regressed_digests,
        "plan_changes": {d: list(p) for d, p in result.plan_changes.items()},
        "entries_per_day": dict(sorted(per_day.items())),  # user (non-internal) entries
        "nights": [],
    }
    _write_state(home, cluster, state)
    return load_night(home, registry, cluster, 1)


def ensure(home: Path, registry: Registry) -> None:
    """Night 1 for every source cluster that has no slow logs yet (fast when all have them)."""
    for name, entry in sorted(registry.clusters.items()):
        if entry.kind == "source" and read_state(home, name) is None:
            reset(home, registry, name)
