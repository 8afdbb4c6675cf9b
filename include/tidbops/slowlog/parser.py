"""Streaming parser of TiDB slow-log files (``tidb-slow.log``, rotated siblings, ``.gz``).

Format (``/work/shared/reference/tidb-slow-query.md`` §1): an entry starts with a ``# Time:`` line,
continues with ``# Key: value`` header lines (some carry several pairs, e.g. the execution-details line
``# Cop_time: … Process_time: … Total_keys: …``) and ends with an optional ``use db;`` line and the SQL,
which TiDB terminates with ``;``.

Framing and field rules (both code paths below follow them; the tests compare the paths entry by entry):

* An entry runs from a line starting with ``# Time: `` to the next such line (or the end of the input).
* Its **body** is the trailing run of lines that do not start with ``# ``; everything before is the
  **header**. In the body, ``use <db>;`` lines in front of the last line are the database switches TiDB
  writes for pt-query-digest; the rest, joined by newlines, is the SQL. TiDB replaces newlines in SQL by
  spaces, so real SQL is one line, but multi-line SQL (older versions, edited files) is accepted.
* A ``Plan``/``Binary_plan`` value that opens ``tidb_decode_plan('`` without closing it continues on the
  following lines that do not start with ``# ``, up to the one ending with ``')`` (multi-line plans).
  Other stray lines inside the header are ignored.
* Header lines are split into ``Key: value`` pairs at single spaces, except that values wrapped in
  ``[…]``/``{…}`` may contain spaces (TiDB's ``splitByColon``) and lines that carry one known field
  (``User@Host``, ``Warnings``, ``Prev_stmt``, ``Plan``, ``DB`` …) keep their whole value. Unknown keys
  are kept in :attr:`RawSlowLogEntry.fields` and otherwise ignored. The first occurrence of a key wins.
* ``Time`` is RFC3339Nano (any number of fraction digits) or the old ``2006-01-02-15:04:05.999 -0700``.
* An entry is **complete** when its SQL ends with ``;``; anything else (a file cut mid-entry, a writer
  that died) is counted in :class:`ParseStats` as incomplete and not yielded. A complete entry whose
  ``Time``/``Query_time`` is missing or invalid, or whose numbers are not numbers, is counted as
  malformed (``strict=True`` raises :class:`SlowLogParseError` instead).
* ``Digest`` must be 64 lower-case hex characters, as TiDB writes it (``hex.EncodeToString`` of a
  SHA-256, ``pkg/parser/digester.go``), and so must ``Plan_digest`` unless it is absent or empty (TiDB
  omits it for statements without a plan: COMMIT, INSERT … VALUES). Digests go into guardrail SQL, so an
  entry with any other value is malformed: counted, never yielded.
* Numbers must be what TiDB writes: times (``Query_time``, ``Process_time``, ``Wait_time``,
  ``Backoff_time``) non-negative decimals of at most a year (:data:`MAX_DURATION`), counts (keys, rows,
  ``Mem_max``) 1 to 18 digits (:data:`MAX_INTEGER`), and ``Time`` a real date of the years 1000-2999 with
  an offset below 24 hours. A negative, infinite, NaN or implausible value makes the entry malformed (it
  is never added into a total, and no total can overflow).
* ``(len:N)`` at the end of the SQL is TiDB's truncation marker (``tidb_query_log_max_len``): the SQL is
  kept as written and :attr:`SlowQueryEntry.sql_truncated_from` is ``N``.
* Bytes that are not UTF-8 are decoded with U+FFFD replacement characters. A UTF-8 BOM at the start of a
  file and CRLF line ends (a copy through an editor; TiDB writes neither) are read as if absent (CRLF
  entries take the general parser).

How it is fast: an uncompressed file is mapped (``mmap``, no copy; parsed pages are dropped from the
process with ``MADV_DONTNEED``), a ``.gz`` file or a stream is read in large chunks. One compiled regular
expression (:data:`ENTRY_RE`), run with ``findall`` over a whole chunk (C code, no Python per line), cuts
the chunk into entries and, for entries in the line order TiDB v7.5–v8.x writes (lines added by newer
versions at the end of the header are tolerated), captures exactly the fields the aggregates need as
``bytes`` (:data:`ROW_FIELDS`). An entry with any other shape (unknown order, nesting the expression does
not cover, multi-line SQL, the old time format, a cut-off tail) is captured whole and handed to the
general line-by-line parser. Memory stays flat: one chunk at a time, and for streams the largest entry
(capped by ``max_entry_bytes``).

The optional C extension ``_scan`` (built by ``setup.py``; :data:`SCANNER` says which is in use) runs the
expression's canonical alternative as a small program of the same pieces (:data:`SCAN_PROGRAM`, built from
the same line specification :data:`_SHAPE` as the expression) with ``memchr``/``memcmp``, about six times
faster than the regex engine, and hands every entry it does not take back to the expression: its rows
are exactly ``ENTRY_RE.findall``'s (the tests compare both on edge cases and fuzzed logs, and run the
parser and aggregate tests with each). ``TIDBOPS_SLOWLOG_PURE_PYTHON=1`` or :func:`set_scanner` selects
the expression alone. The same program feeds the extension's group fold (``_scan.Groups``, see
``aggregate``), which aggregates canonical entries without a row object; :func:`iter_located_spans` hands
it the chunks. The expression is compiled on first use (compiling it costs more than a small log's whole
digest): with the C scanner, only an entry in no canonical shape needs it.
"""

from __future__ import annotations

import io
import itertools
import math
import mmap
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeGuard, cast

from tidbops.slowlog.errors import SlowLogFileError, SlowLogParseError

if TYPE_CHECKING:
    import gzip
    from decimal import Decimal

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ENTRY_RE",
    "MAX_DURATION",
    "MAX_INTEGER",
    "ROW_FIELDS",
    "SCANNER",
    "SCAN_PROGRAM",
    "SLOW_LOG_NAMES",
    "EntryError",
    "Locator",
    "ParseStats",
    "RawSlowLogEntry",
    "Row",
    "SlowQueryEntry",
    "count_value",
    "entry_from_row",
    "find_rows",
    "find_slow_log_files",
    "is_digest",
    "iter_entries",
    "iter_located_batches",
    "iter_located_spans",
    "iter_raw_entries",
    "iter_row_batches",
    "open_slow_log",
    "parse_entry",
    "parse_header_line",
    "parse_raw_entry",
    "parse_slow_log_time",
    "row_to_entry",
    "seconds_value",
    "set_scanner",
    "slow_log_name",
    "split_byte_ranges",
    "split_pairs",
    "split_user_host",
    "time_zone_of",
    "truncated_from",
    "typed_entry",
    "zone_offset",
]

DEFAULT_CHUNK_SIZE = 2 << 20
DEFAULT_MAX_ENTRY_BYTES = 64 << 20
MAX_PROBLEMS = 20  # problems noted (with their place) per ParseStats; all are counted
TIME_PREFIX = b"# Time: "
_BOUNDARY = b"\n# Time: "
_BOM = b"\xef\xbb\xbf"

