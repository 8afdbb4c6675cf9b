"""Slow-query history in the catalog: daily aggregates, digests, harvest watermarks and reports.

Tables (migration 2, ``tidbops.catalog.schema``): ``slow_query_daily`` (one row per cluster, UTC day,
digest, plan digest, db and user; ``stats`` holds the exact :class:`DigestStats` JSON, the other metric
columns are derived from it for ad-hoc SQL), ``slow_query_digests`` (first/last seen per digest),
``slow_query_watermarks`` (per cluster and source: everything before it has been harvested) and
``slow_query_reports`` (one report JSON per cluster and day).

**Idempotence.** A harvest reads the window ``[start, end)`` and :func:`save_harvest` stores it in *one*
transaction together with the new watermark ``end``:

* a UTC day the window covers whole is **replaced** (its rows deleted, the window's rows written; a
  covered day without entries ends up empty), so re-harvesting whole days never doubles anything;
* a day the window covers in part is **merged** into what is stored, which is right only for entries
  the catalog has not seen: that part must lie at or after the stored watermark, else
  :class:`SlowQueryWatermarkError` is raised and nothing is written.

A task retried after a failure therefore either finds its window stored (the watermark moved: the next
window is empty) or nothing of it (the transaction rolled back).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection

from tidbops.catalog.errors import CatalogSchemaError
from tidbops.catalog.migrations import current_version
from tidbops.catalog.schema import (
    slow_query_daily,
    slow_query_digests,
    slow_query_reports,
    slow_query_watermarks,
    write_transaction,
)
from tidbops.catalog.store import Catalog
from tidbops.slowlog.aggregate import DailyAggregates, DigestKey, DigestStats
from tidbops.slowlog.errors import SlowLogError, SlowLogFormatError
from tidbops.slowlog.parser import ParseStats, is_digest
from tidbops.timefmt import iso, iso_or_none, show, utc

__all__ = [
    "SLOW_QUERY_SCHEMA_VERSION",
    "SavedHarvest",
    "SlowQueryWatermarkError",
    "day_bounds",
    "forget_cluster",
    "get_watermark",
    "list_report_days",
    "load_aggregates",
    "load_report",
    "load_with_baseline",
    "save_harvest",
    "save_report",
    "set_watermark",
]

SLOW_QUERY_SCHEMA_VERSION = 2
_DAY = timedelta(days=1)


class SlowQueryWatermarkError(SlowLogError):
    """A harvest would count entries twice (its window overlaps what is stored, not on day boundaries)."""


@dataclass(frozen=True, slots=True)
class SavedHarvest:
    cluster: str
    source: str
    start: datetime
    end: datetime
    previous_watermark: datetime | None
    days_replaced: tuple[str, ...]
    days_merged: tuple[str, ...]
    rows_written: int
    entries: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "source": self.source,
            "start": iso(self.start, timespec="microseconds"),
            "end": iso(self.end, timespec="microseconds"),
            "previous_watermark": iso_or_none(self.previous_watermark, timespec="microseconds"),
            "days_replaced": list(self.days_replaced),
            "days_merged": list(self.days_merged),
            "rows_written": self.rows_written,
            "entries": self.entries,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch(value: float) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if math.isfinite(value) else None


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """``[00:00, next 00:00)`` of a UTC day ``YYYY-MM-DD``."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    return start, start + _DAY


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _split_window(start: datetime, end: datetime) -> tuple[list[str], list[tuple[str, datetime, datetime]]]:
    """Whole UTC days inside ``[start, end)``, and the partly covered days with their covered part."""
    whole: list[str] = []
    partial: list[tuple[str, datetime, datetime]] = []
    day = _midnight(start)
    while day < end:
        lo, hi = max(day, start), min(day + _DAY, end)
        if lo == day and hi == day + _DAY:
            whole.append(day.date().isoformat())
        else:
            partial.append((day.date().isoformat(), lo, hi))
        day += _DAY
    return whole, partial


def _check_schema(conn: Connection) -> None:
    found = current_version(conn)
    if found < SLOW_QUERY_SCHEMA_VERSION:
        raise CatalogSchemaError(
            f"the catalog has schema version {found}; slow-query history needs {SLOW_QUERY_SCHEMA_VERSION}: "
            "run `tidbops catalog migrate`"
        )


