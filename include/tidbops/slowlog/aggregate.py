"""Daily aggregates of slow queries per (day, digest, plan digest, db, user), exactly mergeable.

Every sum is an integer (times in nanoseconds, as TiDB writes at most 9 decimals), the histogram has fixed
buckets (:mod:`tidbops.slowlog.histogram`), and the sample query is chosen by a total order (slowest, then
earliest, then smallest text), so ``merge(aggregate(A), aggregate(B)) == aggregate(A + B)`` holds exactly
and days roll up into weeks in any order.

Two ways in, with identical results (the tests check it on generated logs):

* :meth:`DailyAggregates.add_entry` for :class:`~tidbops.slowlog.parser.SlowQueryEntry` objects, one by one;
* :meth:`DailyAggregates.add_file` (and :func:`aggregate_files`), which never builds an entry object for
  entries in TiDB's canonical shape. When the C extension is in use (``parser.SCANNER == "c"``) the group
  fold ``_scan.Groups`` reads them straight from the mapped file and keeps one accumulator per key in C:
  no object per entry, memory bounded by the number of keys (:data:`GROUP_FOLD`), with ``day_tz`` too when
  it is a fixed offset (``UTC``, as the nightly harvest uses). Otherwise (and with a ``day_tz`` that has
  daylight saving) the parser's rows are aggregated chunk by chunk, column-wise with C-level ``map``/``sum``, and
  with the C extension the numeric columns of a group are folded by ``_scan.fold`` in one pass; a value it
  does not take (an integer over 18 digits, a sum that would overflow) leaves the group to the Python fold.
  All of them give the same integers (exact nanoseconds of the decimal text), histogram buckets, times
  and samples. ``jobs > 1`` parses byte ranges of big files in worker processes and merges their
  aggregates.

``day`` is the entry's date as written in the log (the TiDB server's zone) unless ``day_tz`` is given, in
which case entry times are converted to that zone first.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import partial
from itertools import repeat
from operator import itemgetter, lt, mul
from pathlib import Path
from typing import Any, NamedTuple

from tidbops.slowlog import parser
from tidbops.slowlog.errors import SlowLogFileError, SlowLogFormatError
from tidbops.slowlog.histogram import INV_LOG_GAMMA, LogHistogram
from tidbops.slowlog.parser import (
    DEFAULT_CHUNK_SIZE,
    ROW_FIELDS,
    Locator,
    ParseStats,
    Row,
    SlowQueryEntry,
    iter_entries,
    iter_located_batches,
    iter_located_spans,
    parse_slow_log_time,
    row_to_entry,
    split_byte_ranges,
)
from tidbops.timefmt import iso

__all__ = [
    "DailyAggregates",
    "DigestKey",
    "DigestStats",
    "aggregate_entries",
    "aggregate_files",
]

NS = 1_000_000_000
GROUP_FOLD = True
"""Whether files are aggregated by the C group fold when the C scanner is in use (the tests switch it off
to run the row folds, which must give the same tables)."""
_PENDING_ROWS = 16_384  # rows held before a column-wise fold (10-20 MB: less when the C scanner shares values)
_SMALL_GROUP = 32  # groups smaller than this wait for more rows unless their date is over


class DigestKey(NamedTuple):
    """What one aggregate row is about."""

    day: str  # YYYY-MM-DD
    digest: str
    plan_digest: str
    db: str
    user: str


def _better_sample(ns: int, when: float, sql: str, other_ns: int, other_when: float, other_sql: str) -> bool:
    """The sample order: slower wins, then earlier, then the smaller text."""
    if ns != other_ns:
        return ns > other_ns
    if when != other_when:
        return when < other_when
    return sql < other_sql


@dataclass(slots=True)
class DigestStats:
    """The mergeable metrics of one :class:`DigestKey` (times in nanoseconds, sizes in bytes)."""

    count: int = 0
    query_time_ns: int = 0
    max_query_time_ns: int = 0
    histogram: LogHistogram = field(default_factory=LogHistogram)
    process_time_ns: int = 0
    wait_time_ns: int = 0
    backoff_time_ns: int = 0
    process_keys: int = 0
    total_keys: int = 0
    result_rows: int = 0
    max_mem: int = 0
    errors: int = 0  # entries with Succ: false
    first_seen: float = math.inf
    last_seen: float = -math.inf
    sample_sql: str = ""
    sample_query_time_ns: int = -1
    sample_time: float = math.inf
    instances: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ derived
    @property
    def total_query_time(self) -> float:
        return self.query_time_ns / NS

    @property
    def avg_query_time(self) -> float:
        return self.query_time_ns / NS / self.count if self.count else 0.0

    @property
    def max_query_time(self) -> float:
        return self.max_query_time_ns / NS

    @property
    def p95_query_time(self) -> float:
        """Nearest-rank p95 within 1 % (see :mod:`~tidbops.slowlog.histogram`), never above the maximum."""
        return min(self.histogram.quantile(0.95), self.max_query_time)

    # ------------------------------------------------------------------ building
    def add(self, entry: SlowQueryEntry, instance: str, sample_text: Callable[[str], str] = str) -> None:
        """Count one entry; ``sample_text`` turns its SQL into the stored sample (e.g. redacts it)."""
        ns = round(entry.query_time * NS)
        self.count += 1
        self.query_time_ns += ns
        if ns > self.max_query_time_ns:
            self.max_query_time_ns = ns
        self.histogram.add(entry.query_time)
        self.process_time_ns += round(entry.process_time * NS)
        self.wait_time_ns += round(entry.wait_time * NS)
        self.backoff_time_ns += round(entry.backoff_time * NS)
        self.process_keys += entry.process_keys
        self.total_keys += entry.total_keys
        self.result_rows += entry.result_rows
        if entry.mem_max > self.max_mem:
            self.max_mem = entry.mem_max
        if not entry.succ:
            self.errors += 1
        if entry.time < self.first_seen:
            self.first_seen = entry.time
        if entry.time > self.last_seen:
            self.last_seen = entry.time
        if ns > self.sample_query_time_ns or (ns == self.sample_query_time_ns and entry.time <= self.sample_time):
            text = sample_text(entry.sql)
            if _better_sample(ns, entry.time, text, self.sample_query_time_ns, self.sample_time, self.sample_sql):
                self.sample_sql, self.sample_query_time_ns, self.sample_time = text, ns, entry.time
        self.instances.add(instance)

    def merge(self, other: DigestStats) -> None:
        """Add ``other`` to this (exact; commutative and associative)."""
        self.count += other.count
        self.query_time_ns += other.query_time_ns
        self.max_query_time_ns = max(self.max_query_time_ns, other.max_query_time_ns)
        self.histogram.merge(other.histogram)
        self.process_time_ns += other.process_time_ns
        self.wait_time_ns += other.wait_time_ns
        self.backoff_time_ns += other.backoff_time_ns
        self.process_keys += other.process_keys
        self.total_keys += other.total_keys
        self.result_rows += other.result_rows
        self.max_mem = max(self.max_mem, other.max_mem)
        self.errors += other.errors
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        if _better_sample(
            other.sample_query_time_ns,
            other.sample_time,
            other.sample_sql,
            self.sample_query_time_ns,
            self.sample_time,
            self.sample_sql,
        ):
            self.sample_sql = other.sample_sql
            self.sample_query_time_ns = other.sample_query_time_ns
            self.sample_time = other.sample_time
        self.instances |= other.instances

    def copy(self) -> DigestStats:
        clone = DigestStats()
        clone.merge(self)
        return clone

    # ------------------------------------------------------------------ JSON
    def to_json(self, *, histogram: bool = True) -> dict[str, Any]:
        """JSON-safe; ``histogram=False`` leaves the histogram out (a report that shows only its p95)."""
        return {
            "count": self.count,
            "query_time_ns": self.query_time_ns,
            "max_query_time_ns": self.max_query_time_ns,
            **({"histogram": self.histogram.to_json()} if histogram else {}),
            "process_time_ns": self.process_time_ns,
            "wait_time_ns": self.wait_time_ns,
            "backoff_time_ns": self.backoff_time_ns,
            "process_keys": self.process_keys,
            "total_keys": self.total_keys,
            "result_rows": self.result_rows,
            "max_mem": self.max_mem,
            "errors": self.errors,
            "first_seen": _finite(self.first_seen),
            "last_seen": _finite(self.last_seen),
            "sample_sql": self.sample_sql,
            "sample_query_time_ns": self.sample_query_time_ns,
            "sample_time": _finite(self.sample_time),
            "instances": sorted(self.instances),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestStats:
        """The stats :meth:`to_json` wrote; :class:`SlowLogFormatError` for anything else (negative counts,
        times that are not finite …: what comes back from storage is checked, not trusted)."""
        try:
            return cls(
                count=_whole(data["count"]),
                query_time_ns=_whole(data["query_time_ns"]),
                max_query_time_ns=_whole(data["max_query_time_ns"]),
                histogram=LogHistogram.from_json(data["histogram"]),
                process_time_ns=_whole(data["process_time_ns"]),
                wait_time_ns=_whole(data["wait_time_ns"]),
                backoff_time_ns=_whole(data["backoff_time_ns"]),
                process_keys=_whole(data["process_keys"]),
                total_keys=_whole(data["total_keys"]),
                result_rows=_whole(data["result_rows"]),
                max_mem=_whole(data["max_mem"]),
                errors=_whole(data["errors"]),
                first_seen=_number(data["first_seen"], math.inf),
                last_seen=_number(data["last_seen"], -math.inf),
                sample_sql=str(data["sample_sql"]),
                sample_query_time_ns=_whole(data["sample_query_time_ns"], -1),
                sample_time=_number(data["sample_time"], math.inf),
                instances={str(i) for i in data["instances"]},
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise SlowLogFormatError(f"not a serialized DigestStats: {exc!r}") from None


def _finite(epoch: float) -> float | None:
    """Epoch seconds for JSON (``None`` for the empty sentinels); floats round-trip exactly."""
    return epoch if math.isfinite(epoch) else None


_EPOCH_RANGE = (-30_610_224_000.0, 32_503_680_000.0)  # 1000-01-01 .. 3000-01-01 UTC: the years of slow logs


def _number(value: Any, missing: float) -> float:
    """An epoch from JSON: ``None`` for the empty sentinel, else a time of the years 1000-2999."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a time: {value!r}")
    number = float(value)
    if not _EPOCH_RANGE[0] <= number < _EPOCH_RANGE[1]:  # also NaN
        raise ValueError(f"not a time of the years 1000-2999: {value!r}")
    return number