# Lines that carry one field whose value may contain spaces (or never carries a second pair).
WHOLE_LINE_KEYS = frozenset(
    {
        "Txn_start_ts", "Keyspace_name", "Keyspace_ID", "User@Host", "User", "Conn_ID", "Session_alias",
        "Query_time", "Parse_time", "Compile_time", "Optimize_time", "Wait_TS", "DB", "Index_names",
        "Index_ids", "Is_internal", "Digest", "Stats", "Num_cop_tasks", "Mem_max", "Disk_max",
        "Mem_arbitration", "Prepared", "Plan_from_cache", "Plan_from_binding", "Has_more_results",
        "KV_total", "PD_total", "Backoff_total", "Write_sql_response_total", "Result_rows", "Warnings",
        "Succ", "IsExplicitTxn", "IsSyncStatsFailed", "IsWriteCacheTable", "Plan", "Plan_digest",
        "Binary_plan", "Resource_group", "Request_unit_read", "Request_unit_write", "Time_queued_by_rc",
        "Tidb_cpu_time", "Tikv_cpu_time", "Storage_from_kv", "Storage_from_mpp", "Prev_stmt",
    }
)  # fmt: skip
# Keys of the execution-details line (``ExecDetails.String()``); every item is optional.
EXEC_DETAIL_KEYS = (
    "Cop_time", "Process_time", "Wait_time", "Backoff_time", "LockKeys_time", "Request_count",
    "Prewrite_time", "Wait_prewrite_binlog_time", "Commit_time", "Get_commit_ts_time", "Get_latest_ts_time",
    "Commit_backoff_time", "Prewrite_Backoff_types", "Commit_Backoff_types", "Slowest_prewrite_rpc_detail",
    "Commit_primary_rpc_detail", "Resolve_lock_time", "Local_latch_wait_time", "Write_keys", "Write_size",
    "Prewrite_region", "Txn_retry", "Process_keys", "Total_keys", "Get_snapshot_time",
)  # fmt: skip
# Expressions of the general path, compiled on first use (``re`` keeps them): a digest of canonical entries
# needs none of them.
_KEY_RE = r"[A-Za-z_][A-Za-z0-9_@.\-]*\Z"
_LEN_MARK_RE = r"\(len:(\d+)\);\Z"
_DIGEST_RE = r"[0-9a-f]{64}"
_DECIMAL_RE = r"(?a)(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COUNT_RE = r"(?a)\d{1,18}"
MAX_DURATION = 366 * 86400.0
"""The longest time (seconds) an entry may hold in ``Query_time``, ``Process_time``, ``Wait_time`` or
``Backoff_time``: a year. No statement runs longer and no sum over its coprocessor tasks comes near it; a
value above it (or negative, or not finite) is not real and its entry is malformed. Sums of these stay exact
integers of nanoseconds, so no total can overflow."""
MAX_INTEGER = 10**18 - 1
"""The largest count (keys, rows, bytes) an entry may hold: 18 digits (an exabyte; no statement comes near)."""
_OLD_TIME_RE = r"(?a)(\d{4}-\d\d-\d\d)-(\d\d:\d\d:\d\d(?:\.\d+)?) ([+-])(\d\d)(\d\d)\Z"
_PLAN_OPENERS = (b"# Plan: tidb_decode_plan('", b"# Binary_plan: tidb_decode_binary_plan('")


@dataclass(slots=True)
class SlowQueryEntry:
    """One complete slow-log entry, reduced to what the aggregates need.

    ``time`` is the end of the statement (TiDB writes it when the statement finishes) in seconds since
    the epoch; ``day`` is its date as written in the log (the TiDB server's zone) and ``utc_offset`` that
    zone in seconds east of UTC. Durations are seconds; missing numeric fields are 0.
    """

    time: float
    day: str
    utc_offset: int
    query_time: float
    digest: str
    plan_digest: str
    db: str
    user: str
    host: str
    sql: str
    process_time: float = 0.0
    wait_time: float = 0.0
    backoff_time: float = 0.0
    process_keys: int = 0
    total_keys: int = 0
    result_rows: int = 0
    mem_max: int = 0
    is_internal: bool = False
    succ: bool = True
    use_db: str = ""
    sql_truncated_from: int | None = None

    @property
    def start_time(self) -> float:
        """When the statement started: ``Time`` − ``Query_time``."""
        return self.time - self.query_time


@dataclass(slots=True)
class RawSlowLogEntry:
    """Every field of one entry, as text (the full-fidelity view; see :func:`iter_raw_entries`)."""

    time: str
    fields: dict[str, str]
    sql: str
    use_db: str = ""
    complete: bool = True