# ------------------------------------------------------------------------------------------ watermarks


def _watermark(conn: Connection, cluster: str, source: str) -> datetime | None:
    t = slow_query_watermarks
    value = conn.execute(select(t.c.watermark).where(t.c.cluster == cluster, t.c.source == source)).scalar()
    return value if isinstance(value, datetime) else None


def _put_watermark(conn: Connection, cluster: str, source: str, value: datetime, now: datetime) -> None:
    t = slow_query_watermarks
    where = and_(t.c.cluster == cluster, t.c.source == source)
    if conn.execute(select(t.c.cluster).where(where)).first() is None:
        conn.execute(insert(t).values(cluster=cluster, source=source, watermark=value, updated_at=now))
    else:
        conn.execute(update(t).where(where).values(watermark=value, updated_at=now))


def get_watermark(catalog: Catalog, cluster: str, source: str) -> datetime | None:
    """Everything of ``source`` before this time has been harvested (``None``: never harvested)."""
    with catalog.engine.connect() as conn:
        _check_schema(conn)
        return _watermark(conn, cluster, source)


def set_watermark(catalog: Catalog, cluster: str, source: str, value: datetime) -> None:
    """Move the watermark by hand (e.g. skip a backlog); harvests move it in :func:`save_harvest`."""
    with write_transaction(catalog.engine) as conn:
        _check_schema(conn)
        _put_watermark(conn, cluster, source, utc(value, "watermark"), _now())


# ------------------------------------------------------------------------------------------ aggregates


_BIGINT_MAX = 2**63 - 1


def _bigint(value: int) -> int:
    """A metric for a BIGINT column: saturated at 2^63 - 1 (the exact value is in ``stats``)."""
    return min(value, _BIGINT_MAX)


KEY_MAX = 64  # slow_query_daily.db and .user: String(64), part of the primary key


def key_part(value: str) -> str:
    """A DB or user name for a 64-character key column. TiDB's are shorter (identifiers: 64, users: 32);
    a longer one came from a forged or foreign log: it is cut to 55 characters + ``~`` + 8 hex of its
    SHA-256, so two long names stay two rows and a strict MySQL catalog never refuses the harvest."""
    if len(value) <= KEY_MAX:
        return value
    return f"{value[:55]}~{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _row_values(cluster: str, key: DigestKey, stats: DigestStats, now: datetime) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "day": key.day,
        "digest": key.digest,
        "plan_digest": key.plan_digest,
        "db": key.db,
        "user": key.user,
        "count": _bigint(stats.count),
        "total_query_time": stats.total_query_time,
        "avg_query_time": stats.avg_query_time,
        "p95_query_time": stats.p95_query_time,
        "max_query_time": stats.max_query_time,
        "process_time": stats.process_time_ns / 1e9,
        "wait_time": stats.wait_time_ns / 1e9,
        "backoff_time": stats.backoff_time_ns / 1e9,
        "process_keys": _bigint(stats.process_keys),
        "total_keys": _bigint(stats.total_keys),
        "result_rows": _bigint(stats.result_rows),
        "max_mem": _bigint(stats.max_mem),
        "errors": _bigint(stats.errors),
        "first_seen": _epoch(stats.first_seen),
        "last_seen": _epoch(stats.last_seen),
        "sample_sql": stats.sample_sql,
        "instances": sorted(stats.instances),
        "stats": stats.to_json(),
        "updated_at": now,
    }


def _stored(cluster: str, row: Any, problems: ParseStats | None) -> tuple[DigestKey, DigestStats] | None:
    """A ``slow_query_daily`` row as ``(key, stats)``, or ``None`` (noted in ``problems``) when it is not what
    :func:`save_harvest` writes: digests of 64 lower-case hex characters (an empty plan digest: no plan) and
    stats JSON :meth:`DigestStats.from_json` accepts. What comes back from the catalog is checked, since
    digests from it go into guardrail statements."""
    where = f"catalog slow_query_daily row {cluster}/{row.day} digest {str(row.digest)[:80]!r}"
    if not is_digest(row.digest) or (row.plan_digest and not is_digest(row.plan_digest)):
        reason = "a digest or plan digest is not 64 lower-case hex characters"
    else:
        try:
            return DigestKey(row.day, row.digest, row.plan_digest, row.db, row.user), DigestStats.from_json(row.stats)
        except SlowLogFormatError as exc:
            reason = str(exc)
    if problems is not None:
        problems.malformed += 1
        problems.note(f"{where}: {reason}: left out")
    return None