def _whole(value: Any, least: int = 0) -> int:
    """A count from JSON: an integer from ``least`` up."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"not a count from {least}: {value!r}")
    return value


def iso_time(epoch: float) -> str:
    """Epoch seconds as :func:`tidbops.timefmt.iso` writes them, e.g. ``2026-11-01T00:01:30.568Z``; ``-`` for
    the empty sentinels and for anything outside the years of slow logs (1000-2999)."""
    if not _EPOCH_RANGE[0] <= epoch < _EPOCH_RANGE[1]:  # also inf and NaN
        return "-"
    return iso(datetime.fromtimestamp(epoch, UTC))


# ----------------------------------------------------------------------------------------- columns
_F = ROW_FIELDS
_DATE, _TOD = _F["date"], _F["tod"]
_GROUP = itemgetter(
    _F["date"],
    _F["zone"],
    _F["digest"],
    _F["plan_digest"],
    _F["db"],
    _F["user"],
    _F["is_internal"],
    _F["succ"],
    _F["other"],
)
_QT = itemgetter(_F["query_time"])
_PT = itemgetter(_F["process_time"])
_WT = itemgetter(_F["wait_time"])
_BT = itemgetter(_F["backoff_time"])
_PK = itemgetter(_F["process_keys"])
_TK = itemgetter(_F["total_keys"])
_ROWS = itemgetter(_F["result_rows"])
_MEM = itemgetter(_F["mem_max"])
_TODS = itemgetter(_F["tod"])
_SQL_INDEX = _F["sql"]
_POSITIVE = partial(lt, 0.0)


def _ns_sum(values: Iterable[bytes]) -> int:
    """Sum of decimal seconds (non-empty values only) in whole nanoseconds, equal to the sum of
    ``round(float(v) * 1e9)`` over the values.

    The expression only captures values with at most 6 integer and 9 fraction digits, so each is an
    integer number of nanoseconds below 1e15; ``math.fsum`` of their floats is then within
    ``3.4e-7 × total`` nanoseconds of the exact sum, which rounds exactly while the total is below
    1e6 s. Larger totals are summed value by value.
    """
    present = list(filter(None, values))
    total = math.fsum(map(float, present))
    if total < 1e6:
        return round(total * 1e9)
    return sum(map(round, map(mul, map(float, present), repeat(1e9))))


def _int_sum(values: Iterable[bytes]) -> int:
    return sum(map(int, filter(None, values)))


try:
    from tidbops.slowlog import _scan
except ImportError:  # not built: the Python fold below
    _scan = None  # type: ignore[assignment]

_QT_INDEX, _MEM_INDEX = _F["query_time"], _F["mem_max"]
_NS_FIELDS = (_F["process_time"], _F["wait_time"], _F["backoff_time"])
_INT_FIELDS = (_F["process_keys"], _F["total_keys"], _F["result_rows"])
FoldedRows = tuple[int, int, list[int], dict[int, int], int, tuple[int, int, int], tuple[int, int, int], int]


# The fields the C group fold reads, in the order of its F_* constants.
_GROUP_FIELDS = tuple(
    _F[name]
    for name in (
        "date", "tod", "zone", "digest", "plan_digest", "db", "user", "is_internal", "succ", "query_time",
        "process_time", "wait_time", "backoff_time", "process_keys", "total_keys", "result_rows", "mem_max",
        "sql", "other",
    )
)  # fmt: skip


def _c_fold(rows: list[Row]) -> FoldedRows | None:
    """The numeric columns of canonical rows by the C extension (``None``: not built, or a value it leaves
    to Python): query-time ns total, max ns, indices of the rows with that max, histogram bucket counts,
    zero times, (process, wait, backoff) ns sums, (process keys, total keys, result rows) sums, max memory.
    """
    if _scan is None:
        return None
    return _scan.fold(rows, _QT_INDEX, _NS_FIELDS, _INT_FIELDS, _MEM_INDEX, INV_LOG_GAMMA)


def _fixed_offset(tz: tzinfo) -> int | None:
    """Whole seconds east of UTC of a fixed-offset zone (``timezone``), else ``None``."""
    if not isinstance(tz, timezone):
        return None
    offset = tz.utcoffset(None)
    return int(offset.total_seconds()) if offset == timedelta(seconds=int(offset.total_seconds())) else None


class DailyAggregates:
    """A table ``DigestKey -> DigestStats``, built from entries or files and merged exactly.

    :param redact: store sample queries with literals replaced by ``?`` (TiDB ``tidb_redact_log=ON``).
    :param include_internal: count entries with ``Is_internal: true`` (TiDB's own SQL); skipped by default.
    :param since: count only entries with ``time >= since`` (epoch seconds).
    :param until: count only entries with ``time < until``.
    :param day_tz: the zone that defines ``day``; ``None`` keeps the date written in the log.
    """

    def __init__(
        self,
        *,
        redact: bool = False,
        include_internal: bool = False,
        since: float | None = None,
        until: float | None = None,
        day_tz: tzinfo | None = None,
    ) -> None:
        self.redact = redact
        self.include_internal = include_internal
        self.since = since
        self.until = until
        self.day_tz = day_tz
        self.stats: dict[DigestKey, DigestStats] = {}
        self.parse_stats = ParseStats()
        self.skipped_internal = 0
        self.skipped_by_time = 0
        self._pending: defaultdict[tuple[bytes, ...], list[Row]] = defaultdict(list)
        self._pending_rows = 0
        self._pending_instance = ""

    # ------------------------------------------------------------------ options
    def _options(self) -> dict[str, Any]:
        return {
            "redact": self.redact,
            "include_internal": self.include_internal,
            "since": self.since,
            "until": self.until,
            "day_tz": self.day_tz,
        }

    def _sample_text(self, sql: str) -> str:
        if not self.redact:
            return sql
        from tidbops.slowlog.redact import redact_sql  # only with redact: its expressions take time to build

        return redact_sql(sql)

    def _day(self, entry: SlowQueryEntry) -> str:
        if self.day_tz is None:
            return entry.day
        return datetime.fromtimestamp(entry.time, self.day_tz).date().isoformat()

    def _wanted_time(self, when: float) -> bool:
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)

    # ------------------------------------------------------------------ entries
    def add_entry(self, entry: SlowQueryEntry, instance: str = "") -> bool:
        """Count one entry; ``False`` when the options leave it out (internal, outside the time window)."""
        if entry.is_internal and not self.include_internal:
            self.skipped_internal += 1
            return False
        if not self._wanted_time(entry.time):
            self.skipped_by_time += 1
            return False
        key = DigestKey(self._day(entry), entry.digest, entry.plan_digest, entry.db, entry.user)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = DigestStats()
        stats.add(entry, instance, self._sample_text)
        return True

    def add_entries(self, entries: Iterable[SlowQueryEntry], instance: str = "") -> None:
        for entry in entries:
            self.add_entry(entry, instance)

    # ------------------------------------------------------------------ files (column-wise)
    def add_file(
        self,
        path: str | os.PathLike[str],
        instance: str | None = None,
        *,
        byte_range: tuple[int, int] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """Aggregate one slow-log file (``.gz`` too); ``instance`` defaults to the file's directory name.

        A file that cannot be read to its end is counted in ``parse_stats.bad_files`` with its cause and
        never raises: of a truncated ``.gz`` the entries before the cut are kept (what TiDB wrote, as for a
        plain file cut mid-write), of a corrupt or unreadable one none (``parse_stats.discarded``). So is a
        file with bytes but no ``# Time:`` line at all (not a slow log: the general log, a wrong file).
        """
        name = instance if instance is not None else default_instance(path)
        part = DailyAggregates(**self._options())
        try:
            groups = part._groups()
            if groups is not None:
                part._add_file_grouped(groups, path, name, byte_range, chunk_size)
            else:
                for rows, locator in iter_located_batches(
                    path, stats=part.parse_stats, chunk_size=chunk_size, byte_range=byte_range
                ):
                    part.add_rows(rows, name, locator)
            part.flush()
        except SlowLogFileError as exc:
            part.flush()
            if not exc.keeps_prefix:
                self.parse_stats.merge(part.parse_stats.dropped())
                self.parse_stats.bad_file(exc)
                return
            part.parse_stats.bad_file(exc)
        else:
            st = part.parse_stats
            if st.skipped_bytes and not (st.entries or st.incomplete or st.malformed) and byte_range is None:
                st.bad_file(
                    SlowLogFileError(str(path), "not a slow log", f"no '# Time: ' line in {st.skipped_bytes} bytes")
                )
        self.merge(part, consume=True)

    def _groups(self) -> _scan.Groups | None:
        """The C group fold for a file, when the C scanner is in use and it can take these options (a
        ``day_tz`` only of a fixed offset, as ``timezone`` has: a zone with daylight saving is decided entry by
        entry in Python)."""
        if not GROUP_FOLD or _scan is None or parser.c_scanner() is None:
            return None
        if not hasattr(_scan, "Groups"):  # an extension built from an older _scan.c: rebuild (pip install -e .)
            return None
        options: dict[str, Any] = {}
        if self.day_tz is not None:
            offset = _fixed_offset(self.day_tz)
            if offset is None:
                return None
            options["day_offset"] = offset
        try:
            return _scan.Groups(
                _GROUP_FIELDS,
                INV_LOG_GAMMA,
                self.include_internal,
                self.since,
                self.until,
                self._sample_text if self.redact else None,
                **options,
            )
        except TypeError:  # an extension built from an older _scan.c, without day_offset: rebuild it
            return None

    def _add_file_grouped(
        self,
        groups: _scan.Groups,
        path: str | os.PathLike[str],
        instance: str,
        byte_range: tuple[int, int] | None,
        chunk_size: int,
    ) -> None:
        """Aggregate a file by the C group fold: canonical entries are folded in C straight from the mapped
        (or decompressed) bytes, the others go through the general parser as they come. What was folded
        is added also when reading fails half-way (the caller decides whether a bad file's entries stay)."""
        scanner = parser.c_scanner()
        assert scanner is not None
        try:
            for buf, start, end, locator in iter_located_spans(
                path, stats=self.parse_stats, chunk_size=chunk_size, byte_range=byte_range
            ):
                others = groups.scan(scanner, buf, start, end)
                if others:
                    self._add_slow_rows(others, instance, locator)
        finally:
            self._add_groups(groups, instance)

    def _add_groups(self, groups: _scan.Groups, instance: str) -> None:
        entries, internal, by_time = groups.counts()
        counters = self.parse_stats
        counters.entries += entries
        counters.fast_path += entries
        self.skipped_internal += internal
        self.skipped_by_time += by_time
        for group in groups.results():
            (day, digest, plan, db, user, count, errors, total_ns, top, buckets, zeros) = group[:11]
            (pt, wt, bt), (pk, tk, result_rows), mem, first, last, sql, when = group[11:]
            stats = DigestStats(
                count=count,
                query_time_ns=total_ns,
                max_query_time_ns=top,
                histogram=LogHistogram(buckets, zeros),
                process_time_ns=pt,
                wait_time_ns=wt,
                backoff_time_ns=bt,
                process_keys=pk,
                total_keys=tk,
                result_rows=result_rows,
                max_mem=mem,
                errors=errors,
                first_seen=first,
                last_seen=last,
                sample_sql=self._sample_text(_text(sql)),
                sample_query_time_ns=top,
                sample_time=when,
                instances={instance},
            )
            key = DigestKey(day.decode("ascii"), _text(digest), _text(plan), _text(db), _text(user))
            mine = self.stats.get(key)
            if mine is None:
                self.stats[key] = stats
            else:
                mine.merge(stats)

    def add_rows(self, rows: list[Row], instance: str, locator: Locator | None = None) -> None:
        """Aggregate rows of :func:`~tidbops.slowlog.parser.iter_row_batches` (buffered; see :meth:`flush`).

        Rows in TiDB's canonical shape are buffered; the others go through the general parser at once, so
        that a malformed one is noted with its line (``locator``, of these rows' chunk).
        """
        if not rows:
            return
        if instance != self._pending_instance and self._pending_rows:
            self.flush()
        self._pending_instance = instance
        pending = self._pending
        for key, row in zip(map(_GROUP, rows), rows, strict=True):
            pending[key].append(row)
        self._pending_rows += len(rows)
        for key in [k for k in pending if not k[0]]:  # no date: not canonical
            held = pending.pop(key)
            self._pending_rows -= len(held)
            self._add_slow_rows(held, instance, locator)
        if self._pending_rows >= _PENDING_ROWS:
            # Fold the big groups and those of earlier dates (a log is written in time order); keep the
            # small groups of the current date to fold them with more rows later.
            current = rows[-1][_DATE]
            self._fold(lambda key, held: len(held) >= _SMALL_GROUP or key[0] != current)
            if self._pending_rows >= _PENDING_ROWS // 2:
                self.flush()

    def flush(self) -> None:
        """Fold every buffered row into the table (called by :meth:`add_file` and before reading results)."""
        self._fold(lambda key, held: True)

    def _fold(self, wanted: Callable[[tuple[bytes, ...], list[Row]], bool]) -> None:
        pending, instance = self._pending, self._pending_instance
        counters = self.parse_stats
        for group_key in [k for k, held in pending.items() if wanted(k, held)]:
            rows = pending.pop(group_key)
            self._pending_rows -= len(rows)
            day_b, zone, digest, plan, db, user, internal, succ, other = group_key
            if other or not day_b:
                self._add_slow_rows(rows, instance)
                continue
            try:
                tods = list(map(_TODS, rows))
                first = parse_slow_log_time(day_b + b"T" + min(tods) + zone)
                last = parse_slow_log_time(day_b + b"T" + max(tods) + zone)
            except ValueError:  # not expected: the expression accepts real times only
                self._add_slow_rows(rows, instance)
                continue
            if internal == b"true" and not self.include_internal:
                counters.entries += len(rows)
                counters.fast_path += len(rows)
                self.skipped_internal += len(rows)
                continue
            if (self.since is not None and last < self.since) or (self.until is not None and first >= self.until):
                counters.entries += len(rows)
                counters.fast_path += len(rows)
                self.skipped_by_time += len(rows)
                continue
            day = day_b.decode("ascii")
            if self.day_tz is not None:
                day = datetime.fromtimestamp(first, self.day_tz).date().isoformat()
                if datetime.fromtimestamp(last, self.day_tz).date().isoformat() != day:
                    day = ""
            if (
                not day
                or (self.since is not None and first < self.since)
                or (self.until is not None and last >= self.until)
            ):  # the group straddles a day or window boundary: entry by entry
                self._add_slow_rows(rows, instance)
                continue
            counters.entries += len(rows)
            counters.fast_path += len(rows)
            key = DigestKey(day, _text(digest), _text(plan), _text(db), _text(user))
            target = self.stats.get(key)
            if target is None:
                target = self.stats[key] = DigestStats()
            self._fold_rows(target, rows, day_b, zone, first, last)
            if succ == b"false":
                target.errors += len(rows)
            target.instances.add(instance)

    def _add_slow_rows(self, rows: list[Row], instance: str, locator: Locator | None = None) -> None:
        source = locator.source if locator is not None else ""
        for row in rows:
            entry = row_to_entry(row, self.parse_stats, source=source, locator=locator)
            if entry is not None:
                self.add_entry(entry, instance)

    def _fold_rows(
        self, target: DigestStats, rows: list[Row], day_b: bytes, zone: bytes, first: float, last: float
    ) -> None:
        """Add canonical rows that share date, zone and key to ``target``, column by column.

        Gives exactly what :meth:`DigestStats.add` gives row by row (the tests compare both).
        """
        histogram = target.histogram
        folded = _c_fold(rows) if parser.SCANNER == "c" else None
        if folded is not None:  # the C extension: the same numbers, exactly (the tests compare both)
            total_ns, top, tops, buckets, zeros, (pt, wt, bt), (pk, tk, result_rows), mem = folded
            histogram.counts.update(buckets)
            histogram.zeros += zeros
            target.count += len(rows)
            target.query_time_ns += total_ns
            picks = [rows[i] for i in tops]
            target.process_time_ns += pt
            target.wait_time_ns += wt
            target.backoff_time_ns += bt
            target.process_keys += pk
            target.total_keys += tk
            target.result_rows += result_rows
        else:
            qts = list(map(float, map(_QT, rows)))
            positive = list(filter(_POSITIVE, qts))
            histogram.counts.update(map(math.ceil, map(mul, map(math.log, positive), repeat(INV_LOG_GAMMA))))
            histogram.zeros += len(qts) - len(positive)
            total = math.fsum(qts)
            target.count += len(rows)
            target.query_time_ns += round(total * 1e9) if total < 1e6 else sum(map(round, map(mul, qts, repeat(1e9))))
            top_value = max(qts)  # distinct values of at most 9 decimals are distinct floats: ties are exact
            top = round(top_value * 1e9)
            if qts.count(top_value) == 1:
                picks = [rows[qts.index(top_value)]]
            else:
                picks = [row for row, value in zip(rows, qts, strict=True) if value == top_value]
            target.process_time_ns += _ns_sum(map(_PT, rows))
            target.wait_time_ns += _ns_sum(map(_WT, rows))
            target.backoff_time_ns += _ns_sum(map(_BT, rows))
            target.process_keys += _int_sum(map(_PK, rows))
            target.total_keys += _int_sum(map(_TK, rows))
            target.result_rows += _int_sum(map(_ROWS, rows))
            mem = max(map(int, filter(None, map(_MEM, rows))), default=0)
        if top > target.max_query_time_ns:
            target.max_query_time_ns = top
        if top >= target.sample_query_time_ns:
            if len(picks) == 1:
                pick = picks[0]
                when = parse_slow_log_time(day_b + b"T" + pick[_TOD] + zone)
                text = self._sample_text(pick[_SQL_INDEX].decode("utf-8", "replace"))
            else:  # ties: earliest, then smallest text
                candidates = []
                for row in picks:
                    moment = parse_slow_log_time(day_b + b"T" + row[_TOD] + zone)
                    candidates.append((moment, self._sample_text(row[_SQL_INDEX].decode("utf-8", "replace"))))
                when, text = min(candidates)
            if _better_sample(top, when, text, target.sample_query_time_ns, target.sample_time, target.sample_sql):
                target.sample_sql, target.sample_query_time_ns, target.sample_time = text, top, when
        if mem > target.max_mem:
            target.max_mem = mem
        if first < target.first_seen:
            target.first_seen = first
        if last > target.last_seen:
            target.last_seen = last

    # ------------------------------------------------------------------ results
    def merge(self, other: DailyAggregates, *, consume: bool = False) -> None:
        """Add ``other``'s rows and counters (exact). ``consume`` lets this table take ``other``'s row
        objects instead of copies (``other`` must not be used afterwards)."""
        other.flush()
        self.flush()
        for key, stats in other.stats.items():
            mine = self.stats.get(key)
            if mine is None:
                self.stats[key] = stats if consume else stats.copy()
            else:
                mine.merge(stats)
        self.parse_stats.merge(other.parse_stats)
        self.skipped_internal += other.skipped_internal
        self.skipped_by_time += other.skipped_by_time

    def rows(self) -> list[tuple[DigestKey, DigestStats]]:
        """All rows, by day, then total query time (largest first), then key."""
        self.flush()
        return sorted(self.stats.items(), key=lambda kv: (kv[0].day, -kv[1].query_time_ns, kv[0]))

    def days(self) -> list[str]:
        self.flush()
        return sorted({key.day for key in self.stats})

    def for_day(self, day: str) -> dict[DigestKey, DigestStats]:
        self.flush()
        return {key: stats for key, stats in self.stats.items() if key.day == day}

    def rollup(self, keyfunc: Callable[[DigestKey], DigestKey]) -> dict[DigestKey, DigestStats]:
        """Rows merged under ``keyfunc(key)``, e.g. a week (``key._replace(day=monday)``) or a digest."""
        self.flush()
        out: dict[DigestKey, DigestStats] = {}
        for key, stats in self.stats.items():
            target = keyfunc(key)
            mine = out.get(target)
            if mine is None:
                out[target] = stats.copy()
            else:
                mine.merge(stats)
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-safe: ``{"rows": [{"key": {...}, "stats": {...}}, ...]}``."""
        return {
            "version": 1,
            "rows": [{"key": key._asdict(), "stats": stats.to_json()} for key, stats in self.rows()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], **options: Any) -> DailyAggregates:
        if not isinstance(data, Mapping) or data.get("version") != 1 or not isinstance(data.get("rows"), list):
            raise SlowLogFormatError("not serialized DailyAggregates (version 1)")
        table = cls(**options)
        for item in data["rows"]:
            try:
                key = DigestKey(**{k: str(v) for k, v in dict(item["key"]).items()})
            except (KeyError, TypeError) as exc:
                raise SlowLogFormatError(f"bad aggregate key: {exc!r}") from None
            stats = DigestStats.from_json(item["stats"])
            mine = table.stats.get(key)
            if mine is None:
                table.stats[key] = stats
            else:
                mine.merge(stats)
        return table

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DailyAggregates):
            return NotImplemented
        self.flush()
        other.flush()
        return self.stats == other.stats

    def __iter__(self) -> Iterator[tuple[DigestKey, DigestStats]]:
        return iter(self.rows())

    def __len__(self) -> int:
        self.flush()
        return len(self.stats)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def default_instance(path: str | os.PathLike[str]) -> str:
    """The instance a slow-log file belongs to when none is given: its directory's name."""
    return Path(path).resolve().parent.name


def aggregate_entries(entries: Iterable[SlowQueryEntry], instance: str = "", **options: Any) -> DailyAggregates:
    """:class:`DailyAggregates` of entries (see the class for ``options``)."""
    table = DailyAggregates(**options)
    table.add_entries(entries, instance)
    return table


def _aggregate_range(
    path: str, instance: str, byte_range: tuple[int, int] | None, options: dict[str, Any]
) -> DailyAggregates:
    table = DailyAggregates(**options)
    table.add_file(path, instance, byte_range=byte_range)
    return table


def aggregate_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    instance: str | Callable[[Path], str] | None = None,
    jobs: int = 1,
    on_file: Callable[[Path], None] | None = None,
    **options: Any,
) -> DailyAggregates:
    """The :class:`DailyAggregates` of slow-log files (see the class for ``options``).

    :param instance: the instance name for every file, a function of the path, or ``None`` for each file's
        directory name.
    :param jobs: with more than 1, big uncompressed files are cut into byte ranges parsed by this process
        and ``jobs - 1`` forked workers, and the tables are merged (exactly). Use it where processes may
        fork (not in a daemonic worker).
    :param on_file: called with each file once it is read to its end (e.g. to move a progress bar on).
    """
    files = [Path(p) for p in paths]

    def name_of(path: Path) -> str:
        if instance is None:
            return default_instance(path)
        return instance if isinstance(instance, str) else instance(path)

    table = DailyAggregates(**options)
    tasks: list[tuple[str, str, tuple[int, int] | None]] = []
    for path in files:
        try:
            ranges = split_byte_ranges(path, jobs) if jobs > 1 else [(0, 0)]
        except OSError:  # add_file counts it as a bad file
            ranges = [(0, 0)]
        if len(ranges) == 1:
            tasks.append((str(path), name_of(path), None))
        else:
            tasks.extend((str(path), name_of(path), r) for r in ranges)
    left = Counter(path_text for path_text, _, _ in tasks)  # parts of each file still to read

    def done(path_text: str) -> None:
        left[path_text] -= 1
        if on_file is not None and not left[path_text]:
            on_file(Path(path_text))

    if jobs <= 1 or len(tasks) == 1:
        for path_text, name, byte_range in tasks:
            table.add_file(path_text, name, byte_range=byte_range)
            done(path_text)
        table.flush()
        return table
    from concurrent.futures import ProcessPoolExecutor  # only when parallel: keeps the serial path lean

    first, rest = tasks[0], tasks[1:]
    with ProcessPoolExecutor(max_workers=min(jobs - 1, len(rest))) as pool:
        futures = [pool.submit(_aggregate_range, path_text, name, r, table._options()) for path_text, name, r in rest]
        table.add_file(first[0], first[1], byte_range=first[2])  # this process takes a share too
        table.flush()
        done(first[0])
        for (path_text, _, _), future in zip(rest, futures, strict=True):
            table.merge(future.result(), consume=True)
            done(path_text)
    return table


def aggregate_entries_of_files(paths: Iterable[str | os.PathLike[str]], **options: Any) -> DailyAggregates:
    """The entry-by-entry equivalent of :func:`aggregate_files` (slower; the tests' reference)."""
    table = DailyAggregates(**options)
    for path in paths:
        table.add_entries(iter_entries(path, stats=table.parse_stats), default_instance(path))
    return table