@dataclass(slots=True)
class ParseStats:
    """Counters for one parse; pass one instance to several calls to add them up."""

    files: int = 0
    bytes_read: int = 0
    entries: int = 0  # complete, well-formed entries
    fast_path: int = 0  # of which captured by the compiled expression
    incomplete: int = 0  # no terminated SQL: a cut-off write, e.g. the tail of a file being written
    malformed: int = 0  # complete but with a value TiDB never writes (see the module docstring), or too big
    skipped_bytes: int = 0  # bytes before the first ``# Time:`` line of a file or range
    bad_files: int = 0  # files that could not be read to their end (SlowLogFileError)
    discarded: int = 0  # entries read from corrupt files and then left out (DailyAggregates.add_file)
    problems: list[str] = field(default_factory=list)  # the first few problems: ``file[:line]: what``

    def note(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def merge(self, other: ParseStats) -> None:
        """Add ``other``'s counters to these."""
        self.files += other.files
        self.bytes_read += other.bytes_read
        self.entries += other.entries
        self.fast_path += other.fast_path
        self.incomplete += other.incomplete
        self.malformed += other.malformed
        self.skipped_bytes += other.skipped_bytes
        self.bad_files += other.bad_files
        self.discarded += other.discarded
        for problem in other.problems:
            self.note(problem)

    def dropped(self) -> ParseStats:
        """These counters for a file whose entries are all left out: its entries count as discarded."""
        return ParseStats(
            files=self.files,
            bytes_read=self.bytes_read,
            skipped_bytes=self.skipped_bytes,
            bad_files=self.bad_files,
            discarded=self.discarded + self.entries,
        )

    def bad_file(self, error: SlowLogFileError) -> None:
        """Count a file that could not be read to its end."""
        self.bad_files += 1
        self.note(str(error))


class EntryError(ValueError):
    """A complete entry whose values cannot be used (missing Query_time, invalid number or time)."""


# --------------------------------------------------------------------------------------------- values
_day_cache: dict[bytes, float] = {}
_zone_cache: dict[bytes, int] = {}


def _minute_epoch(prefix: bytes) -> float:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM`` read as UTC (exact: an integer)."""
    day = _day_cache.get(prefix[:10])
    if day is None:
        if prefix[:1] not in (b"1", b"2"):  # years 1000-2999: a datetime in every zone
            raise ValueError(f"not a slow-log time: {prefix!r}")
        try:
            parsed = datetime.strptime(prefix[:10].decode("ascii"), "%Y-%m-%d")
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"not a slow-log time: {prefix!r}") from None
        if len(_day_cache) > 4096:
            _day_cache.clear()
        day = _day_cache[prefix[:10]] = parsed.replace(tzinfo=UTC).timestamp()
    hh, mm = prefix[11:13], prefix[14:16]
    if len(prefix) != 16 or prefix[13] != 58 or not (hh + mm).isdigit() or hh > b"23" or mm > b"59":
        raise ValueError(f"not a slow-log time: {prefix!r}")
    return day + int(hh) * 3600 + int(mm) * 60


def zone_offset(zone: bytes) -> int:
    """``Z`` / ``+08:00`` / ``-05:30`` -> seconds east of UTC."""
    cached = _zone_cache.get(zone)
    if cached is not None:
        return cached
    if zone == b"Z":
        value = 0
    elif (
        len(zone) == 6
        and zone[0] in b"+-"
        and zone[3] == 58
        and (zone[1:3] + zone[4:6]).isdigit()
        and zone[1:3] <= b"23"
        and zone[4:6] <= b"59"
    ):
        seconds = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        value = seconds if zone[0] == 43 else -seconds
    else:
        raise ValueError(f"not a UTC offset: {zone!r}")
    _zone_cache[zone] = value
    return value


def parse_slow_log_time(value: bytes | str) -> float:
    """Seconds since the epoch of a ``# Time:`` value.

    Accepts TiDB's ``time.RFC3339Nano`` (any number of fraction digits, ``Z`` or ``±hh:mm``) and the old
    ``2006-01-02-15:04:05.999999999 -0700`` format.

    >>> parse_slow_log_time("2024-05-20T02:00:01.5+08:00")
    1716141601.5
    >>> parse_slow_log_time("2019-03-18-12:10:19.513961 +0800")
    1552882219.513961
    """
    t = value.encode() if isinstance(value, str) else value
    if len(t) < 20 or t[10] != 84:  # 'T'
        return _parse_old_time(t)[0]
    base = _minute_epoch(t[:16])
    if t[-1] == 90:  # 'Z'
        offset = 0
        seconds = t[17:-1]
    else:
        offset = zone_offset(t[-6:])
        seconds = t[17:-6]
    if t[16] != 58 or not seconds[:2].isdigit() or not seconds.replace(b".", b"", 1).isdigit():
        raise ValueError(f"not a slow-log time: {value!r}")
    secs = float(seconds)
    if secs >= 61.0:
        raise ValueError(f"not a slow-log time: {value!r}")
    return base + secs - offset


def time_zone_of(value: str) -> tuple[str, int]:
    """(date as written, offset in seconds east of UTC) of a ``# Time:`` value already validated."""
    if len(value) >= 20 and value[10] == "T":
        return value[:10], zone_offset(b"Z" if value.endswith("Z") else value[-6:].encode())
    m = re.match(_OLD_TIME_RE, value)
    if not m:
        raise ValueError(f"not a slow-log time: {value!r}")
    return m.group(1), _old_offset(m)


def _old_offset(m: re.Match[str]) -> int:
    """Seconds east of UTC of the old format's ``-0700`` (hours up to 23, minutes up to 59)."""
    hh, mm = int(m.group(4)), int(m.group(5))
    if hh > 23 or mm > 59:
        raise ValueError(f"not a UTC offset: {m.group(3)}{m.group(4)}{m.group(5)}")
    return (hh * 3600 + mm * 60) * (1 if m.group(3) == "+" else -1)


def _parse_old_time(t: bytes) -> tuple[float, int]:
    text = t.decode("ascii", "replace")
    m = re.match(_OLD_TIME_RE, text)
    if not m:
        raise ValueError(f"not a slow-log time: {text!r}")
    date_part, clock, _sign, _hh, _mm = m.groups()
    whole, _, frac = clock.partition(".")
    if date_part[0] not in "12":
        raise ValueError(f"not a slow-log time: {text!r}")
    naive = datetime.strptime(f"{date_part} {whole}", "%Y-%m-%d %H:%M:%S")
    offset = timedelta(seconds=_old_offset(m))
    aware = naive.replace(tzinfo=timezone(offset))
    return aware.timestamp() + (float(f"0.{frac}") if frac else 0.0), int(offset.total_seconds())


def split_user_host(value: str) -> tuple[str, str]:
    """``app[app] @ 10.0.1.15 [10.0.1.15]`` (or the v3.0 ``root@127.0.0.1``) -> ``("app", "10.0.1.15")``."""
    if " @ " in value:
        user_part, _, host_part = value.partition(" @ ")
        return user_part.split("[", 1)[0], host_part.split(" [", 1)[0].strip()
    user, sep, host = value.rpartition("@")
    return (user, host) if sep else (value, "")


def split_pairs(text: str) -> list[tuple[str, str]]:
    """``Key: value`` pairs of one header line without its ``# ``.

    Splits at spaces outside ``[…]``/``{…}``; a token ending in ``:`` starts a new pair when the current
    value is not empty, any other token is appended to the current value (so stray text is never lost).

    >>> split_pairs("Prewrite_time: 0.6 Prewrite_Backoff_types: [tikvRPC regionMiss] Write_keys: 2")
    [('Prewrite_time', '0.6'), ('Prewrite_Backoff_types', '[tikvRPC regionMiss]'), ('Write_keys', '2')]
    """
    if "[" not in text and "{" not in text:
        tokens = text.split(" ")
    else:
        tokens = []
        depth = 0
        start = 0
        for i, ch in enumerate(text):
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                depth = max(0, depth - 1)
            elif ch == " " and depth == 0:
                tokens.append(text[start:i])
                start = i + 1
        tokens.append(text[start:])
    pairs: list[tuple[str, str]] = []
    key: str | None = None
    value: list[str] = []
    for token in tokens:
        if len(token) > 1 and token.endswith(":") and (key is None or value):
            if key is not None:
                pairs.append((key, " ".join(value)))
            key, value = token[:-1], []
        elif key is not None:
            value.append(token)
    if key is not None:
        pairs.append((key, " ".join(value)))
    return pairs


def parse_header_line(text: str) -> list[tuple[str, str]]:
    """The pairs of one header line (without ``# ``); whole-line keys keep their entire value."""
    key, sep, rest = text.partition(": ")
    if not sep:
        if text.endswith(":") and re.match(_KEY_RE, text[:-1]):
            return [(text[:-1], "")]
        return []
    if key in WHOLE_LINE_KEYS:
        return [(key, rest)]
    return split_pairs(text)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------- general path
def parse_raw_entry(block: bytes | str) -> RawSlowLogEntry | None:
    """Every field of one entry (text starting with ``# Time: ``); ``None`` when it has no ``# Time:``."""
    data = block.encode("utf-8", "surrogateescape") if isinstance(block, str) else block
    if not data.startswith(TIME_PREFIX):
        return None
    return _parse_general(data[len(TIME_PREFIX) :])


_TYPED_KEYS = frozenset(
    {"Query_time", "Digest", "Plan_digest", "DB", "User@Host", "User", "Is_internal", "Succ", "Mem_max", "Result_rows"}
)
# Whole-line keys a typed entry does not use: with ``typed_only`` their lines are not even decoded.
_UNTYPED_PREFIXES = tuple(f"# {k}: ".encode() for k in sorted(WHOLE_LINE_KEYS - _TYPED_KEYS))


def _parse_general(e: bytes, typed_only: bool = False) -> RawSlowLogEntry:
    """The line-by-line parser for one entry (``e`` is the text after ``# Time: ``).

    ``typed_only`` skips the single-field lines :func:`typed_entry` does not read (plans, stats …); the
    fields it does read come out the same.
    """
    lines = e.split(b"\n")
    if b"\r" in e:  # CRLF line ends (a copy through an editor): TiDB writes no CR (it turns them into spaces)
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    while len(lines) > 1 and lines[-1] == b"":
        lines.pop()
    time_text = _decode(lines[0]).strip()
    k = len(lines)
    while k > 1 and not lines[k - 1].startswith(b"# "):
        k -= 1
    header, body = lines[1:k], lines[k:]
    # A multi-line plan as the last header line: its continuation ends with "')".
    if header and header[-1].startswith(_PLAN_OPENERS) and not header[-1].endswith(b"')"):
        for j, line in enumerate(body):
            if line.endswith(b"')"):
                header, body = header + body[: j + 1], body[j + 1 :]
                break
    fields: dict[str, str] = {}
    open_plan: str | None = None  # the key of a multi-line plan being read
    for raw in header:
        if raw.startswith(b"# "):
            if typed_only and raw.startswith(_UNTYPED_PREFIXES):
                open_plan = None
                continue
            pairs = parse_header_line(_decode(raw[2:]))
            open_plan = None
            for key, value in pairs:
                if key not in fields:
                    fields[key] = value
                    if raw.startswith(_PLAN_OPENERS) and not raw.endswith(b"')"):
                        open_plan = key
        elif open_plan is not None:  # continuation of a multi-line plan; other stray lines are ignored
            fields[open_plan] += "\n" + _decode(raw)
            if raw.endswith(b"')"):
                open_plan = None
    use_db = ""
    while len(body) > 1 and body[0].startswith(b"use ") and body[0].endswith(b";"):
        use_db = _decode(body[0][4:-1]).strip()
        body = body[1:]
    sql = _decode(b"\n".join(body))
    return RawSlowLogEntry(
        time=time_text, fields=fields, sql=sql, use_db=use_db, complete=bool(body) and sql.endswith(";")
    )


def _is_decimal(value: object) -> TypeGuard[Decimal]:
    """Whether ``value`` is a ``decimal.Decimal`` (what a database driver returns for DECIMAL columns); the
    module is imported only when a value is none of the usual types."""
    from decimal import Decimal

    return isinstance(value, Decimal)


def seconds_value(value: object) -> float:
    """A duration in seconds as TiDB writes it, or ``ValueError``: a plain non-negative decimal (an exponent
    is tolerated) of at most :data:`MAX_DURATION` seconds; a number object must be finite and in range."""
    if isinstance(value, bool) or not (isinstance(value, str | int | float) or _is_decimal(value)):
        raise ValueError(f"not a number of seconds: {value!r}")
    if isinstance(value, str) and not re.fullmatch(_DECIMAL_RE, value):
        raise ValueError(f"not a number of seconds: {value[:40]!r}")
    number = float(value)
    if not 0.0 <= number <= MAX_DURATION:  # also NaN
        raise ValueError(f"not a number of seconds from 0 to {MAX_DURATION:.0f} (a year): {str(value)[:40]!r}")
    return number


def count_value(value: object) -> int:
    """A count (keys, rows, bytes) as TiDB writes it, or ``ValueError``: 1 to 18 decimal digits (an integral
    number object from 0 to :data:`MAX_INTEGER`)."""
    if isinstance(value, str):
        if not re.fullmatch(_COUNT_RE, value):
            raise ValueError(f"not a count from 0 to {MAX_INTEGER}: {value[:40]!r}")
        return int(value)
    if isinstance(value, bool) or not (isinstance(value, int | float) or _is_decimal(value)):
        raise ValueError(f"not a count: {value!r}")
    if not (math.isfinite(value) and value == int(value) and 0 <= value <= MAX_INTEGER):
        raise ValueError(f"not a count from 0 to {MAX_INTEGER}: {value!r}")
    return int(value)


def _float(fields: dict[str, str], key: str) -> float:
    value = fields.get(key)
    if value is None:
        return 0.0
    try:
        return seconds_value(value)
    except ValueError as exc:
        raise EntryError(f"{key}: {exc}") from None


def _int(fields: dict[str, str], key: str) -> int:
    value = fields.get(key)
    if value is None:
        return 0
    try:
        return count_value(value)
    except ValueError as exc:
        raise EntryError(f"{key}: {exc}") from None


def truncated_from(sql: str) -> int | None:
    """``N`` when the SQL ends with TiDB's truncation marker ``(len:N);``."""
    if not sql.endswith(");"):
        return None
    m = re.search(_LEN_MARK_RE, sql[-40:])
    return int(m.group(1)) if m else None


def is_digest(value: object) -> bool:
    """Whether ``value`` is a digest as TiDB writes it: 64 lower-case hex characters.

    Both ``Digest`` (the normalized SQL's) and ``Plan_digest`` are ``hex.EncodeToString`` of a SHA-256
    (``pkg/parser/digester.go``). Only such values ever reach SQL text (guardrail statements).
    """
    return isinstance(value, str) and re.fullmatch(_DIGEST_RE, value) is not None


def _digests(f: dict[str, str]) -> tuple[str, str]:
    """``Digest`` (required) and ``Plan_digest`` (absent or empty: the statement has no plan; TiDB omits the
    line for COMMIT, INSERT … VALUES …) of an entry, or :class:`EntryError`."""
    digest = f.get("Digest")
    if digest is None:
        raise EntryError("no Digest")
    if not is_digest(digest):
        raise EntryError(f"Digest is not 64 lower-case hex characters: {digest[:80]!r}")
    plan = f.get("Plan_digest", "")
    if plan and not is_digest(plan):
        raise EntryError(f"Plan_digest is not 64 lower-case hex characters: {plan[:80]!r}")
    return digest, plan


def typed_entry(raw: RawSlowLogEntry) -> SlowQueryEntry:
    """The typed entry of a complete raw entry; raises :class:`EntryError` for missing/invalid values."""
    f = raw.fields
    try:
        when = parse_slow_log_time(raw.time)
        day, offset = time_zone_of(raw.time)
    except ValueError as exc:
        raise EntryError(str(exc)) from None
    if "Query_time" not in f:
        raise EntryError("no Query_time")
    query_time = _float(f, "Query_time")
    digest, plan_digest = _digests(f)
    user_host = f.get("User@Host")
    user, host = split_user_host(user_host if user_host is not None else f.get("User", ""))
    return SlowQueryEntry(
        when,
        day,
        offset,
        query_time,
        digest,
        plan_digest,
        f.get("DB", ""),
        user,
        host,
        raw.sql,
        _float(f, "Process_time"),
        _float(f, "Wait_time"),
        _float(f, "Backoff_time"),
        _int(f, "Process_keys"),
        _int(f, "Total_keys"),
        _int(f, "Result_rows"),
        _int(f, "Mem_max"),
        f.get("Is_internal") == "true",
        f.get("Succ") != "false",
        raw.use_db,
        truncated_from(raw.sql),
    )


# ---------------------------------------------------------------------------- the compiled expression
_NEEDED_KEYS = (
    "Query_time", "Digest", "DB", "Is_internal", "Mem_max", "Result_rows", "Succ", "Plan_digest", "User@Host",
    "User", *EXEC_DETAIL_KEYS, "Rocksdb_", "Time",
)  # fmt: skip


def _skip_prefix(key: str) -> str:
    """The shortest start of ``key: `` (3+ characters) that starts no needed key's line.

    A line we only skip is matched by that prefix alone (the regex engine compares one character per
    step, so short literals are cheaper); a needed line can never be taken for it.
    """
    full = key + ": "
    for length in range(3, len(full)):
        if full[:length] not in _NEEDED_STARTS:
            return full[:length]
    return full


_NEEDED_STARTS = frozenset(f"{needed}: "[:length] for needed in _NEEDED_KEYS for length in range(len(needed) + 3))


# Value shapes of captured fields and execution-details items; their codes (0, 1, … in this order) are the
# ``K_*`` constants of ``_scan.c``.
_VALUES: dict[str, bytes] = {
    "any": rb"[^\n]*",
    "nonempty": rb"[^\n]+",
    "int": rb"\d{1,18}",  # keys, rows, bytes: below 10^18 (MAX_INTEGER)
    "num": rb"\d{1,6}(?:\.\d{1,9})?",  # FormatFloat(seconds, 'f', -1) of a duration below 11 days
    "token": rb"[^ \n]+",
    "list": rb"\[[^\]\n]*\]",
    "object": rb"\{(?:[^{}\n]|\{[^{}\n]*\})*\}",
    "hex64": rb"[0-9a-f]{64}",  # a digest: hex.EncodeToString of a SHA-256 (pkg/parser/digester.go)
}
_KIND_CODES = {name: code for code, name in enumerate(_VALUES)}
_NUM = _VALUES["num"]


def _line(key: str, group: str | None = None, value: bytes = _VALUES["any"]) -> bytes:
    """An optional header line ``# key: value`` at its canonical place."""
    if group is None:
        return rb"(?:# " + re.escape(_skip_prefix(key)).encode() + rb"[^\n]*\n)?+"
    return rb"(?:# " + re.escape(key).encode() + rb": (?P<" + group.encode() + rb">" + value + rb")\n)?+"


_TXN_KEYS = (
    "Prewrite_time", "Wait_prewrite_binlog_time", "Commit_time", "Get_commit_ts_time", "Get_latest_ts_time",
    "Commit_backoff_time", "Prewrite_Backoff_types", "Commit_Backoff_types", "Slowest_prewrite_rpc_detail",
    "Commit_primary_rpc_detail", "Resolve_lock_time", "Local_latch_wait_time", "Write_keys", "Write_size",
    "Prewrite_region", "Txn_retry",
)  # fmt: skip


def _txn_kind(key: str) -> str:
    return "list" if key.endswith("_types") else "object" if key.endswith("_detail") else "token"


# The items of the execution-details line in the order of ``ExecDetails.String()`` (Process_keys before
# Total_keys; the older order of the docs example goes to the general parser): (key, value, group).
_EXEC_HEAD = (
    ("Cop_time", "num", None), ("Process_time", "num", "process_time"), ("Wait_time", "num", "wait_time"),
    ("Backoff_time", "num", "backoff_time"), ("LockKeys_time", "num", None), ("Request_count", "int", None),
)  # fmt: skip
_EXEC_TXN = tuple((k, _txn_kind(k), None) for k in _TXN_KEYS)
_EXEC_TAIL = (
    ("Process_keys", "int", "process_keys"),
    ("Total_keys", "int", "total_keys"),
    ("Get_snapshot_time", "num", None),
)


def _item(key: str, kind: str, group: str | None) -> bytes:
    value = _VALUES[kind]
    capture = rb"(?P<" + group.encode() + rb">" + value + rb")" if group else value
    return rb"(?:" + key.encode() + rb": " + capture + rb" ?)?+"


_EXEC_LINE = (
    rb"(?:# (?=(?:"
    + rb"|".join(k.encode() for k in EXEC_DETAIL_KEYS)
    + rb"|Rocksdb_[a-z_]+): )"
    + b"".join(_item(*item) for item in _EXEC_HEAD)
    + rb"(?:(?="
    + rb"|".join(k.encode() for k in _TXN_KEYS)
    + rb")"
    + b"".join(_item(*item) for item in _EXEC_TXN)
    + rb")?+"
    + b"".join(_item(*item) for item in _EXEC_TAIL)
    + rb"(?:Rocksdb_[a-z_]+: [^ \n]+ ?)*+"
    + rb"(?<! )\n)?+"
)
_NEEDED = tuple((k + ("" if k.endswith("_") else ": ")).encode() for k in _NEEDED_KEYS)  # the line starts
_OTHER_LINES = (
    rb"(?:# (?!"
    + rb"|".join(re.escape(k).encode() + (b"" if k.endswith("_") else b": ") for k in _NEEDED_KEYS)
    + rb")[^\n]*\n)*+"
)


class _Spec(NamedTuple):
    """One piece of the canonical entry shape, between the ``# Time:`` line and the SQL.

    ``op``: ``skip`` (an optional line, matched by its :func:`_skip_prefix`), ``skip_many`` (any number
    of lines starting with ``key``), ``field`` / ``required`` (a line captured into ``group``, its value
    of shape ``value``), ``user_host``, ``exec`` (the execution-details line), ``closed`` (a one-line
    ``Plan``/``Binary_plan`` ending with ``')``) and ``other`` (the lines newer versions add at the end).
    """

    op: str
    key: str = ""
    group: str = ""
    value: str = "any"


# Every line TiDB v7.5–v8.x (and master) writes, in its order; lines added later at the end of the
# header are skipped unless they carry a needed field (then the general parser takes the entry).
# Dates, hours and offsets are checked by the expression itself (_DATE, _TIME_OF_DAY, _ZONE).
_SHAPE = (
    _Spec("skip", "Txn_start_ts"), _Spec("skip", "Keyspace_name"), _Spec("skip", "Keyspace_ID"),
    _Spec("user_host", "User@Host"), _Spec("skip", "Conn_ID"), _Spec("skip", "Session_alias"),
    _Spec("skip", "Exec_retry_time"), _Spec("required", "Query_time", "query_time", "num"),
    _Spec("skip", "Parse_time"), _Spec("skip", "Compile_time"), _Spec("skip", "Rewrite_time"),
    _Spec("skip", "Optimize_time"), _Spec("skip", "Wait_TS"), _Spec("exec"),
    _Spec("field", "DB", "db", "nonempty"), _Spec("skip", "Index_names"),
    _Spec("field", "Is_internal", "is_internal"), _Spec("required", "Digest", "digest", "hex64"),
    _Spec("skip", "Stats"), _Spec("skip", "Num_cop_tasks"), _Spec("skip", "Cop_proc_avg"),
    _Spec("skip", "Cop_wait_avg"),
    _Spec("skip_many", "Cop_backoff_"), _Spec("field", "Mem_max", "mem_max", "int"), _Spec("skip", "Disk_max"),
    _Spec("skip", "Mem_arbitration"), _Spec("skip", "Prepared"), _Spec("skip", "Plan_from_cache"),
    _Spec("skip", "Plan_from_binding"), _Spec("skip", "Has_more_results"), _Spec("skip", "KV_total"),
    _Spec("skip", "PD_total"), _Spec("skip", "Backoff_total"), _Spec("skip_many", "Unpacked_bytes_"),
    _Spec("skip", "Write_sql_response_total"), _Spec("field", "Result_rows", "result_rows", "int"),
    _Spec("skip", "Warnings"), _Spec("field", "Succ", "succ"), _Spec("skip", "IsExplicitTxn"),
    _Spec("skip", "IsSyncStatsFailed"), _Spec("skip", "IsWriteCacheTable"), _Spec("closed", "Plan"),
    _Spec("field", "Plan_digest", "plan_digest", "hex64"), _Spec("closed", "Binary_plan"),
    _Spec("skip", "Resource_group"), _Spec("skip", "Request_unit_read"), _Spec("skip", "Request_unit_write"),
    _Spec("skip", "Time_queued_by_rc"), _Spec("skip", "Tidb_cpu_time"), _Spec("skip", "Tikv_cpu_time"),
    _Spec("skip", "Storage_from_kv"), _Spec("skip", "Storage_from_mpp"), _Spec("skip", "Prev_stmt"),
    _Spec("other"),
)  # fmt: skip


def _spec_pattern(spec: _Spec) -> bytes:
    key = re.escape(spec.key).encode()
    if spec.op == "skip":
        return _line(spec.key)
    if spec.op == "skip_many":
        return rb"(?:# " + key + rb"[^\n]*\n)*+"
    if spec.op == "field":
        return _line(spec.key, spec.group, _VALUES[spec.value])
    if spec.op == "required":
        return rb"# " + key + rb": (?P<" + spec.group.encode() + rb">" + _VALUES[spec.value] + rb")\n"
    if spec.op == "user_host":
        return rb"(?:# " + key + rb": (?P<user>[^\[\] \n]*)\[[^\]\n]*\] @ (?P<host>[^\[\] \n]*) \[[^\]\n]*\]\n)?+"
    if spec.op == "exec":
        return _EXEC_LINE
    if spec.op == "closed":
        return rb"(?:# " + key + rb": [^\n]*'\)\n)?+"
    if spec.op == "other":
        return _OTHER_LINES
    raise ValueError(f"unknown shape piece {spec}")


# A real calendar date of the years 1000-2999 (Gregorian leap years), so that every canonical row has a
# valid time and every time, in any zone, is a datetime (years 1-9999).
_DATE = (
    rb"[12]\d{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    rb"|02-(?:0[1-9]|1\d|2[0-8]))|(?:[12]\d(?:0[48]|[2468][048]|[13579][26])|(?:1[26]|2[048])00)-02-29"
)
_TIME_OF_DAY = rb"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,9})?"  # Go never writes a leap second
_ZONE = rb"Z|[+-](?:[01]\d|2[0-3]):[0-5]\d"
_CANONICAL = (
    rb"# Time: (?P<date>" + _DATE + rb")T(?P<tod>" + _TIME_OF_DAY + rb")(?P<zone>" + _ZONE + rb")\n"
    + b"".join(map(_spec_pattern, _SHAPE))
    + rb"(?:use (?P<use_db>[^\n]*);\n)?(?P<sql>(?!# )[^\n]*;)(?:\n|\Z)(?=# Time: |\Z)"
)  # fmt: skip
# Anything else, up to the next entry: the general parser decides.
_OTHER_SHAPE = rb"# Time: (?P<other>[^\n]*(?:\n(?!# Time: )[^\n]*)*\n?)"
_ENTRY_PATTERN = rb"(?:" + _CANONICAL + rb"|" + _OTHER_SHAPE + rb")"
ENTRY_RE: re.Pattern[bytes]  # compiled on first use (module __getattr__ below)
_entry_re_compiled: re.Pattern[bytes] | None = None