def _load_days(conn: Connection, cluster: str, days: Iterable[str]) -> dict[DigestKey, DigestStats]:
    t = slow_query_daily
    wanted = sorted(set(days))
    if not wanted:
        return {}
    rows = conn.execute(
        select(t.c.day, t.c.digest, t.c.plan_digest, t.c.db, t.c.user, t.c.stats).where(
            t.c.cluster == cluster, t.c.day.in_(wanted)
        )
    )
    return dict(item for r in rows if (item := _stored(cluster, r, None)) is not None)


def _upsert_digests(conn: Connection, cluster: str, stats: dict[DigestKey, DigestStats], now: datetime) -> None:
    per_digest: dict[str, DigestStats] = {}
    for key, s in stats.items():
        mine = per_digest.get(key.digest)
        if mine is None:
            per_digest[key.digest] = s.copy()
        else:
            mine.merge(s)
    t = slow_query_digests
    for digest, s in per_digest.items():
        where = and_(t.c.cluster == cluster, t.c.digest == digest)
        old = conn.execute(select(t.c.first_seen, t.c.last_seen, t.c.sample_sql).where(where)).first()
        first, last = _epoch(s.first_seen), _epoch(s.last_seen)
        if old is None:
            conn.execute(
                insert(t).values(
                    cluster=cluster, digest=digest, first_seen=first, last_seen=last, sample_sql=s.sample_sql,
                    updated_at=now,
                )
            )  # fmt: skip
            continue
        firsts = [v for v in (old.first_seen, first) if v is not None]
        lasts = [v for v in (old.last_seen, last) if v is not None]
        conn.execute(
            update(t)
            .where(where)
            .values(
                first_seen=min(firsts) if firsts else None,
                last_seen=max(lasts) if lasts else None,
                sample_sql=old.sample_sql or s.sample_sql,
                updated_at=now,
            )
        )


