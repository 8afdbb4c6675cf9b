"""The nightly harvest, step by step (pure core; the Airflow operators call these).

1. :func:`harvest_window` — from the stored watermark (or, the first time, ``lookback`` before the end,
   aligned to UTC midnight) to the run's end time.
2. :func:`aggregate_sql` / :func:`aggregate_files` — read that window from ``CLUSTER_SLOW_QUERY`` (in
   1-hour windows, :mod:`~tidbops.slowlog.sql_source`) or from slow-log files, into UTC-day aggregates.
3. :func:`~tidbops.slowlog.store.save_harvest` — store them and move the watermark, in one transaction.
4. :func:`build_reports` — a report per harvested day against the 7 days before it, stored per day.
5. :func:`guardrail_statements` / :func:`apply_guardrails` — the report's suggestions; applied only when
   asked, only to a real TiDB, and only the ones the cluster's version supports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tidbops.catalog.store import Catalog
from tidbops.slowlog.aggregate import DailyAggregates
from tidbops.slowlog.errors import GuardrailRefusedError
from tidbops.slowlog.parser import SLOW_LOG_NAMES, find_slow_log_files, slow_log_name
from tidbops.slowlog.report import ReportOptions, SlowQueryReport, build_report, is_appliable_statement
from tidbops.slowlog.sql_source import DEFAULT_WINDOW, Cursor, iter_sql_entries
from tidbops.slowlog.store import day_bounds, load_with_baseline, save_report
from tidbops.storage import Storage
from tidbops.timefmt import utc

__all__ = [
    "APPLIABLE_KINDS",
    "DEFAULT_LOOKBACK",
    "GuardrailOutcome",
    "aggregate_files",
    "aggregate_sql",
    "apply_guardrails",
    "build_reports",
    "download_slow_logs",
    "execute_guardrail",
    "guardrail_statements",
    "harvest_window",
    "is_real_tidb",
    "primary_day",
    "rotated_time",
    "source_name",
]

DEFAULT_LOOKBACK = timedelta(days=8)  # the first harvest: a report day and its 7-day baseline
ROTATION_SLACK = timedelta(days=1)  # rotated-file names use the server's zone, and entries are not ordered
APPLIABLE_KINDS = ("query_watch", "binding")  # max_execution_time is a hint for the application's SQL


def source_name(source: str, table: str, log_paths: Sequence[str]) -> str:
    """The watermark's key: ``sql:<table>`` or ``files:<path>[,<path>…]`` (a new source starts over)."""
    text = f"sql:{table}" if source == "sql" else "files:" + ",".join(log_paths)
    return text[:255]


def harvest_window(
    watermark: datetime | None, until: datetime, *, lookback: timedelta = DEFAULT_LOOKBACK
) -> tuple[datetime, datetime]:
    """``[start, end)`` of this harvest: from the watermark to ``until`` (empty when already harvested)."""
    end = utc(until, "until")
    if watermark is not None:
        start = utc(watermark, "watermark")
    else:
        start = (end - lookback).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, max(start, end)


def _empty(start: datetime, end: datetime, redact: bool) -> DailyAggregates:
    return DailyAggregates(redact=redact, since=start.timestamp(), until=end.timestamp(), day_tz=UTC)


def aggregate_sql(
    cursor: Cursor,
    table: str,
    start: datetime,
    end: datetime,
    *,
    redact: bool = False,
    window: timedelta = DEFAULT_WINDOW,
) -> DailyAggregates:
    """Entries of ``[start, end)`` from a ``SLOW_QUERY``-shaped table, per UTC day."""
    table_aggs = _empty(start, end, redact)
    for entry, instance in iter_sql_entries(cursor, table, start, end, window=window, stats=table_aggs.parse_stats):
        table_aggs.add_entry(entry, instance)
    return table_aggs


def rotated_time(name: str) -> datetime | None:
    """When a rotated slow log (``tidb-slow-2026-11-20T00-00-00.000.log[.gz]``, TiUP's and TiDB Operator's
    names too: :data:`~tidbops.slowlog.parser.SLOW_LOG_NAMES`) was rotated, read as UTC (lumberjack writes
    the server's local time; :data:`ROTATION_SLACK` covers it); ``None`` for other names."""
    named = slow_log_name(name)
    if named is None or not named[1]:
        return None
    try:
        return datetime.strptime(named[1][:19], "%Y-%m-%dT%H-%M-%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def aggregate_files(
    directories: Iterable[tuple[Path, str]], start: datetime, end: datetime, *, redact: bool = False
) -> tuple[DailyAggregates, list[Path]]:
    """Entries of ``[start, end)`` from the slow logs in each ``(directory or file, instance)``.

    Rotated files rotated more than a day before ``start`` hold only older entries and are not read.
    Returns the aggregates and the files read.
    """
    aggs = _empty(start, end, redact)
    read: list[Path] = []
    for location, instance in directories:
        for path in find_slow_log_files(location):
            rotated = rotated_time(path.name)
            if rotated is not None and rotated < start - ROTATION_SLACK:
                continue
            aggs.add_file(path, instance)
            read.append(path)
    return aggs, read