def _entry_re() -> re.Pattern[bytes]:
    """:data:`ENTRY_RE`, compiled when first needed: compiling it takes longer than a small log's whole digest,
    and the C scanner needs it only for entries in no canonical shape."""
    global _entry_re_compiled
    if _entry_re_compiled is None:
        _entry_re_compiled = re.compile(_ENTRY_PATTERN)
    return _entry_re_compiled


def __getattr__(name: str) -> Any:
    if name == "ENTRY_RE":
        return _entry_re()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Row = tuple[bytes, ...]
"""One ``findall`` row of :data:`ENTRY_RE`: the captured fields as bytes (``b""`` when absent)."""
Buffer = bytes | mmap.mmap
# Every group of the expression is named (the others are (?:…), (?=…), (?!…), (?<!…)), so the names in
# order of appearance are its groups in order; the tests check them against the compiled expression.
ROW_FIELDS: dict[str, int] = {
    name.decode(): index for index, name in enumerate(re.findall(rb"\(\?P<(\w+)>", _ENTRY_PATTERN))
}
"""Field name -> index in a :data:`Row`. ``date`` is empty for rows the general parser must handle, whose
whole text (after ``# Time: ``) is in ``other``."""
_F = ROW_FIELDS


# ------------------------------------------------------------------------------------ the C scanner
# ``_scan.Scanner`` (a C extension built by setup.py, optional) runs the canonical alternative of
# ENTRY_RE as a program of the same pieces (:data:`_SHAPE`) with memchr/memcmp and hands every other
# entry back to the expression (:func:`_regex_row`): its rows are exactly ``ENTRY_RE.findall``'s.
_OPS = {
    "time": 0, "skip": 1, "skip_many": 2, "field": 3, "required": 4, "user_host": 5, "exec": 6, "closed": 7,
    "other": 8, "tail": 9,
}  # fmt: skip


