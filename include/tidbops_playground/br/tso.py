"""TSO arithmetic, BR's timestamp parsing and the Go-style formatting BR prints.

A TSO is ``(physical_ms << 18) | logical``. The emulator maps MariaDB's microsecond version timestamps
onto TSOs so that a snapshot read "as of TSO" is exact:

* a row version stamped at microsecond ``U`` gets the commit TSO ``compose(U // 1000, U % 1000)``;
* a read at TSO ``T`` uses the microsecond ``physical(T) * 1000 + min(logical(T), 999)``.

Both maps are monotonic, so "version committed at or before T" is the same test on either side. This
module is independent of the production code on purpose (a shared bug must not hide).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone, tzinfo

PHYSICAL_SHIFT = 18
LOGICAL_MASK = (1 << PHYSICAL_SHIFT) - 1
MAX_UINT64 = (1 << 64) - 1
# MariaDB TIMESTAMP columns (row_start/row_end) end here; reads later than this are clamped.
MAX_TIMESTAMP_US = 2147483647 * 1_000_000 + 999_999


def compose(physical_ms: int, logical: int = 0) -> int:
    return (physical_ms << PHYSICAL_SHIFT) | (logical & LOGICAL_MASK)


def physical(ts: int) -> int:
    return ts >> PHYSICAL_SHIFT


def logical(ts: int) -> int:
    return ts & LOGICAL_MASK


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ts_to_read_us(ts: int) -> int:
    """The MariaDB microsecond instant a snapshot read at ``ts`` corresponds to."""
    return min(physical(ts) * 1000 + min(logical(ts), 999), MAX_TIMESTAMP_US)


def us_to_commit_ts(us: int) -> int:
    """The commit TSO of a row version stamped at microsecond ``us``."""
    return compose(us // 1000, us % 1000)


def us_to_sql(us: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC (connections run with ``time_zone='+00:00'``)."""
    us = max(0, min(us, MAX_TIMESTAMP_US))
    dt = datetime(1970, 1, 1) + timedelta(microseconds=us)
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


_SQL_TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def sql_to_us(text: str) -> int:
    m = _SQL_TS.match(text.strip())
    if not m:
        raise ValueError(f"not a SQL timestamp: {text!r}")
    frac = (m.group(7) or "0").ljust(6, "0")
    dt = datetime(*(int(m.group(i)) for i in range(1, 7)), tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + int(frac)


# --------------------------------------------------------------------------- local time (BR's zone)


def local_tz() -> tzinfo:
    """The zone the BR process runs in (``TZ`` / ``/etc/localtime``), like Go's ``time.Local``."""
    return datetime.now().astimezone().tzinfo or UTC


def ts_to_datetime(ts: int, tz: tzinfo | None = None) -> datetime:
    """``oracle.GetTimeFromTS``: the physical part as a time (millisecond precision) in BR's zone."""
    ms = physical(ts)
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000).astimezone(tz or local_tz())
    )


def _offset(dt: datetime, colon: bool) -> str:
    off = dt.utcoffset() or timedelta(0)
    total = int(off.total_seconds())
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hh, mm = divmod(total // 60, 60)
    return f"{sign}{hh:02d}:{mm:02d}" if colon else f"{sign}{hh:02d}{mm:02d}"


def _trimmed_fraction(dt: datetime) -> str:
    """Go's ``.999999999`` layout element: the fraction without trailing zeros, nothing if zero."""
    if not dt.microsecond:
        return ""
    return ("." + f"{dt.microsecond:06d}").rstrip("0")


def format_date(ts: int) -> str:
    """BR's ``FormatDate``: layout ``2006-01-02 15:04:05.999999999 -0700`` in the local zone."""
    dt = ts_to_datetime(ts)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + _trimmed_fraction(dt) + " " + _offset(dt, colon=False)


def go_time_string(ts: int) -> str:
    """Go's ``time.Time.String()`` of ``GetTimeFromTS(ts)``: ``2022-07-25 23:00:15.618 +0800 CST``."""
    dt = ts_to_datetime(ts)
    zone = dt.tzname() or ""
    if not zone or zone[0] in "+-":
        zone = _offset(dt, colon=False)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + _trimmed_fraction(dt) + " " + _offset(dt, colon=False) + " " + zone


def format_fixed4(ts: int) -> str:
    """Layout ``2006-01-02 15:04:05.0000`` (used by ``log truncate``)."""
    dt = ts_to_datetime(ts)
    return dt.strftime("%Y-%m-%d %H:%M:%S") + f".{dt.microsecond // 100:04d}"


def log_timestamp(dt: datetime | None = None) -> str:
    """pingcap/log's time layout ``2006/01/02 15:04:05.000 -07:00``."""
    dt = dt or datetime.now().astimezone()
    return dt.strftime("%Y/%m/%d %H:%M:%S") + f".{dt.microsecond // 1000:03d} " + _offset(dt, colon=True)


def log_file_timestamp(dt: datetime | None = None) -> str:
    """Go layout ``2006-01-02T15.04.05Z0700`` (the default ``--log-file`` suffix)."""
    dt = dt or datetime.now().astimezone()
    off = dt.utcoffset() or timedelta(0)
    zone = "Z" if off == timedelta(0) else _offset(dt, colon=False)
    return dt.strftime("%Y-%m-%dT%H.%M.%S") + zone


def tidb_gc_time(ts_or_dt: int | datetime) -> str:
    """TiDB's ``mysql.tidb`` time layout ``20060102-15:04:05.000 -0700`` (GC worker rows)."""
    dt = ts_to_datetime(ts_or_dt) if isinstance(ts_or_dt, int) else ts_or_dt
    return dt.strftime("%Y%m%d-%H:%M:%S") + f".{dt.microsecond // 1000:03d} " + _offset(dt, colon=False)


# --------------------------------------------------------------------------- ParseTSString


class TSParseError(ValueError):
    """A ``--backupts``/``--start-ts``/... value that BR would refuse."""


_TZ_SUFFIX = re.compile(r"\s*(Z|[+-]\d{2}(?::?\d{2})?)$")
_DT_PATTERNS = [
    re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,9}))?)?)?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?)?$"),
]


