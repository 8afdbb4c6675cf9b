"""Read slow queries from ``INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY`` (or a table of the same shape), incrementally.

``CLUSTER_SLOW_QUERY`` re-parses the slow-log files of every TiDB node on each query, and wide time ranges
have OOM-killed tidb-server (``/work/shared/reference/tidb-slow-query.md`` §2.2), so the harvest:

* pins ``time_zone = '+00:00'`` for the session: ``Time`` is shown, and ``Time`` predicates are read, in
  the session zone;
* reads ``[start, end)`` in narrow windows (1 h by default), each with both ``Time`` bounds (a one-sided
  range makes TiDB assume ±24 h);
* selects only the columns the daily aggregates keep (``Plan`` is never selected: TiDB decodes it only
  when asked), and filters ``Is_internal = 0`` on the server.

Rows become :class:`~tidbops.slowlog.parser.SlowQueryEntry` objects, the same as the file parser yields,
so both sources feed :class:`~tidbops.slowlog.aggregate.DailyAggregates` alike. ``INSTANCE`` is selected
only from ``CLUSTER_*`` tables (``SLOW_QUERY`` has no such column).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tidbops.slowlog.errors import SlowLogFormatError
from tidbops.slowlog.parser import ParseStats, SlowQueryEntry, count_value, is_digest, seconds_value
from tidbops.timefmt import utc

__all__ = [
    "DEFAULT_WINDOW",
    "SESSION_SETUP",
    "SLOW_QUERY_COLUMNS",
    "Cursor",
    "WindowQuery",
    "columns_for",
    "iter_sql_entries",
    "quote_table",
    "row_to_entry",
    "window_queries",
]

DEFAULT_WINDOW = timedelta(hours=1)
SESSION_SETUP = ("SET time_zone = '+00:00'",)
# The columns kept, in TiDB's spelling; each maps to a SlowQueryEntry field.
SLOW_QUERY_COLUMNS: tuple[str, ...] = (
    "Time",
    "Digest",
    "Plan_digest",
    "DB",
    "User",
    "Host",
    "Query_time",
    "Process_time",
    "Wait_time",
    "Backoff_time",
    "Process_keys",
    "Total_keys",
    "Result_rows",
    "Mem_max",
    "Succ",
    "Query",
)
_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class Cursor(Protocol):
    """The DB-API cursor methods used (pymysql's cursor has them)."""

    def execute(self, query: str, args: Any = ...) -> Any: ...

    def fetchmany(self, size: int = ...) -> Sequence[Sequence[Any]]: ...


@dataclass(frozen=True, slots=True)
class WindowQuery:
    """One query of the harvest: rows with ``start <= Time < end``."""

    start: datetime
    end: datetime
    sql: str
    params: tuple[str, str]


def quote_table(table: str) -> str:
    """``schema.table`` quoted with backticks; anything else is refused (it goes into SQL text)."""
    parts = table.split(".")
    if len(parts) != 2 or not all(p and (p.replace("_", "").isalnum() and p.isascii()) for p in parts):
        raise ValueError(f"{table!r} is not a table name of the form schema.table (letters, digits, _)")
    return ".".join(f"`{p}`" for p in parts)


def columns_for(table: str) -> tuple[str, ...]:
    """The selected columns: :data:`SLOW_QUERY_COLUMNS`, plus ``INSTANCE`` for ``CLUSTER_*`` tables."""
    name = table.split(".")[-1].upper()
    return (*SLOW_QUERY_COLUMNS, "INSTANCE") if name.startswith("CLUSTER_") else SLOW_QUERY_COLUMNS


def window_queries(
    table: str, start: datetime, end: datetime, *, window: timedelta = DEFAULT_WINDOW
) -> list[WindowQuery]:
    """The queries that read ``[start, end)`` of ``table``, ``window`` at a time (for a session in UTC).

    Window bounds are aligned to multiples of ``window`` since the epoch (the first and last are cut to
    ``start`` and ``end``), so re-harvests ask TiDB the same questions.
    """
    start, end = utc(start, "start"), utc(end, "end")
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    if end <= start:
        return []
    cols = ", ".join(f"`{c}`" for c in columns_for(table))
    sql = f"SELECT {cols} FROM {quote_table(table)} WHERE `Time` >= %s AND `Time` < %s AND `Is_internal` = 0"
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    out: list[WindowQuery] = []
    lo = start
    while lo < end:
        steps = math.floor((lo - epoch) / window) + 1
        hi = min(end, epoch + steps * window)
        out.append(WindowQuery(lo, hi, sql, (lo.strftime(_TS_FORMAT), hi.strftime(_TS_FORMAT))))
        lo = hi
    return out


def _present(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return None if value is None or value == "" else value


def _seconds(row: Mapping[str, Any], column: str, *, required: bool = False) -> float:
    """A time column: what :func:`~tidbops.slowlog.parser.seconds_value` accepts (0 when NULL, unless required)."""
    value = _present(row.get(column))
    if value is None:
        if required:
            raise SlowLogFormatError(f"{column} is missing")
        return 0.0
    try:
        return seconds_value(value)
    except ValueError as exc:
        raise SlowLogFormatError(f"{column}: {exc}") from None


def _count(row: Mapping[str, Any], column: str) -> int:
    """A count column: what :func:`~tidbops.slowlog.parser.count_value` accepts (0 when NULL)."""
    value = _present(row.get(column))
    if value is None:
        return 0
    try:
        return count_value(value)
    except ValueError as exc:
        raise SlowLogFormatError(f"{column}: {exc}") from None


def _digests(row: Mapping[str, Any]) -> tuple[str, str]:
    """``Digest`` (required) and ``Plan_digest`` (NULL or empty: no plan), each 64 lower-case hex characters."""
    digest, plan = _text(row.get("Digest")), _text(row.get("Plan_digest"))
    if not is_digest(digest):
        raise SlowLogFormatError(f"Digest is not 64 lower-case hex characters: {digest[:80]!r}")
    if plan and not is_digest(plan):
        raise SlowLogFormatError(f"Plan_digest is not 64 lower-case hex characters: {plan[:80]!r}")
    return digest, plan


def _bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _time(value: Any) -> datetime:
    """``Time`` as returned for a session in UTC: a naive ``datetime`` (pymysql) or its text, of the years
    1000-2999 like the file parser's."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str | bytes):
        try:
            when = datetime.fromisoformat(_text(value).strip())
        except ValueError:
            pass
    if when is not None and 1000 <= when.year <= 2999:
        try:
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        except OverflowError:
            pass
    raise SlowLogFormatError(f"slow-query row has an unusable Time: {str(value)[:80]!r}")


def row_to_entry(row: Mapping[str, Any]) -> tuple[SlowQueryEntry, str]:
    """One row (column name → value, TiDB's column names) as an entry and the instance it came from.

    The values are held to the file parser's rules (digests of 64 lower-case hex characters, times from 0
    to a year, counts of at most 18 digits, a real ``Time``): :class:`SlowLogFormatError` names the column
    of a row that breaks one.
    """
    when = _time(row.get("Time"))
    digest, plan_digest = _digests(row)
    sql = _text(row.get("Query"))
    entry = SlowQueryEntry(
        time=when.timestamp(),
        day=when.date().isoformat(),
        utc_offset=0,
        query_time=_seconds(row, "Query_time", required=True),
        digest=digest,
        plan_digest=plan_digest,
        db=_text(row.get("DB")),
        user=_text(row.get("User")),
        host=_text(row.get("Host")),
        sql=sql if sql.endswith(";") else sql + ";",
        process_time=_seconds(row, "Process_time"),
        wait_time=_seconds(row, "Wait_time"),
        backoff_time=_seconds(row, "Backoff_time"),
        process_keys=_count(row, "Process_keys"),
        total_keys=_count(row, "Total_keys"),
        result_rows=_count(row, "Result_rows"),
        mem_max=_count(row, "Mem_max"),
        is_internal=_bool(row.get("Is_internal"), False),
        succ=_bool(row.get("Succ"), True),
    )
    return entry, _text(row.get("INSTANCE"))


def iter_sql_entries(
    cursor: Cursor,
    table: str,
    start: datetime,
    end: datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    batch: int = 2000,
    stats: ParseStats | None = None,
) -> Iterator[tuple[SlowQueryEntry, str]]:
    """Run :data:`SESSION_SETUP` and the window queries on ``cursor``; yield ``(entry, instance)``.

    A row :func:`row_to_entry` refuses is counted in ``stats.malformed`` and noted as ``<table> rows <window>,
    row N: what``; the others are read on.
    """
    counters = stats if stats is not None else ParseStats()
    for statement in SESSION_SETUP:
        cursor.execute(statement)
    names = columns_for(table)
    for query in window_queries(table, start, end, window=window):
        cursor.execute(query.sql, query.params)
        number = 0
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                break
            for row in rows:
                number += 1
                try:
                    entry = row_to_entry(dict(zip(names, row, strict=True)))
                except SlowLogFormatError as exc:
                    counters.malformed += 1
                    counters.note(f"{table} rows {query.params[0]} .. {query.params[1]}, row {number}: {exc}")
                    continue
                counters.entries += 1
                yield entry