def _scan_step(spec: _Spec) -> tuple[object, ...]:
    op = _OPS[spec.op]
    if spec.op == "skip":
        return (op, b"# " + _skip_prefix(spec.key).encode())
    if spec.op == "skip_many":
        return (op, b"# " + spec.key.encode())
    if spec.op in ("field", "required"):
        return (op, f"# {spec.key}: ".encode(), _KIND_CODES[spec.value], _F[spec.group])
    if spec.op == "user_host":
        return (op, f"# {spec.key}: ".encode(), _F["user"], _F["host"])
    if spec.op == "exec":
        items = tuple(
            (f"{key}: ".encode(), _KIND_CODES[kind], -1 if group is None else _F[group])
            for key, kind, group in (*_EXEC_HEAD, *_EXEC_TXN, *_EXEC_TAIL)
        )
        return (op, tuple(f"{k}: ".encode() for k in EXEC_DETAIL_KEYS), items, b"Rocksdb_")
    if spec.op == "closed":
        return (op, f"# {spec.key}: ".encode(), b"')")
    if spec.op == "other":
        return (op, _NEEDED)
    raise ValueError(f"unknown shape piece {spec}")


SCAN_PROGRAM: tuple[tuple[object, ...], ...] = (
    (_OPS["time"], _F["date"], _F["tod"], _F["zone"]),
    *map(_scan_step, _SHAPE),
    (_OPS["tail"], _F["use_db"], _F["sql"]),
)
"""The canonical shape as a program for the C scanner (the tests check it against :data:`ENTRY_RE`)."""