def save_harvest(
    catalog: Catalog,
    cluster: str,
    source: str,
    aggregates: DailyAggregates,
    *,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> SavedHarvest:
    """Store what a harvest of ``[start, end)`` aggregated (UTC days) and move the watermark to ``end``.

    ``aggregates`` must hold only entries of that window, with UTC days (``day_tz=UTC``, or the SQL
    source). See the module docstring for replace/merge and when :class:`SlowQueryWatermarkError` is raised.
    """
    start, end = utc(start, "start"), utc(end, "end")
    if end < start:
        raise ValueError(f"harvest window ends ({end}) before it starts ({start})")
    stamp = now or _now()
    whole, partial = _split_window(start, end)
    new_rows: dict[DigestKey, DigestStats] = {}
    for raw_key, raw_stats in aggregates.rows():  # keyed as stored (long names cut), so partial days merge
        key = raw_key._replace(db=key_part(raw_key.db), user=key_part(raw_key.user))
        if key in new_rows:
            new_rows[key].merge(raw_stats)
        else:
            new_rows[key] = raw_stats.copy()
    outside = sorted({k.day for k in new_rows} - set(whole) - {d for d, _, _ in partial})
    if outside:
        raise ValueError(f"the aggregates hold days outside the window {start}..{end}: {', '.join(outside)}")
    with write_transaction(catalog.engine) as conn:
        _check_schema(conn)
        previous = _watermark(conn, cluster, source)
        if previous is not None:
            for day, lo, _hi in partial:
                if lo < previous:
                    raise SlowQueryWatermarkError(
                        f"{cluster}/{source}: the window part {show(lo, ms=True)}.. of {day} lies before the watermark "
                        f"{show(previous, ms=True)} and is not a whole day: its entries may be stored already; "
                        "re-harvest whole UTC days to replace them"
                    )
        merged_days = [d for d, _, _ in partial if any(k.day == d for k in new_rows)]
        combined = _load_days(conn, cluster, merged_days)
        for key, stats in new_rows.items():
            mine = combined.get(key)
            if mine is None:
                combined[key] = stats.copy()
            else:
                mine.merge(stats)
        touched = sorted(set(whole) | set(merged_days))
        t = slow_query_daily
        if touched:
            conn.execute(delete(t).where(t.c.cluster == cluster, t.c.day.in_(touched)))
        values = [_row_values(cluster, k, s, stamp) for k, s in sorted(combined.items())]
        for i in range(0, len(values), 500):
            conn.execute(insert(t), values[i : i + 500])
        _upsert_digests(conn, cluster, new_rows, stamp)
        if previous is None or end > previous:
            _put_watermark(conn, cluster, source, end, stamp)
    return SavedHarvest(
        cluster=cluster,
        source=source,
        start=start,
        end=end,
        previous_watermark=previous,
        days_replaced=tuple(whole),
        days_merged=tuple(merged_days),
        rows_written=len(values),
        entries=sum(s.count for s in new_rows.values()),
    )


def load_aggregates(catalog: Catalog, cluster: str, first_day: str, last_day: str) -> DailyAggregates:
    """The stored rows of ``first_day … last_day`` (inclusive) as :class:`DailyAggregates`; rows that are not
    what :func:`save_harvest` writes are left out and counted in its ``parse_stats``."""
    t = slow_query_daily
    table = DailyAggregates(day_tz=UTC)
    with catalog.engine.connect() as conn:
        _check_schema(conn)
        rows = conn.execute(
            select(t.c.day, t.c.digest, t.c.plan_digest, t.c.db, t.c.user, t.c.stats).where(
                t.c.cluster == cluster, t.c.day >= first_day, t.c.day <= last_day
            )
        )
        for r in rows:
            item = _stored(cluster, r, table.parse_stats)
            if item is not None:
                table.stats[item[0]] = item[1]
    return table


def load_with_baseline(catalog: Catalog, cluster: str, day: str, baseline_days: int = 7) -> DailyAggregates:
    """``day`` and the ``baseline_days`` days before it: what :func:`~tidbops.slowlog.report.build_report` needs."""
    first = (date.fromisoformat(day) - timedelta(days=baseline_days)).isoformat()
    return load_aggregates(catalog, cluster, first, day)


# --------------------------------------------------------------------------------------------- reports


def save_report(
    catalog: Catalog, cluster: str, day: str, report: dict[str, Any], *, now: datetime | None = None
) -> None:
    """Store (or replace) the report of ``cluster`` for ``day``."""
    date.fromisoformat(day)
    t = slow_query_reports
    where = and_(t.c.cluster == cluster, t.c.day == day)
    with write_transaction(catalog.engine) as conn:
        _check_schema(conn)
        if conn.execute(select(t.c.day).where(where)).first() is None:
            conn.execute(insert(t).values(cluster=cluster, day=day, report=report, created_at=now or _now()))
        else:
            conn.execute(update(t).where(where).values(report=report, created_at=now or _now()))


def load_report(catalog: Catalog, cluster: str, day: str) -> dict[str, Any] | None:
    t = slow_query_reports
    with catalog.engine.connect() as conn:
        _check_schema(conn)
        value = conn.execute(select(t.c.report).where(t.c.cluster == cluster, t.c.day == day)).scalar()
    return dict(value) if isinstance(value, dict) else None


def list_report_days(catalog: Catalog, cluster: str) -> list[str]:
    t = slow_query_reports
    with catalog.engine.connect() as conn:
        _check_schema(conn)
        return [str(d) for d in conn.execute(select(t.c.day).where(t.c.cluster == cluster).order_by(t.c.day))]


def forget_cluster(catalog: Catalog, cluster: str) -> int:
    """Delete a cluster's slow-query history, watermarks included (the next harvest starts over)."""
    removed = 0
    with write_transaction(catalog.engine) as conn:
        _check_schema(conn)
        for t in (slow_query_daily, slow_query_digests, slow_query_watermarks, slow_query_reports):
            removed += conn.execute(delete(t).where(t.c.cluster == cluster)).rowcount or 0
    return removed