def _parse_offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hh = int(digits[:2])
    mm = int(digits[2:4]) if len(digits) >= 4 else 0
    return timezone(sign * timedelta(hours=hh, minutes=mm))


def parse_ts_string(text: str, tz_check: bool) -> int:
    """BR's ``ParseTSString``: "" → 0, any unsigned integer → that TSO, else a datetime (logical 0)."""
    if text == "":
        return 0
    if text.isdigit():
        value = int(text)
        if value <= MAX_UINT64:
            return value
    m_tz = _TZ_SUFFIX.search(text)
    has_tz = m_tz is not None and m_tz.start() >= 8
    if tz_check and not has_tz:
        raise TSParseError("must set timezone when using datetime format ts, e.g. '2018-05-11 01:42:23+0800'")
    body = text[: m_tz.start()] if has_tz and m_tz else text
    zone = _parse_offset(m_tz.group(1)) if has_tz and m_tz else local_tz()
    for pattern in _DT_PATTERNS:
        m = pattern.match(body.strip())
        if not m:
            continue
        try:
            parts = [int(g) if g else 0 for g in m.groups()[:6]]
            frac = (m.group(7) or "0")[:6].ljust(6, "0")
            dt = datetime(*parts, microsecond=int(frac), tzinfo=zone)  # type: ignore[misc]
        except ValueError:
            break
        return compose(_epoch_ms(dt), 0)
    raise TSParseError(f"[types:1292]Incorrect timestamp value: '{text}'")


def _epoch_ms(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


# --------------------------------------------------------------------------- Go durations and sizes


def _frac(value: int, digits: int) -> str:
    whole, rest = divmod(value, 10**digits)
    if not rest:
        return str(whole)
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")


def go_duration(ns: int | float) -> str:
    """Go's ``time.Duration.String()`` for a number of nanoseconds."""
    n = int(ns)
    if n == 0:
        return "0s"
    sign = "-" if n < 0 else ""
    u = abs(n)
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{_frac(u, 3)}µs"
        return f"{sign}{_frac(u, 6)}ms"
    hours, rem = divmod(u, 3_600_000_000_000)
    minutes, rem = divmod(rem, 60_000_000_000)
    seconds = _frac(rem, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


def go_duration_seconds(seconds: float) -> str:
    return go_duration(round(seconds * 1e9))


_GO_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` → nanoseconds. Raises ``ValueError`` with Go's message."""
    s = text
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    pos = 0
    total = 0.0
    for m in _GO_DUR_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        if re.fullmatch(r"\d+(\.\d*)?", s):
            raise ValueError(f'time: missing unit in duration "{text}"')
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * round(total)


def human_size(size: float) -> str:
    """``docker/go-units.HumanSize``: SI units, 4 significant digits (``71.33kB``, ``327B``)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{_go_g4(size)}{units[i]}"


def _go_g4(value: float) -> str:
    text = f"{value:.4g}"
    if "e" in text:  # Go prints e+XX with at least two exponent digits, like C
        mant, exp = text.split("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0").rjust(2, "0")
        text = f"{mant}e{sign}{digits}"
    return text


def go_float(value: float) -> str:
    """Go's ``encoding/json`` float64 rendering (``0`` not ``0.0``; ``0.82``)."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)