def _regex_row(buf: Buffer, pos: int, end: int) -> tuple[Row, int]:
    """The expression's row at ``pos`` (which starts with ``# Time: ``) and where its match ends."""
    m = _entry_re().match(buf, pos, end)
    if m is None:  # impossible: the second alternative matches at every "# Time: "
        raise ValueError(f"no slow-log entry at offset {pos}")
    return cast(Row, m.groups(b"")), m.end()


try:
    from tidbops.slowlog import _scan
except ImportError:  # not built (no compiler): the expression alone, same rows
    _scan = None  # type: ignore[assignment]

# Fields whose values repeat from entry to entry: the scanner hands out one bytes object per value.
_SHARED_FIELDS = ("date", "zone", "user", "host", "db", "is_internal", "digest", "plan_digest", "succ", "use_db")


_c_scanner: _scan.Scanner | None = None


def _c_findall() -> Callable[[Buffer, int, int], list[Row]]:
    global _c_scanner
    if _scan is None:
        raise RuntimeError("the C scanner tidbops.slowlog._scan is not built")
    if _c_scanner is None:
        shared = tuple(_F[name] for name in _SHARED_FIELDS)
        _c_scanner = _scan.Scanner(SCAN_PROGRAM, len(ROW_FIELDS), _regex_row, shared)
    return _c_scanner.findall


def _regex_findall(buf: Buffer, start: int = 0, end: int = sys.maxsize) -> list[Row]:
    return cast(list[Row], _entry_re().findall(buf, start, end))


def c_scanner() -> _scan.Scanner | None:
    """The C scanner when it is the one in use (:data:`SCANNER` ``"c"``), else ``None``."""
    return _c_scanner if SCANNER == "c" else None


_findall: Callable[[Buffer, int, int], list[Row]]
if _scan is not None and not os.environ.get("TIDBOPS_SLOWLOG_PURE_PYTHON"):
    _findall = _c_findall()
    SCANNER = "c"
else:
    _findall = _regex_findall
    SCANNER = "regex"


def find_rows(buf: Buffer, start: int = 0, end: int = sys.maxsize) -> list[Row]:
    """``ENTRY_RE.findall(buf, start, end)``, by the C scanner when it is built (:data:`SCANNER`)."""
    return _findall(buf, start, end)


def set_scanner(kind: str) -> str:
    """Use ``"c"`` or ``"regex"`` for :func:`find_rows` (for tests and benchmarks); returns the previous.

    ``TIDBOPS_SLOWLOG_PURE_PYTHON=1`` in the environment starts with ``"regex"``.
    """
    global _findall, SCANNER
    previous = SCANNER
    if kind == "c":
        _findall = _c_findall()
    elif kind == "regex":
        _findall = _regex_findall
    else:
        raise ValueError(f"scanner is 'c' or 'regex', not {kind!r}")
    SCANNER = kind
    return previous


def entry_from_row(row: Row) -> SlowQueryEntry:
    """The typed entry of a canonical row (``row[ROW_FIELDS["date"]]`` not empty).

    Never fails for rows the expression captured: every captured number has the shape of a plausible
    number and the time is a real one (the expression checks the calendar); ``ValueError`` otherwise.
    """
    date, tod, zone = row[_F["date"]], row[_F["tod"]], row[_F["zone"]]
    sql = _decode(row[_F["sql"]])
    pt, wt, bt = row[_F["process_time"]], row[_F["wait_time"]], row[_F["backoff_time"]]
    pk, tk, mem, rows = row[_F["process_keys"]], row[_F["total_keys"]], row[_F["mem_max"]], row[_F["result_rows"]]
    return SlowQueryEntry(
        parse_slow_log_time(date + b"T" + tod + zone),
        date.decode("ascii"),
        zone_offset(zone),
        float(row[_F["query_time"]]),
        _decode(row[_F["digest"]]),
        _decode(row[_F["plan_digest"]]),
        _decode(row[_F["db"]]),
        _decode(row[_F["user"]]),
        _decode(row[_F["host"]]),
        sql,
        float(pt) if pt else 0.0,
        float(wt) if wt else 0.0,
        float(bt) if bt else 0.0,
        int(pk) if pk else 0,
        int(tk) if tk else 0,
        int(rows) if rows else 0,
        int(mem) if mem else 0,
        row[_F["is_internal"]] == b"true",
        row[_F["succ"]] != b"false",
        _decode(row[_F["use_db"]]).strip(),
        truncated_from(sql),
    )


def parse_entry(block: bytes | str) -> SlowQueryEntry | None:
    """The typed entry of one entry's text (starting with ``# Time: ``); ``None`` if incomplete/malformed."""
    data = block.encode("utf-8", "surrogateescape") if isinstance(block, str) else block
    if not data.startswith(TIME_PREFIX):
        return None
    rows = _regex_findall(data)
    if len(rows) == 1 and rows[0][_F["date"]]:
        try:
            return entry_from_row(rows[0])
        except ValueError:
            pass
    raw = _parse_general(data[len(TIME_PREFIX) :], typed_only=True)
    if not raw.complete:
        return None
    try:
        return typed_entry(raw)
    except EntryError:
        return None


# --------------------------------------------------------------------------------------------- files
def open_slow_log(path: str | os.PathLike[str]) -> BinaryIO:
    """The file opened for binary reading, decompressed when it is gzip (by suffix or magic bytes)."""
    p = Path(path)
    fh = p.open("rb")
    try:
        magic = fh.read(2)
        fh.seek(0)
    except OSError:
        fh.close()
        raise
    if p.suffix == ".gz" or magic == b"\x1f\x8b":
        import gzip

        return cast(BinaryIO, gzip.GzipFile(fileobj=fh, mode="rb"))
    return fh


SLOW_LOG_NAMES = ("tidb-slow.log", "tidb_slow_query.log", "slowlog")
"""Names of the current slow-log file: TiDB's default (``log.slow-query-file``), TiUP's (``run_tidb.sh``
passes ``--log-slow-query=<log dir>/tidb_slow_query.log``) and TiDB Operator's (``/var/log/tidb/slowlog``).
TiDB rotates it with lumberjack: ``<name without ext>-<local time 2006-01-02T15-04-05.000><ext>``, plus
``.gz`` when compressed."""


@cache
def _name_re(name: str) -> re.Pattern[str]:
    stem, ext = os.path.splitext(name)
    return re.compile(
        re.escape(stem)
        + r"(?:-(?P<rotated>\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(?:\.\d+)?))?"
        + re.escape(ext)
        + r"(?:\.gz)?",
        re.ASCII,
    )


def slow_log_name(file_name: str, names: Sequence[str] = SLOW_LOG_NAMES) -> tuple[str, str] | None:
    """``(current name, rotation time)`` when ``file_name`` is one of ``names`` or a rotated sibling
    (the time as written, ``2026-11-20T00-00-00.000``; ``""`` for the current file), else ``None``.

    >>> slow_log_name("tidb_slow_query-2026-11-20T00-00-00.000.log.gz")
    ('tidb_slow_query.log', '2026-11-20T00-00-00.000')
    """
    for name in names:
        m = _name_re(name).fullmatch(file_name)
        if m:
            return name, m.group("rotated") or ""
    return None


def find_slow_log_files(location: str | os.PathLike[str], names: Sequence[str] = SLOW_LOG_NAMES) -> list[Path]:
    """The slow-log files of one TiDB instance, oldest first.

    ``location`` is a file (returned alone, whatever its name) or a directory: then the files named in
    ``names`` (:data:`SLOW_LOG_NAMES`) and their rotated siblings are returned, for each name in turn its
    rotated files by their time and the current file last. Other files are ignored.
    """
    p = Path(location)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"no slow-log file or directory at {p}")
    found: list[tuple[int, int, str, str, Path]] = []
    for child in p.iterdir():
        named = slow_log_name(child.name, names)
        if named is None or not child.is_file():
            continue
        name, rotated = named
        found.append((list(names).index(name), 0 if rotated else 1, rotated, child.name, child))
    return [item[-1] for item in sorted(found)]