def download_slow_logs(
    storage: Storage, dest: Path, start: datetime, names: Sequence[str] = SLOW_LOG_NAMES
) -> list[tuple[Path, str]]:
    """Copy the slow logs below ``storage`` that may hold entries at or after ``start`` into ``dest``.

    Layout: ``<instance>/tidb-slow.log`` (or another of ``names``) and rotated siblings (or the files right
    at the root, instance ``""``). Returns ``(directory, instance)`` for :func:`aggregate_files`.
    """
    wanted: dict[str, Path] = {}
    for obj in storage.list():
        rel_dir, _, name = obj.path.rpartition("/")
        if slow_log_name(name, names) is None or ".." in obj.path.split("/"):
            continue
        rotated = rotated_time(name)
        if rotated is not None and rotated < start - ROTATION_SLACK:
            continue
        target = dest / obj.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.open_read(obj.path) as src, open(target, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        wanted[rel_dir] = target.parent
    return [(directory, rel_dir.rsplit("/", 1)[-1]) for rel_dir, directory in sorted(wanted.items())]


def primary_day(days: Sequence[str], end: datetime) -> str | None:
    """The day a harvest ending at ``end`` reports on first: the latest complete day it touched."""
    complete = [d for d in days if day_bounds(d)[1] <= end]
    if complete:
        return max(complete)
    return max(days) if days else None


def build_reports(
    catalog: Catalog,
    cluster: str,
    days: Sequence[str],
    *,
    tidb_version: str | None,
    options: ReportOptions,
    now: datetime | None = None,
) -> list[SlowQueryReport]:
    """A report per day (against the stored baseline before it), each stored in ``slow_query_reports``."""
    out: list[SlowQueryReport] = []
    for day in sorted(set(days)):
        rows = load_with_baseline(catalog, cluster, day, options.baseline_days)
        report = build_report(rows, day, tidb_version=tidb_version, options=options)
        save_report(catalog, cluster, day, report.to_json(), now=now)
        out.append(report)
    return out


@dataclass(frozen=True, slots=True)
class GuardrailOutcome:
    mode: str  # "dry_run" | "applied" | "refused"
    statements: tuple[str, ...]  # what would be / was run
    applied: tuple[str, ...]
    reason: str
    rejected: tuple[str, ...] = ()  # stored statements that are not a guardrail shape: never run

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "statements": list(self.statements),
            "applied": list(self.applied),
            "reason": self.reason,
            "rejected": list(self.rejected),
        }


_KIND_OF_STATEMENT = {"query_watch": "QUERY WATCH ", "binding": "CREATE GLOBAL BINDING "}


def _split_guardrails(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(statements to run, stored statements refused) of a report's suggestions: those supported by the
    cluster and not hints, each exactly a statement :func:`~tidbops.slowlog.report.query_watch_sql` or
    :func:`~tidbops.slowlog.report.binding_sql` writes, of its own kind (the report came back from the
    catalog as JSON: it is checked again, not trusted)."""
    run: list[str] = []
    refused: list[str] = []
    guards = report.get("guardrails")
    for g in guards if isinstance(guards, list) else []:
        if not isinstance(g, dict):
            refused.append(repr(g)[:200])
            continue
        kind, sql = g.get("kind"), g.get("sql")
        if kind not in APPLIABLE_KINDS or g.get("applicable") is not True:
            continue
        if not (is_appliable_statement(sql) and str(sql).startswith(_KIND_OF_STATEMENT[str(kind)])):
            refused.append(sql if isinstance(sql, str) else repr(sql)[:200])
        elif sql not in run:
            run.append(str(sql))
    return run, refused


def guardrail_statements(report: dict[str, Any]) -> list[str]:
    """The report's suggestions that can be run as they are: supported by the cluster, not hints, and
    exactly one of the two guardrail statements with a 64-hex digest (others are refused)."""
    return _split_guardrails(report)[0]


def is_real_tidb(cursor: Cursor) -> bool:
    """``SELECT tidb_version()`` answers only on TiDB (MySQL-compatible look-alikes have no such function)."""
    try:
        cursor.execute("SELECT tidb_version()")
        rows = cursor.fetchmany(1)
    except Exception as exc:
        if "tidb_version" in str(exc).lower() or "does not exist" in str(exc).lower():
            return False
        raise
    return bool(rows and rows[0] and "Release Version" in str(rows[0][0]))


def execute_guardrail(cursor: Cursor, sql: str) -> None:
    """Run one guardrail statement: only exactly ``QUERY WATCH ADD ACTION KILL SQL DIGEST '<64 hex>';`` or
    ``CREATE GLOBAL BINDING FROM HISTORY USING PLAN DIGEST '<64 hex>';``, anything else raises
    :class:`GuardrailRefusedError` (the last check before SQL text reaches the server)."""
    if not is_appliable_statement(sql):
        raise GuardrailRefusedError(
            f"refused to run {sql[:200]!r}: not a guardrail statement with a 64-hex digest literal"
        )
    cursor.execute(sql)


def apply_guardrails(cursor: Cursor | None, report: dict[str, Any], *, apply: bool) -> GuardrailOutcome:
    """Run the report's appliable guardrails when ``apply`` (and the server is a real TiDB); else a dry run.

    Stored statements that are not exactly a guardrail statement are never run (``rejected``).
    """
    statements_list, refused_list = _split_guardrails(report)
    statements, rejected = tuple(statements_list), tuple(refused_list)
    note = f"; {len(rejected)} refused (not a guardrail statement with a 64-hex digest)" if rejected else ""
    if not apply:
        return GuardrailOutcome(
            "dry_run", statements, (), "slow_query.apply_guardrails is false: nothing run" + note, rejected
        )
    if not statements:
        return GuardrailOutcome("applied", (), (), "nothing to apply" + note, rejected)
    if cursor is None or not is_real_tidb(cursor):
        return GuardrailOutcome(
            "refused", statements, (), "the server is not a TiDB (no tidb_version()): not run" + note, rejected
        )
    done: list[str] = []
    for sql in statements:
        execute_guardrail(cursor, sql)
        done.append(sql)
    return GuardrailOutcome("applied", statements, tuple(done), f"{len(done)} statement(s) run" + note, rejected)