def split_byte_ranges(path: str | os.PathLike[str], parts: int) -> list[tuple[int, int]]:
    """Cut an uncompressed file into at most ``parts`` ranges that each start at a ``# Time:`` line.

    Every entry starts in exactly one range, so ranges can be parsed independently (in parallel) and the
    results added up. A compressed or small file is one range.
    """
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        if parts <= 1 or size < (1 << 20) or fh.read(2) == b"\x1f\x8b":
            return [(0, size)]
        cuts = [0]
        for k in range(1, parts):
            start = max(cuts[-1] + 1, size * k // parts)
            fh.seek(start)
            window = b""
            found = -1
            while found < 0 and len(window) <= DEFAULT_MAX_ENTRY_BYTES:
                more = fh.read(1 << 16)
                if not more:
                    break
                window += more
                found = window.find(_BOUNDARY)
            if found < 0:
                break
            cuts.append(start + found + 1)
        cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


# ------------------------------------------------------------------------------------------ iteration
Source = str | os.PathLike[str] | BinaryIO


def _as_sources(source: Source | Iterable[Source]) -> list[Source]:
    if isinstance(source, (str, os.PathLike, io.IOBase)):
        return [cast(Source, source)]
    return list(cast(Iterable[Source], source))


def _source_name(src: Source) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    return str(getattr(src, "name", "<stream>"))


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return path.suffix == ".gz" or fh.read(2) == b"\x1f\x8b"


LineOf = Callable[[int], int]
"""The 1-based line number of a byte offset in the buffer of a span."""
_COUNT_SLICE = 16 << 20


class _MappedLines:
    """Line numbers of offsets in a mapped file, counted only when asked (for a bad entry) and from the
    offset asked before, so a file is counted through at most once however many entries are bad."""

    __slots__ = ("lines", "mm", "pos")

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm = mm
        self.pos = 0
        self.lines = 0

    def _count(self, a: int, b: int) -> int:
        return sum(self.mm[k : min(b, k + _COUNT_SLICE)].count(b"\n") for k in range(a, b, _COUNT_SLICE))

    def __call__(self, offset: int) -> int:
        if offset >= self.pos:
            self.lines += self._count(self.pos, offset)
        else:
            self.lines -= self._count(offset, self.pos)
        self.pos = offset
        return self.lines + 1


def _stream_line(buf: bytes, lines_read: int, offset: int) -> int:
    """The line of ``buf[offset]`` when ``buf`` ends where the stream has been read to, which holds
    ``lines_read`` newlines."""
    return lines_read - buf.count(b"\n", offset) + 1


Span = tuple[Buffer, int, int, LineOf]
"""``(buffer, start, end, line_of)``: whole entries in ``buffer[start:end]``."""


def _mapped_spans(path: Path, stats: ParseStats, chunk_size: int, byte_range: tuple[int, int] | None) -> Iterator[Span]:
    """Spans of whole entries of an uncompressed file, read through ``mmap``.

    No copy is made: the expression runs on the mapping, and the pages already parsed are dropped from
    the process (``MADV_DONTNEED``; they stay in the page cache), so resident memory stays flat.
    """
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start, end = byte_range if byte_range is not None else (0, size)
        end = min(end, size)
        if start >= end:
            return
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            line_of = _MappedLines(mm)
            if hasattr(mmap, "MADV_SEQUENTIAL"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            if start == 0 and mm[: len(_BOM)] == _BOM:  # a log saved by an editor
                start = len(_BOM)
                stats.skipped_bytes += start
                stats.bytes_read += start
            if mm[start : start + len(TIME_PREFIX)] != TIME_PREFIX:
                k = mm.find(_BOUNDARY, start, end)
                skipped = (k + 1 if k >= 0 else end) - start
                stats.skipped_bytes += skipped
                stats.bytes_read += skipped
                start += skipped
            dropped = start - start % mmap.PAGESIZE
            pos = start
            while pos < end:
                stop = pos + chunk_size
                if stop >= end:
                    cut = end
                else:
                    k = mm.rfind(_BOUNDARY, pos, stop)
                    if k < 0:  # one entry longer than the chunk
                        k = mm.find(_BOUNDARY, stop, end)
                    cut = end if k < 0 else k + 1
                stats.bytes_read += cut - pos
                yield mm, pos, cut, line_of
                pos = cut
                page = pos - pos % mmap.PAGESIZE
                if page > dropped and hasattr(mmap, "MADV_DONTNEED"):
                    mm.madvise(mmap.MADV_DONTNEED, dropped, page - dropped)
                    dropped = page
        finally:
            mm.close()


class _CarefulReader:
    """``read`` of a gzip file that keeps every byte decompressed before a failure: the error is raised by
    the read after the last good bytes (a buffered ``read(n)`` would drop up to ``n`` of them)."""

    def __init__(self, fh: gzip.GzipFile) -> None:
        self.fh = fh
        self.error: BaseException | None = None

    def read(self, size: int) -> bytes:
        if self.error is not None:
            raise self.error
        parts: list[bytes] = []
        got = 0
        while got < size:
            try:
                part = self.fh.read1(size - got)
            except (EOFError, OSError, zlib.error) as exc:
                self.error = exc
                break
            if not part:
                break
            parts.append(part)
            got += len(part)
        if not parts and self.error is not None:
            raise self.error
        return b"".join(parts)


def _file_error(name: str, exc: BaseException) -> SlowLogFileError:
    """The one-line :class:`SlowLogFileError` of a failed read."""
    if isinstance(exc, EOFError):
        return SlowLogFileError(name, "truncated gzip file", "the data ends before the end of the gzip stream "
                                "(entries before the cut are read)", keeps_prefix=True)  # fmt: skip
    import gzip

    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return SlowLogFileError(name, "corrupt gzip file", f"{exc} (nothing read from it is used)")
    if isinstance(exc, OSError):
        return SlowLogFileError(name, "cannot read", exc.strerror or str(exc))
    return SlowLogFileError(name, "cannot read", str(exc))


def _streamed_spans(
    fh: BinaryIO | _CarefulReader, stats: ParseStats, chunk_size: int, max_entry_bytes: int, name: str
) -> Iterator[Span]:
    """Spans ``(buf, 0, end, line_of)`` of whole entries of a stream (gzip, pipes, file objects).

    A read that fails ends the stream like its end would (the entries read so far are yielded, a cut last
    entry is incomplete); then :class:`SlowLogFileError` is raised.
    """
    carry = b""
    started = False
    keep = len(_BOUNDARY) - 1
    lines_read = 0  # newlines in everything read so far: where each buf ends
    failure: SlowLogFileError | None = None
    first = True
    while True:
        try:
            data = fh.read(chunk_size)
        except (EOFError, OSError, zlib.error) as exc:
            failure, data = _file_error(name, exc), b""
        stats.bytes_read += len(data)
        lines_read += data.count(b"\n")
        eof = not data
        buf = carry + data if carry else data
        carry = b""
        if first and (len(buf) >= len(_BOM) or eof):
            first = False
            if buf.startswith(_BOM):  # a log saved by an editor
                buf = buf[len(_BOM) :]
                stats.skipped_bytes += len(_BOM)
        if not started:
            if buf.startswith(TIME_PREFIX):
                started = True
            else:
                k = buf.find(_BOUNDARY)
                if k < 0:
                    if eof:
                        stats.skipped_bytes += len(buf)
                        if failure is not None:
                            raise failure
                        return
                    if len(buf) > keep:
                        stats.skipped_bytes += len(buf) - keep
                        buf = buf[-keep:]
                    carry = buf
                    continue
                stats.skipped_bytes += k + 1
                buf = buf[k + 1 :]
                started = True
        if eof:
            if buf:
                yield buf, 0, len(buf), partial(_stream_line, buf, lines_read)
            if failure is not None:
                raise failure
            return
        last = buf.rfind(_BOUNDARY)
        if last < 0:  # no boundary yet: the entry continues in the next chunk
            if len(buf) > max_entry_bytes:
                stats.malformed += 1
                line = _stream_line(buf, lines_read, 0)
                stats.note(f"{name}:{line}: an entry is larger than {max_entry_bytes} bytes; skipped")
                stats.skipped_bytes += len(buf) - keep
                carry = buf[-keep:]
                started = False
                continue
            carry = buf
            continue
        carry = buf[last + 1 :]
        yield buf, 0, last + 1, partial(_stream_line, buf, lines_read)


def _spans(
    src: Source,
    stats: ParseStats,
    chunk_size: int,
    max_entry_bytes: int,
    byte_range: tuple[int, int] | None,
) -> Iterator[Span]:
    if byte_range is None or byte_range[0] == 0:  # a file cut into ranges counts once
        stats.files += 1
    name = _source_name(src)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        try:
            gzipped = _is_gzip(path)
            if not gzipped:
                yield from _mapped_spans(path, stats, chunk_size, byte_range)
                return
            if byte_range is not None and byte_range[0] > 0:
                raise ValueError(f"{path}: a byte range needs an uncompressed file")
            import gzip

            with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as fh:
                yield from _streamed_spans(_CarefulReader(fh), stats, chunk_size, max_entry_bytes, name)
        except OSError as exc:  # missing, a directory, no permission, an I/O error
            raise _file_error(name, exc) from None
        return
    if byte_range is not None:  # lines are counted from the start of the range
        src.seek(byte_range[0])
        data = src.read(byte_range[1] - byte_range[0])
        yield from _streamed_spans(io.BytesIO(data), stats, chunk_size, max_entry_bytes, name)
        return
    yield from _streamed_spans(src, stats, chunk_size, max_entry_bytes, name)


class Locator:
    """Where the rows of one chunk are: ``source`` and, for a row, the line of its ``# Time:``.

    Lines are looked up only when asked, for rows that are rejected (rare), by finding the row's text in
    the chunk; ask while the chunk is current (the next chunk may unmap or drop it), in row order.
    """

    __slots__ = ("_buf", "_cursor", "_end", "_line_of", "_start", "source")

    def __init__(self, source: str, buf: Buffer, start: int, end: int, line_of: LineOf) -> None:
        self.source = source
        self._buf, self._start, self._end, self._line_of = buf, start, end, line_of
        self._cursor = start

    def line(self, row: Row) -> int:
        """The 1-based line of ``row``'s ``# Time:`` (0 if it cannot be found)."""
        date = row[_F["date"]]
        if date:
            needle = b"".join((TIME_PREFIX, date, b"T", row[_F["tod"]], row[_F["zone"]], b"\n"))
        else:
            needle = TIME_PREFIX + row[_F["other"]][:4096]
        pos = self._buf.find(needle, self._cursor, self._end)
        if pos < 0:
            pos = self._buf.find(needle, self._start, self._end)
        if pos < 0:
            return 0
        self._cursor = pos + 1
        return self._line_of(pos)

    def where(self, row: Row) -> str:
        """``source:line`` of ``row`` (``source`` alone when the line is unknown)."""
        line = self.line(row)
        return f"{self.source}:{line}" if line else self.source


def iter_located_spans(
    source: Source | Iterable[Source],
    *,
    stats: ParseStats | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[tuple[Buffer, int, int, Locator]]:
    """``(buffer, start, end, locator)``: whole entries in ``buffer[start:end]``, chunk by chunk (a mapped
    file or decompressed data), for a scanner to read in place; use a span before asking for the next."""
    counters = stats if stats is not None else ParseStats()
    for src in _as_sources(source):
        name = _source_name(src)
        for buf, start, end, line_of in _spans(src, counters, chunk_size, max_entry_bytes, byte_range):
            yield buf, start, end, Locator(name, buf, start, end, line_of)


def iter_located_batches(
    source: Source | Iterable[Source],
    *,
    stats: ParseStats | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[tuple[list[Row], Locator]]:
    """:func:`iter_row_batches` with a :class:`Locator` for each chunk's rows."""
    findall = _findall
    for buf, start, end, locator in iter_located_spans(
        source, stats=stats, chunk_size=chunk_size, max_entry_bytes=max_entry_bytes, byte_range=byte_range
    ):
        yield findall(buf, start, end), locator


def iter_row_batches(
    source: Source | Iterable[Source],
    *,
    stats: ParseStats | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[list[Row]]:
    """The :data:`ENTRY_RE` rows of every entry, one list per chunk (the aggregator's fast input).

    Rows whose ``date`` field is empty must go through :func:`row_to_entry` (general parser).
    """
    counters = stats if stats is not None else ParseStats()
    findall = _findall
    for src in _as_sources(source):
        for buf, start, end, _line_of in _spans(src, counters, chunk_size, max_entry_bytes, byte_range):
            yield findall(buf, start, end)


def iter_entries(
    source: Source | Iterable[Source],
    *,
    stats: ParseStats | None = None,
    strict: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[SlowQueryEntry]:
    """Complete entries of one or more slow-log files (paths or binary file objects), in file order.

    :param stats: counters to update (entries, incomplete, malformed, bytes …); a malformed entry is
        noted in ``stats.problems`` as ``file:line: …``.
    :param strict: raise :class:`SlowLogParseError` on a malformed entry and :class:`SlowLogFileError` on a
        file that cannot be read to its end, instead of counting them (``stats.malformed``,
        ``stats.bad_files``; the next file is read). Entries are streamed: those of a file read before it
        failed have been yielded (:meth:`DailyAggregates.add_file` drops a corrupt file's entries).
    :param byte_range: parse only ``[start, end)`` of a single uncompressed file; ``start`` must be the
        start of a ``# Time:`` line or of the file (see :func:`split_byte_ranges`).
    """
    counters = stats if stats is not None else ParseStats()
    for src in _as_sources(source):
        batches = iter_located_batches(
            src, stats=counters, chunk_size=chunk_size, max_entry_bytes=max_entry_bytes, byte_range=byte_range
        )
        try:
            for rows, locator in batches:
                for row in rows:
                    entry = row_to_entry(row, counters, strict=strict, source=locator.source, locator=locator)
                    if entry is not None:
                        yield entry
        except SlowLogFileError as exc:
            if strict:
                raise
            counters.bad_file(exc)


def row_to_entry(
    row: Row, stats: ParseStats, *, strict: bool = False, source: str = "", locator: Locator | None = None
) -> SlowQueryEntry | None:
    """The typed entry of any row (canonical or not), counting incomplete/malformed ones in ``stats``.

    ``locator`` (of the row's chunk) adds the line to the problem noted for a malformed entry.
    """
    if row[_F["date"]]:
        try:
            entry = entry_from_row(row)
        except ValueError:
            pass
        else:
            stats.entries += 1
            stats.fast_path += 1
            return entry
        text = b"".join((row[_F["date"]], b"T", row[_F["tod"]], row[_F["zone"]])).decode("ascii", "replace")
        _malformed(stats, strict, source, locator, row, text, "impossible date")
        return None
    raw = _parse_general(row[_F["other"]], typed_only=True)
    if not raw.complete:
        stats.incomplete += 1
        return None
    try:
        entry = typed_entry(raw)
    except EntryError as exc:
        _malformed(stats, strict, source, locator, row, raw.time, str(exc))
        return None
    stats.entries += 1
    return entry


def _malformed(
    stats: ParseStats, strict: bool, source: str, locator: Locator | None, row: Row, when: str, reason: str
) -> None:
    stats.malformed += 1
    line = locator.line(row) if locator is not None and (strict or len(stats.problems) < MAX_PROBLEMS) else 0
    where = f"{source}:{line}" if line else source
    stats.note(f"{where}: entry at {when[:80]!r}: {reason}")
    if strict:
        raise SlowLogParseError(source, line, f"entry at {when[:80]!r}: {reason}")


def iter_raw_entries(
    source: Source | Iterable[Source],
    *,
    stats: ParseStats | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
) -> Iterator[RawSlowLogEntry]:
    """Every entry with every field as text, including incomplete ones (``complete=False``); values are not
    checked. A file that cannot be read to its end raises :class:`SlowLogFileError` after its entries."""
    counters = stats if stats is not None else ParseStats()
    for src in _as_sources(source):
        for buf, start, end, _line_of in _spans(src, counters, chunk_size, max_entry_bytes, None):
            parts = buf[start:end].split(_BOUNDARY)
            parts[0] = parts[0][len(TIME_PREFIX) :]
            for e in parts:
                raw = _parse_general(e)
                if raw.complete:
                    counters.entries += 1
                else:
                    counters.incomplete += 1
                yield raw
