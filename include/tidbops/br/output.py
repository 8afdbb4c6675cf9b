"""Read whatever BR printed — console output or a BR log file — and say what happened. Never raises.

The same functions serve every reader: the BR hook behind the operators (``parse_br_output`` of stdout
and stderr), the triggerer's ``br log status`` poll (``parse_log_status``) and ``tidbops br parse``.

What BR prints, v3.1 to v9 (see ``/work/shared/reference/br-cli.md`` and the samples under
``tests/unit/tidbops/br/samples``):

* pingcap/log text records ``[ts] [LEVEL] [file.go:N] ["message"] [key=value] ...``: the message and
  values are quoted (JSON-like escapes) only when needed, keys of old builds are quoted too
  (``["backup checksum"=842.938µs]``), field order is random and keys may repeat (failed summaries
  list ``unit-name``/``error`` per unit). Records are parsed with a linear tokenizer, not a regex, so
  a pathological line costs linear time. ``--log-format json`` records (one object a line) are read too.
* summaries: ``["Full Backup success summary"]`` (v6.5+), ``["Full backup success summary"]`` (v5),
  ``["Full backup Success summary: total backup ranges: 2, total success: 2, ..."]`` (v4, figures in
  the message), ``"<cmd> failed summary"`` (a failure even when every count is 0: the error follows on
  stderr); PITR prints ``Full Restore`` and ``restore log`` summaries. Before v4.0 (pingcap/br
  pkg/summary/collector.go): ``"Restore database summary: total restore tables: 2, success tables: 2,
  failed tables: 0, …"`` — success or failure from the failed count — and on failure the bare
  ``"<cmd> summary"`` with the counts in a field's key and the failed units in its value
  (``["total restore tables: 2, total success: 1, total failed: 1, failed tables"="[shop.orders]"]``).
* errors: ``Error: …`` (cobra, stderr, sometimes glued to a progress bar), ``["br failed"]`` /
  ``["failed to restore"]`` records (the ``error`` field), ``error`` fields of failed summaries, a Go
  ``panic: …`` or runtime ``fatal error: …`` (also right after a progress bar), bare error text without
  any header (``…: [BR:restore:ErrRestoreNotFreshCluster]cluster is not fresh``); each keeps its
  ``[BR:Class:Code]`` as printed. ``ingest file failed`` / ``epoch not match`` ERROR records are a step
  BR retries: the failure's cause unless a success summary follows them.
* ``Detail BR log in <path>`` (older builds: ``Detial BR log in``), WARN records, progress (TTY bars
  redrawn with ``\\r`` and ``["progress"]`` records), the "not fresh" refusal (framed in ``#`` lines, or
  bare), ``["log metadata"]``.

However it reached us — behind klog headers of TiDB Operator's pods, CRI or ``kubectl --timestamps``
prefixes, a CI runner's ``*** ``, inside Docker's json-file or Airflow's JSON log, as one JSON string —
it is read as the lines BR printed (``tidbops.br.lines``).

Sizes are go-units human sizes (SI: ``250kB`` = 250000 bytes), durations Go durations (``1m33.98s``),
``NaN``/``+Inf`` become unknown (``None``). ``parse_log_status`` reads ``br log status`` in its table
form (also joined into one line by a collector, the status word after its bullet: ``● PAUSE``) and its
JSON form.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from tidbops import tso
from tidbops.br.lines import HEADER as _HEADER
from tidbops.br.lines import QUOTED as _QUOTED
from tidbops.br.lines import br_lines, is_br_json_record
from tidbops.durations import parse_duration
from tidbops.timefmt import iso_or_none, utc

TaskState = Literal["NORMAL", "PAUSE", "ERROR"]

_MAX_WARNINGS = 50
_MAX_ERRORS = 50
_KEY = re.compile(r"[^\[\]=\"\s][^\[\]=\"]{0,199}")
_UNQUOTED = re.compile(r"[^\[\]]*")
_CODE_BR = re.compile(r"\[(BR:[A-Za-z0-9_]+:[A-Za-z0-9_]+)\]")
_CODE_ANY = re.compile(r"\[([A-Za-z][A-Za-z0-9_-]*(?::[A-Za-z0-9_-]+)+)\]")
_SUMMARY_NEW = re.compile(r"^(?P<cmd>[^\n]{1,60}?) (?P<st>success|failed) summary$", re.S)
_SUMMARY_OLD = re.compile(r"^(?P<cmd>[^\n]{1,60}?) (?P<st>Success|Failed) summary ?: ?(?P<rest>.*)$", re.S)
_SUMMARY_OLDEST = re.compile(r"^(?P<cmd>[^\n]{1,60}?) summary: (?P<rest>.*)$", re.S)
_SUMMARY_BARE = re.compile(r"^(?P<cmd>[^\n]{1,60}?) summary$")
_DETAIL = re.compile(r"(?:Detail|Detial) BR log in (\S+)")
_OLD_LOGFILE = re.compile(r"^log file: (\S+)")
_BAR = re.compile(r"(?P<name>[A-Za-z][A-Za-z0-9&()_.,:/ -]{0,80}?) <[^<>\n]{0,4000}> *(?P<pct>\d{1,3}(?:\.\d+)?)%")
_BANNER_RULE = re.compile(r"^#{20,}$")
_BANNER_SPLIT = re.compile(r"(?:^|\s)#+(?=\s|$)")
_PERCENT = re.compile(r"^\s*(\d{1,3}(?:\.\d+)?)\s*%")
_SIZE = re.compile(
    r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)\s*([KMGTPEZY]?i?B|[kKMGTPEZY]B?)?(/s)?\s*$"
)
_INT = re.compile(r"^[ \t]*-?[0-9]{1,20}[ \t]*$")  # ASCII only: \s would let \x1c-\x1f through, which int() refuses
_DURATION_LIKE = re.compile(r"^-?(?:\d+(?:\.\d*)?(?:ns|us|µs|μs|ms|s|m|h))+$")
_FAILURE_MESSAGES = frozenset(
    {"br failed", "failed to backup", "failed to restore", "failed to backup raw kv", "failed to restore raw kv"}
)
# ERROR records of a step BR retries (pingcap/br pkg/restore/import.go, backoff.go: ingest is retried up
# to 16 times on "epoch not match", ErrIngestFailed, …): the cause of a failure unless a success follows
_RETRYABLE_MESSAGES = frozenset({"ingest file failed"})
_RETRYABLE_ERRORS = ("epoch not match",)
# what BR prints (br/cmd/br/restore.go printWorkaroundOnFullRestoreError) when it refuses a full restore;
# seen framed in '#' lines, or bare when a collector dropped or joined the frame
_REFUSALS = (
    "the target cluster is not fresh, cannot restore.",
    "the target cluster is not compatible with the backup data,",
)
_MARKERS = (
    "summary", "progress", "log metadata", "[ERROR]", "[FATAL]", "[PANIC]", "[WARN]", "Error: ", "BR log in",
    "log file: ", "%", "#", "panic: ", "fatal error: ", "skipped due", '"level"', "--ratelimit", "caused by: ",
    "[BR:", "the target cluster is not",
)  # fmt: skip
_FIELD_MESSAGES = frozenset({"progress", "log metadata"})
_WARNING_PHRASES = ("setting `--ratelimit` and `--concurrency` at the same time",)
_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}
_MIB = 1024.0 * 1024.0
_MB_NUMBER = re.compile(r"^\s*(\d{1,15}(?:\.\d{1,9})?)\s*$")

TSO_KEYS = frozenset(
    {"BackupTS", "source-start-point", "source-end-point", "target-end-point", "restore-from", "restore-to"}
    | {"log-min-ts", "log-max-ts"}
)


# ------------------------------------------------------------------------------ value converters


_UINT64_LIMIT = 1 << 64


def parse_size(value: str) -> int | None:
    """Bytes in a go-units human size (``250kB``, ``71.33kB``, ``1.2GB``, ``327B``), a speed (``53.02kB/s``,
    bytes per second) or a plain byte count. ``NaNB``/``+InfYB/s`` and anything else: ``None``."""
    m = _SIZE.match(value)
    if m is None:
        return None
    number, unit = m.group(1), m.group(2) or ""
    try:
        amount = float(number)
    except ValueError:
        return None
    if not math.isfinite(amount):
        return None
    if unit.endswith("iB"):
        scale = 1024.0 ** ("KMGTPEZY".index(unit[0].upper()) + 1)
    else:
        scale = _SI.get(unit.rstrip("B"), 0.0)
        if not scale:
            return None
    result = amount * scale
    return round(result) if math.isfinite(result) and abs(result) < 1e30 else None


def parse_go_duration(value: str) -> float | None:
    """Seconds in a Go duration (``4.715509333s``, ``3.597416ms``, ``842.938µs``, ``1m33.98s``); else ``None``."""
    v = value.strip()
    if not v or len(v) > 64:
        return None
    try:
        seconds = parse_duration(v)
    except ValueError:
        return None
    return round(seconds, 9) if math.isfinite(seconds) else None


def _to_int(value: object) -> int | None:
    """An integer BR prints (counts, sizes, TSOs: Go uint64/int64, never negative); ``None`` for anything
    else, a number outside ``0 … 2^64-1`` included (such a number is not BR's, and would overflow a column)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _INT.match(value) and len(value) <= 21:
        value = int(value)
    if isinstance(value, int) and 0 <= value < _UINT64_LIMIT:
        return value
    return None


def _tso_time(ts: int | None) -> datetime | None:
    if ts is None or ts <= 0 or ts >= 1 << 64:
        return None
    try:
        return tso.to_datetime(ts)
    except (ValueError, OverflowError, OSError):
        return None


FieldKind = Literal["tso", "count", "bytes", "bytes_per_s", "seconds", "number", "text", "unknown"]
_BYTE_COUNT_KEYS = frozenset({"Size", "total-size", "total size(Byte)"})


def classify_field(key: str, value: str) -> tuple[FieldKind, int | float | str | None]:
    """One summary field in plain units, with its kind: TSOs and counts as ints, sizes in bytes, speeds in
    bytes per second, durations in seconds. Unknown shapes stay the raw string (kind ``text``);
    ``NaN``/``Inf`` give ``(kind, None)``."""
    v = value.strip()
    if key in TSO_KEYS:
        return "tso", _to_int(v)
    number = _to_int(v)
    if number is not None:
        return ("bytes" if key in _BYTE_COUNT_KEYS else "count"), number
    if "(MB" in key or "(Byte" in key:  # v4: "total size(MB): 5997.49" (MiB), "avg speed(Byte/s): 733.79"
        m = _MB_NUMBER.match(v)
        kind: FieldKind = "bytes_per_s" if "/s)" in key else "bytes"
        return kind, (round(float(m.group(1)) * (_MIB if "(MB" in key else 1.0)) if m else None)
    if "take(s)" in key:
        m = _MB_NUMBER.match(v)
        return "seconds", float(m.group(1)) if m else None
    if _DURATION_LIKE.match(v):
        return "seconds", parse_go_duration(v)
    if v.endswith("B/s"):
        return "bytes_per_s", parse_size(v)
    if v.endswith("B") or v in ("NaN", "+Inf", "-Inf"):
        return "bytes", parse_size(v)
    try:
        as_float = float(v)
    except ValueError:
        return "text", value
    return ("number", as_float) if math.isfinite(as_float) else ("unknown", None)


def normalise_field(key: str, value: str) -> int | float | str | None:
    """``classify_field`` without the kind."""
    return classify_field(key, value)[1]


# ------------------------------------------------------------------------------------- records


def _scan_quoted(s: str, i: int, end: int | None = None) -> int | None:
    """``s[i]`` is a double quote: the index just after the closing quote, or ``None`` if unterminated."""
    m = _QUOTED.match(s, i, len(s) if end is None else end)
    return m.end() if m else None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f"}


def _unquote(quoted: str) -> str:
    """The content of a JSON-like quoted string (escapes decoded; unknown escapes kept as is)."""
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    n = len(inner)
    while i < n:
        c = inner[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = inner[i + 1]
        if e == "u" and i + 6 <= n and re.fullmatch(r"[0-9a-fA-F]{4}", inner[i + 2 : i + 6]):
            out.append(chr(int(inner[i + 2 : i + 6], 16)))
            i += 6
            continue
        out.append(_ESCAPES.get(e, e))
        i += 2
    return "".join(out)


def _parse_fields(s: str, i: int, n: int) -> list[tuple[str, str]]:
    """``[key=value]`` pairs from ``s[i:n]``, in order, repeated keys kept. Linear in ``n - i``."""
    out: list[tuple[str, str]] = []
    while i < n:
        j = s.find("[", i, n)
        if j < 0:
            break
        k = j + 1
        if k < n and s[k] in '"“':
            if s[k] == "“":  # smart quotes from a copy-paste: ["backup checksum"] as “backup checksum”
                end = s.find("”", k + 1, min(n, k + 202))
                if end < 0 or "]" in s[k:end]:
                    i = j + 1
                    continue
                key, k = s[k + 1 : end], end + 1
            else:
                end_q = _scan_quoted(s, k, n)
                if end_q is None:
                    break
                key, k = _unquote(s[k:end_q]), end_q
        else:
            m = _KEY.match(s, k, n)
            if m is None:
                i = j + 1
                continue
            key, k = m.group(), m.end()
        if k >= n or s[k] != "=":
            i = j + 1
            continue
        k += 1
        if k < n and s[k] == '"':
            end_q = _scan_quoted(s, k, n)
            if end_q is None:
                break
            value, k = _unquote(s[k:end_q]), end_q
        else:
            mv = _UNQUOTED.match(s, k, n)
            value = mv.group() if mv else ""
            k = mv.end() if mv else k
        if k < n and s[k] == "]":
            out.append((key, value))
            i = k + 1
        else:
            i = j + 1
    return out


@dataclass(frozen=True)
class LogRecord:
    """One pingcap/log record."""

    time: str
    level: str
    caller: str
    message: str
    fields: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        for k, v in self.fields:
            if k == key:
                return v
        return None

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.fields if k == key]


def _record_at(s: str, m: re.Match[str], end: int) -> LogRecord | None:
    """The record whose header is ``m``, its text ending at ``end``."""
    p = m.end()
    if p >= end or s[p] != "[":
        return None
    if p + 1 < end and s[p + 1] == '"':
        q = _scan_quoted(s, p + 1, end)
        if q is None or q >= end or s[q] != "]":
            return None
        message, rest = _unquote(s[p + 1 : q]), q + 1
    else:
        close = s.find("]", p + 1, end)
        if close < 0 or s.find("[", p + 1, close) >= 0:
            return None
        message, rest = s[p + 1 : close], close + 1
    level = m.group(2)
    wanted = "summary" in message or message in _FIELD_MESSAGES or level in ("ERROR", "FATAL", "PANIC")
    fields = tuple(_parse_fields(s, rest, end)) if wanted else ()  # most log lines only need their message
    return LogRecord(m.group(1), level, m.group(3), message, fields)


def _json_record(line: str) -> LogRecord | None:
    """A ``--log-format json`` record (``{"level":"INFO","time":…,"caller":…,"message":…,k:v…}``)."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not is_br_json_record(doc):
        return None
    message = str(doc.get("message", doc.get("msg")))
    level = str(doc.get("level"))
    fields: list[tuple[str, str]] = []
    for key, value in doc.items():
        if key in ("level", "time", "caller", "message", "msg"):
            continue
        if isinstance(value, str):
            fields.append((str(key), value))
        elif isinstance(value, bool) or value is None:
            fields.append((str(key), json.dumps(value)))
        elif isinstance(value, int | float):
            fields.append((str(key), str(value)))
        else:
            fields.append((str(key), json.dumps(value, ensure_ascii=False)))
    return LogRecord(str(doc.get("time", "")), level.upper(), str(doc.get("caller", "")), message, tuple(fields))


def _segments(text: str) -> Iterator[str]:
    """The lines BR printed, whatever carried them (``tidbops.br.lines``); each redraw of a TTY progress
    bar (``\\r``) is a piece of its own."""
    return br_lines(text)


def _headerless_record(segment: str) -> LogRecord | None:
    """A record whose header was cut off or elided (the docs write ``*** ["Full Restore success summary"]
    *** [total-take=…]``): kept only when its message is a summary or one of BR's failure messages."""
    start = segment.find('["')
    if start < 0:
        return None
    close = _scan_quoted(segment, start + 1)
    if close is None or close >= len(segment) or segment[close] != "]":
        return None
    message = _unquote(segment[start + 1 : close])
    if message in _FAILURE_MESSAGES or message in _RETRYABLE_MESSAGES:
        level = "ERROR"
    elif message.endswith("summary") or " summary" in message:
        level = "INFO"
    else:
        return None
    return LogRecord("", level, "", message, tuple(_parse_fields(segment, close + 1, len(segment))))


def _pieces(segment: str) -> Iterator[str | LogRecord]:
    """A segment split into plain text and the log records in it (copy-pastes glue several together)."""
    stripped = segment.lstrip()
    if stripped.startswith("{") and ('"message"' in stripped or '"msg"' in stripped):
        record = _json_record(stripped)
        if record is not None:
            yield record
            return
    if "[" not in segment:
        yield segment
        return
    headers = list(_HEADER.finditer(segment))
    if not headers:
        headerless = _headerless_record(segment) if '"]' in segment else None
        yield headerless if headerless is not None else segment
        return
    if headers[0].start() > 0:
        yield segment[: headers[0].start()]
    for idx, m in enumerate(headers):
        end = headers[idx + 1].start() if idx + 1 < len(headers) else len(segment)
        record = _record_at(segment, m, end)
        yield record if record is not None else segment[m.start() : end]


# -------------------------------------------------------------------------------------- outcome


# where an error was read: cobra's ``Error:`` line, a Go panic (or runtime fatal error), a log record, a
# bare line of error text without any header (an error a wrapper passed on), or a failed summary
ErrorSource = Literal["stderr", "panic", "log", "text", "summary"]


@dataclass(frozen=True)
class BRErrorInfo:
    """One error BR reported. ``code`` is BR's code as printed, e.g. ``BR:Backup:ErrBackupGCSafepointExceeded``
    (its case kept: the class is sometimes lower-case, ``BR:restore:…``)."""

    message: str
    code: str | None
    source: ErrorSource
    unit: str | None = None

    @property
    def error_class(self) -> str | None:
        """``Backup`` in ``BR:Backup:ErrBackupGCSafepointExceeded``."""
        parts = self.code.split(":") if self.code else []
        return parts[1] if len(parts) >= 3 else None

    @property
    def error_name(self) -> str | None:
        parts = self.code.split(":") if self.code else []
        return parts[-1] if len(parts) >= 2 else None

    @property
    def message_without_code(self) -> str:
        """The message with the ``[code]`` tag removed (the tag's text follows it, e.g. ``backup GC …``)."""
        if not self.code:
            return self.message
        return self.message.replace(f"[{self.code}]", "", 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "error_class": self.error_class,
            "message": self.message,
            "source": self.source,
            "unit": self.unit,
        }


def _error(message: str, source: ErrorSource, unit: str | None = None) -> BRErrorInfo:
    text = message.strip()
    m = _CODE_BR.search(text) or _CODE_ANY.search(text)
    return BRErrorInfo(message=text, code=m.group(1) if m else None, source=source, unit=unit)


@dataclass(frozen=True)
class Progress:
    """The last progress BR showed: a TTY bar redraw, or a ``["progress"]`` log record (every 2 minutes)."""

    step: str
    percent: float | None
    source: Literal["tty", "log"]
    count: str | None = None
    speed: str | None = None
    elapsed: str | None = None
    remaining: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "percent": self.percent,
            "source": self.source,
            "count": self.count,
            "speed": self.speed,
            "elapsed": self.elapsed,
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class BRSummary:
    """One summary line: the command as BR named it, success or failure, and its raw fields.

    ``failed_units`` are the ranges or tables a pre-4.0 BR listed as failed (``["total restore tables: 2,
    total success: 1, total failed: 1, failed tables"="[shop.orders]"]``)."""

    command: str
    success: bool | None
    fields: dict[str, str]
    time: str | None = None
    errors: tuple[BRErrorInfo, ...] = ()
    failed_units: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "success": self.success,
            "time": self.time,
            "fields": dict(self.fields),
            "errors": [e.to_dict() for e in self.errors],
            "failed_units": list(self.failed_units),
        }


def _old_message_fields(rest: str) -> dict[str, str]:
    """``total backup ranges: 2, total success: 2, total take(Full backup time): 1.45s, …`` as a dict."""
    fields: dict[str, str] = {}
    for part in rest.split(", "):
        key, sep, value = part.partition(": ")
        if sep and key.strip():
            fields.setdefault(key.strip(), value.strip())
    return fields


# pre-4.0 summaries (pingcap/br pkg/summary/collector.go, v3.1 and v4.0 betas): on failure the counts
# become a field's key and the failed units its value, under the bare message "<cmd> summary"
_COUNTS_KEY = re.compile(r"^total [a-z][a-z ()+]{0,60}: \d{1,20}, (?:total success|success [a-z]+): \d{1,20}, ")
_COUNT = re.compile(r"([a-z][a-z ()+]{0,60}?): (\d{1,20})")
_ARRAY_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"|[^,]+')
_FAILED_COUNT_KEYS = ("failed ranges", "failed tables", "total failed")


def _failed_units(value: str) -> tuple[str, ...]:
    """The items of a zap string array as pingcap/log prints it: ``[a,b]``, items quoted when needed."""
    inner = value.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    units = [_unquote(item) if item.startswith('"') else item.strip() for item in _ARRAY_ITEM.findall(inner)]
    return tuple(u for u in units if u)


def _summary(record: LogRecord) -> BRSummary | None:
    msg = record.message.strip()
    fields: dict[str, str] = {}
    failed_units: tuple[str, ...] = ()
    counts = next(((k, v) for k, v in record.fields if _COUNTS_KEY.match(k)), None)
    m = _SUMMARY_NEW.match(msg)
    if m:
        command, success = m.group("cmd"), m.group("st") == "success"
    else:
        m = _SUMMARY_OLD.match(msg)
        if m:
            command, success = m.group("cmd"), m.group("st") == "Success"
            fields.update(_old_message_fields(m.group("rest")))
        else:
            m = _SUMMARY_OLDEST.match(msg) or (_SUMMARY_BARE.match(msg) if counts else None)
            if m is None or len(m.group("cmd")) > 60:
                return None
            command, success = m.group("cmd"), None  # pre-4.0 builds: no success word
            fields.update(_old_message_fields(m.groupdict().get("rest") or ""))
    if len(command) > 60 or "\n" in command:
        return None
    if counts is not None:  # "total restore tables: 2, total success: 1, total failed: 1, failed tables"
        for key, number in _COUNT.findall(counts[0]):
            fields.setdefault(key.strip(), number)
        failed_units = _failed_units(counts[1])
    units = record.get_all("unit-name") or record.get_all("unitName")
    errors: list[BRErrorInfo] = []
    messages = record.get_all("error") or [v.split("\n", 1)[0] for v in record.get_all("errorVerbose")]
    for idx, text in enumerate(messages):
        if text.strip():
            errors.append(_error(text, "summary", units[idx] if idx < len(units) else None))
    for key, value in record.fields:
        fields.setdefault(key, value)
    if success is None:  # no success word: the failed count says it (the counts field is only printed on failure)
        failed = next((n for k in _FAILED_COUNT_KEYS if (n := _to_int(fields.get(k))) is not None), None)
        if counts is not None or failed_units or errors:
            success = False
        elif failed is not None:
            success = failed == 0
    return BRSummary(
        command=command,
        success=success,
        fields=fields,
        time=record.time or None,
        errors=tuple(errors),
        failed_units=failed_units,
    )


# typed field -> (raw keys in order of preference, scale applied to parse_size / int values)
_SIZE_FIELDS: dict[str, tuple[tuple[str, float], ...]] = {
    "size_bytes": (("Size", 1.0),),
    "total_kv_size_bytes": (
        ("total-kv-size", 1.0),
        ("data-size", 1.0),
        ("total size(Byte)", 1.0),
        ("total size(MB)", _MIB),
    ),
    "average_speed_bytes_per_s": (("average-speed", 1.0), ("avg speed(Byte/s)", 1.0), ("avg speed(MB/s)", _MIB)),
    "data_size_after_compressed_bytes": (
        ("backup-data-size(after-compressed)", 1.0),
        ("restore-data-size(after-compressed)", 1.0),
        ("backup data size(after compressed)", 1.0),
        ("restore data size(after compressed)", 1.0),
    ),
    "total_size_bytes": (("total-size", 1.0),),
    "skipped_size_bytes": (("skipped-size-by-checkpoint", 1.0),),
}
_INT_FIELDS: dict[str, tuple[str, ...]] = {
    "backup_ts": ("BackupTS",),
    "total_kv": ("total-kv", "total kv"),
    "ranges_total": (
        "total-ranges",
        "total backup ranges",
        "total restore files",
        "total restore tables",
        "total restore operations (split region + restore files)",
    ),
    "ranges_succeeded": ("ranges-succeed", "total success", "success ranges", "success tables"),
    "ranges_failed": ("ranges-failed", "total failed", "failed ranges", "failed tables"),
    "backup_total_ranges": ("backup-total-ranges",),
    "backup_total_regions": ("backup-total-regions", "backup total regions"),
    "restore_start_ts": ("source-start-point", "restore-from"),
    "restore_end_ts": ("source-end-point", "restore-to"),
    "target_end_ts": ("target-end-point",),
    "total_kv_count": ("total-kv-count",),
    "skipped_kv_count": ("skipped-kv-count-by-checkpoint",),
}
_DURATION_FIELDS: dict[str, tuple[str, ...]] = {
    "checksum_seconds": ("backup-checksum", "backup checksum", "restore-checksum", "restore checksum"),
    "fast_checksum_seconds": ("backup-fast-checksum", "backup fast checksum"),
}
_TAKE_KEYS = ("total-take", "total take(real time)", "total take(s)")


def _summary_take(fields: Mapping[str, str]) -> float | None:
    for key in _TAKE_KEYS:
        if key in fields:
            value = fields[key]
            bare = re.fullmatch(r"[ \t]*[0-9]+(\.[0-9]+)?[ \t]*", value)  # ASCII: float() refuses \x1c-\x1f
            return float(value) if bare else parse_go_duration(value)
    for key, value in fields.items():  # v4: "total take(Full backup time): 31.8s" without the real time
        if key.startswith("total take("):
            return parse_go_duration(value)
    return None


@dataclass(frozen=True)
class BROutcome:
    """What a BR run printed, parsed. ``success`` is ``None`` when the output does not say.

    Typed fields come from the summaries (the first summary that has a field wins; ``total_take_seconds``
    adds up all summaries, e.g. the snapshot and log phases of PITR). ``fields`` holds every summary's
    raw strings (first occurrence wins); ``summaries`` keeps each summary on its own.
    """

    recognised: bool
    command: str | None = None
    success: bool | None = None
    summaries: tuple[BRSummary, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    errors: tuple[BRErrorInfo, ...] = ()
    log_path: str | None = None
    warnings: tuple[str, ...] = ()
    progress: Progress | None = None
    banners: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    log_min_ts: int | None = None
    log_max_ts: int | None = None
    backup_ts: int | None = None
    size_bytes: int | None = None
    total_kv: int | None = None
    total_kv_size_bytes: int | None = None
    total_take_seconds: float | None = None
    average_speed_bytes_per_s: int | None = None
    data_size_after_compressed_bytes: int | None = None
    ranges_total: int | None = None
    ranges_succeeded: int | None = None
    ranges_failed: int | None = None
    backup_total_ranges: int | None = None
    backup_total_regions: int | None = None
    checksum_seconds: float | None = None
    fast_checksum_seconds: float | None = None
    restore_start_ts: int | None = None
    restore_end_ts: int | None = None
    target_end_ts: int | None = None
    total_kv_count: int | None = None
    total_size_bytes: int | None = None
    skipped_kv_count: int | None = None
    skipped_size_bytes: int | None = None
    result_note: str | None = None

    @property
    def backup_time(self) -> datetime | None:
        """The UTC time of ``backup_ts`` (millisecond precision)."""
        return _tso_time(self.backup_ts)

    @property
    def restore_end_time(self) -> datetime | None:
        return _tso_time(self.restore_end_ts)

    @property
    def restore_start_time(self) -> datetime | None:
        return _tso_time(self.restore_start_ts)

    @property
    def not_fresh(self) -> bool:
        """BR refused to restore because the target has user databases: the ``#####`` banner, or the error
        ``ErrRestoreNotFreshCluster`` (in whatever case its class came)."""
        return any("not fresh" in b for b in self.banners) or any(
            e.error_name == "ErrRestoreNotFreshCluster" for e in self.errors
        )

    @property
    def primary_error(self) -> BRErrorInfo | None:
        """The error that explains the failure: BR's ``Error:`` line, else ``br failed``, else a summary's."""
        return min(self.errors, key=lambda e: _SOURCE_RANK[e.source], default=None)

    def normalised_fields(self) -> dict[str, int | float | str | None]:
        return {k: normalise_field(k, v) for k, v in self.fields.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe rendering (times as ISO-8601 UTC)."""
        typed = {
            name: getattr(self, name)
            for name in (
                "backup_ts",
                "size_bytes",
                "total_kv",
                "total_kv_size_bytes",
                "total_take_seconds",
                "average_speed_bytes_per_s",
                "data_size_after_compressed_bytes",
                "ranges_total",
                "ranges_succeeded",
                "ranges_failed",
                "backup_total_ranges",
                "backup_total_regions",
                "checksum_seconds",
                "fast_checksum_seconds",
                "restore_start_ts",
                "restore_end_ts",
                "target_end_ts",
                "total_kv_count",
                "total_size_bytes",
                "skipped_kv_count",
                "skipped_size_bytes",
                "log_min_ts",
                "log_max_ts",
            )
        }
        typed["backup_time"] = iso_or_none(self.backup_time)
        typed["restore_start_time"] = iso_or_none(self.restore_start_time)
        typed["restore_end_time"] = iso_or_none(self.restore_end_time)
        return {
            "recognised": self.recognised,
            "command": self.command,
            "success": self.success,
            **typed,
            "result_note": self.result_note,
            "fields": dict(self.fields),
            "normalised": self.normalised_fields(),
            "summaries": [s.to_dict() for s in self.summaries],
            "errors": [e.to_dict() for e in self.errors],
            "log_path": self.log_path,
            "warnings": list(self.warnings),
            "progress": self.progress.to_dict() if self.progress else None,
            "not_fresh": self.not_fresh,
            "banners": list(self.banners),
            "notes": list(self.notes),
        }


_SOURCE_RANK = {"stderr": 0, "panic": 1, "log": 2, "text": 3, "summary": 4}


class _Collector:
    def __init__(self) -> None:
        self.recognised = False
        self.summaries: list[BRSummary] = []
        self.errors: list[BRErrorInfo] = []
        self.error_keys: set[tuple[str | None, str]] = set()
        self.log_path: str | None = None
        self.warnings: list[str] = []
        self.progress: Progress | None = None
        self.banners: list[str] = []
        self.notes: list[str] = []
        self.log_min_ts: int | None = None
        self.log_max_ts: int | None = None
        self.banner_open = False
        self.open_error: int | None = None  # index of the stderr error whose "caused by:" lines may follow
        self.retryable: list[BRErrorInfo] = []  # errors of a step BR retries, since the last success summary

    def add_error(self, err: BRErrorInfo) -> None:
        """Keep each error once; the same text seen on stderr and in the log keeps the better source."""
        key = (err.code, err.message_without_code.strip())
        if key in self.error_keys:
            for idx, old in enumerate(self.errors):
                if (old.code, old.message_without_code.strip()) == key:
                    if _SOURCE_RANK[err.source] < _SOURCE_RANK[old.source]:
                        self.errors[idx] = BRErrorInfo(err.message, err.code, err.source, old.unit or err.unit)
                    break
            return
        if len(self.errors) >= _MAX_ERRORS:
            return
        self.error_keys.add(key)
        self.errors.append(err)

    def warn(self, text: str) -> None:
        text = text.strip()
        if text and text not in self.warnings and len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(text)

    def text(self, piece: str) -> None:
        s = piece.strip()
        if not s:
            return
        if self.open_error is not None and s.startswith("caused by: "):
            # an error whose text spans lines (the S3 SDK's "…: RequestError: send request failed\ncaused
            # by: …: [BR:ExternalStorage:ErrStorageUnknown]…"): the code is often on the last line
            self.recognised = True
            old = self.errors[self.open_error]
            merged = _error(f"{old.message}\n{s}", old.source, old.unit)
            self.errors[self.open_error] = merged
            self.error_keys.add((merged.code, merged.message_without_code.strip()))
            return
        self.open_error = None
        detail = _DETAIL.search(s) or _OLD_LOGFILE.match(s)
        if detail:
            self.recognised = True
            self.log_path = self.log_path or detail.group(1)
        bar = _BAR.match(s)
        if bar:
            self.recognised = True
            self.progress = Progress(step=bar.group("name").strip(), percent=float(bar.group("pct")), source="tty")
        consumed = False
        idx = _console_start(s, "Error: ")
        if idx >= 0:
            self.recognised = consumed = True
            before_count = len(self.errors)
            self.add_error(_error(s[idx + len("Error: ") :], "stderr"))
            if len(self.errors) > before_count:
                self.open_error = len(self.errors) - 1
        for word in ("panic: ", "fatal error: "):  # a Go panic, or the runtime's (out of memory, say)
            idx = _console_start(s, word)
            if idx >= 0:
                self.recognised = consumed = True
                self.add_error(_error(s[idx + len(word) :], "panic"))
        if _BANNER_RULE.match(s):  # BR frames its restore refusals in lines of '#'
            self.banner_open = not self.banner_open
        elif self.banner_open and s.startswith("# "):
            self.banner(s[2:])
        else:
            self.banner_open = False
            if "the target cluster is not" in s and any(r in s for r in _REFUSALS):  # frame dropped or joined
                for part in _BANNER_SPLIT.split(s):
                    self.banner(part)
        if not consumed and "[BR:" in s and _HEADER.match(s) is None and _CODE_BR.search(s) is not None:
            # bare error text without a header (an error a wrapper passed on): "…: [BR:restore:…]…"
            self.recognised = True
            self.add_error(_error(s, "text"))
        if "command is skipped due to checkpoint mode" in s:
            self.recognised = True
            self.notes.append(s)
        for phrase in _WARNING_PHRASES:
            if phrase in s:
                self.warn(s)

    def banner(self, text: str) -> None:
        banner = text.strip()
        self.recognised = True
        if banner and banner not in self.banners:
            self.banners.append(banner)

    def record(self, record: LogRecord) -> None:
        self.recognised = True
        self.open_error = None
        message = record.message
        level = record.level
        if "summary" in message:
            summary = _summary(record)
            if summary is not None:
                if any(s.command == summary.command and s.fields == summary.fields for s in self.summaries):
                    return  # the same line from stdout and from the log file (BR writes summaries to both)
                self.summaries.append(summary)
                for err in summary.errors:
                    self.add_error(err)
                if summary.success:  # BR retried what failed before and got through
                    for err in self.retryable:
                        self.warn(f"retried: {err.message}")
                    self.retryable.clear()
                return
        if message == "progress":
            step = record.get("step") or ""
            pct = _PERCENT.match(record.get("progress") or "")
            self.progress = Progress(
                step=step,
                percent=float(pct.group(1)) if pct else None,
                source="log",
                count=record.get("count"),
                speed=record.get("speed"),
                elapsed=record.get("elapsed"),
                remaining=record.get("remaining"),
            )
            return
        if message == "log metadata":
            self.log_min_ts = _to_int(record.get("log-min-ts")) or self.log_min_ts
            self.log_max_ts = _to_int(record.get("log-max-ts")) or self.log_max_ts
            return
        if level in ("ERROR", "FATAL", "PANIC"):
            error = record.get("error") or (record.get("errorVerbose") or "").split("\n", 1)[0]
            if message in _FAILURE_MESSAGES or level != "ERROR":
                self.add_error(_error(error or message, "log"))
                return
            if message in _RETRYABLE_MESSAGES or any(p in error for p in _RETRYABLE_ERRORS):
                err = _error(f"{message}: {error}" if error else message, "log")
                if len(self.retryable) < _MAX_ERRORS and err not in self.retryable:
                    self.retryable.append(err)
                return
        if level == "WARN":
            self.warn(message)

    def outcome(self) -> BROutcome:
        for err in self.retryable:  # no success followed: the step failed for good (or the output ends here)
            self.add_error(err)
        self.retryable.clear()
        refused = [b for b in self.banners if any(b.startswith(r.split(",")[0]) for r in _REFUSALS)]
        if refused and not self.errors:  # BR prints the banner only when it refuses, the error after it
            self.add_error(_error(refused[0], "text"))
        merged: dict[str, str] = {}
        for s in self.summaries:
            for k, v in s.fields.items():
                merged.setdefault(k, v)
        failed = bool(self.errors) or any(s.success is False for s in self.summaries)
        if failed:
            success: bool | None = False
        elif self.summaries and all(s.success is True for s in self.summaries):
            success = True
        else:
            success = None
        command = self.summaries[-1].command if self.summaries else None
        typed: dict[str, Any] = {}
        for name, size_keys in _SIZE_FIELDS.items():
            typed[name] = _first_size(merged, size_keys)
        for name, keys in _INT_FIELDS.items():
            typed[name] = next((n for k in keys if (n := _to_int(merged.get(k))) is not None), None)
        for name, keys in _DURATION_FIELDS.items():
            durations = (parse_go_duration(merged[k]) for k in keys if k in merged)
            typed[name] = next((d for d in durations if d is not None), None)
        takes = [t for s in self.summaries if (t := _summary_take(s.fields)) is not None]
        typed["total_take_seconds"] = sum(takes) if takes else None
        return BROutcome(
            recognised=self.recognised,
            command=command,
            success=success,
            summaries=tuple(self.summaries),
            fields=merged,
            errors=tuple(self.errors),
            log_path=self.log_path,
            warnings=tuple(self.warnings),
            progress=self.progress,
            banners=tuple(self.banners),
            notes=tuple(self.notes),
            log_min_ts=self.log_min_ts,
            log_max_ts=self.log_max_ts,
            result_note=merged.get("Result"),
            **typed,
        )


def _first_size(fields: Mapping[str, str], keys: Iterable[tuple[str, float]]) -> int | None:
    for key, scale in keys:
        if key not in fields:
            continue
        if scale == 1.0:
            size = parse_size(fields[key])
            if size is not None:
                return size
        elif m := _MB_NUMBER.match(fields[key]):  # v4 "(MB)" figures are MiB with two decimals
            return round(float(m.group(1)) * scale)
    return None


def _console_start(s: str, word: str) -> int:
    """Where ``word`` (``Error: ``, ``panic: ``) starts a console message in ``s``: at its start, or right
    after a TTY progress bar it was glued to; -1 if it does not."""
    idx = s.find(word)
    if idx < 0:
        return -1
    before = s[:idx].rstrip()
    return idx if not before or before.endswith("%") or _BAR.match(before) else -1


def _interesting(segment: str) -> bool:
    for marker in _MARKERS:
        if marker in segment:
            return True
    return False


def parse_br_output(text: str) -> BROutcome:
    """Parse BR's console output and/or log file text. Never raises; unknown input gives ``recognised=False``."""
    if not isinstance(text, str):
        return BROutcome(recognised=False)
    collector = _Collector()
    for segment in _segments(text):
        if collector.recognised and not collector.banner_open and not _interesting(segment):
            continue  # once BR output is recognised, ordinary INFO/DEBUG lines carry nothing we read
        for piece in _pieces(segment):
            if isinstance(piece, LogRecord):
                collector.record(piece)
            else:
                collector.text(piece)
    return collector.outcome()


def parse_log_metadata(text: str) -> tuple[int, int] | None:
    """``(log_min_ts, log_max_ts)`` from ``br log metadata``'s ``["log metadata"]`` line; ``None`` if absent."""
    outcome = parse_br_output(text)
    if outcome.log_min_ts is None or outcome.log_max_ts is None:
        return None
    return outcome.log_min_ts, outcome.log_max_ts


# ------------------------------------------------------------------------------------ debug checksum

CHECKSUM_SUCCEED = "backup data checksum succeed!"
_CHECKSUM_MISMATCH = re.compile(
    r"backup data checksum failed: (?P<file>[^\n]{1,1024}?) may be changed\s{0,8}"
    r"calculated sha256 is (?P<calc>[0-9a-fA-F]{0,128}),?\s{0,8}origin sha256 is (?P<orig>[0-9a-fA-F]{0,128})"
)
_MAX_ERROR_LINES = 20


@dataclass(frozen=True)
class ChecksumCheck:
    """What ``br debug checksum`` said about one backup (verification tier 2).

    ``ok``: BR exited 0 and printed ``backup data checksum succeed!``. Otherwise ``error`` is BR's error
    (code and text), and a data file whose SHA-256 differs from ``backupmeta``'s is named with both
    hashes (``ErrBackupChecksumMismatch``).
    """

    ok: bool
    exit_code: int | None = None
    error: BRErrorInfo | None = None
    mismatched_file: str | None = None
    calculated_sha256: str | None = None
    origin_sha256: str | None = None
    log_path: str | None = None

    def reason(self) -> str:
        """One line: what BR found."""
        if self.ok:
            return f"ok: {CHECKSUM_SUCCEED} (BR re-read every data file against backupmeta's sha256)"
        if self.mismatched_file is not None:
            code = f"[{self.error.code}] " if self.error and self.error.code else ""
            return (
                f"{code}{self.mismatched_file} may be changed: its sha256 is {self.calculated_sha256 or '?'}, "
                f"backupmeta says {self.origin_sha256 or '?'}"
            )
        if self.error is not None:
            text = " ".join(self.error.message_without_code.split())
            return f"[{self.error.code}] {text}" if self.error.code else text
        if self.exit_code not in (0, None):
            return f"br exited {self.exit_code} and printed no error"
        return f"br printed neither {CHECKSUM_SUCCEED!r} nor an error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "error": self.error.to_dict() if self.error else None,
            "mismatched_file": self.mismatched_file,
            "calculated_sha256": self.calculated_sha256,
            "origin_sha256": self.origin_sha256,
            "log_path": self.log_path,
            "reason": self.reason(),
        }


def _multiline_error(lines: list[str]) -> BRErrorInfo | None:
    """The last ``Error: …`` of cobra with the lines that continue it: BR's annotations may start with a
    newline (``debug checksum``'s mismatch text spans four lines, the code on the last)."""
    start = max((i for i, ln in enumerate(lines) if ln.lstrip().startswith("Error:")), default=None)
    if start is None:
        return None
    parts = [lines[start].lstrip()[len("Error:") :].strip()]
    for line in lines[start + 1 : start + 1 + _MAX_ERROR_LINES]:
        if _HEADER.match(line) or _DETAIL.search(line):
            break
        parts.append(line.strip())
    text = "\n".join(p for p in parts if p)
    return _error(text, "stderr") if text else None


def parse_debug_checksum(text: str, exit_code: int | None = None) -> ChecksumCheck:
    """Read what ``br debug checksum`` printed (stdout, then stderr) and its exit code. Never raises."""
    if not isinstance(text, str):
        return ChecksumCheck(ok=False, exit_code=exit_code)
    lines = [ln for seg in _segments(text) if (ln := seg.rstrip())]
    outcome = parse_br_output(text)
    error = _multiline_error(lines) or outcome.primary_error
    succeeded = any(ln.strip() == CHECKSUM_SUCCEED for ln in lines)
    ok = succeeded and error is None and exit_code in (0, None)
    mismatch = _CHECKSUM_MISMATCH.search(error.message) if error is not None else None
    return ChecksumCheck(
        ok=ok,
        exit_code=exit_code,
        error=error,
        mismatched_file=mismatch.group("file").strip() if mismatch else None,
        calculated_sha256=mismatch.group("calc").lower() if mismatch else None,
        origin_sha256=mismatch.group("orig").lower() if mismatch else None,
        log_path=outcome.log_path,
    )


# ------------------------------------------------------------------------------------ log status


@dataclass(frozen=True)
class StoreCheckpoint:
    store_id: int
    checkpoint_ts: int | None
    checkpoint_time: datetime | None
    gap_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "checkpoint_ts": self.checkpoint_ts,
            "checkpoint_time": iso_or_none(self.checkpoint_time),
            "gap_seconds": self.gap_seconds,
        }


@dataclass(frozen=True)
class LogTaskError:
    """An error a TiKV store reported for the task (``store_id`` is ``None`` for a pause payload)."""

    store_id: int | None
    code: str | None
    message: str | None
    happen_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "code": self.code,
            "message": self.message,
            "happen_at": iso_or_none(self.happen_at),
        }


@dataclass(frozen=True)
class LogTaskStatus:
    """One log backup task as ``br log status`` shows it.

    ``status`` is what BR printed (``PAUSED`` reads as ``PAUSE``); released builds' JSON has no status
    (pingcap/tidb#57959), so it is derived — ``ERROR`` when stores reported errors — with
    ``status_derived=True``, or ``None`` when nothing tells. From the table form, TSOs are rebuilt from
    the printed dates (millisecond precision, logical 0).
    """

    name: str
    status: TaskState | None
    status_derived: bool = False
    start_ts: int | None = None
    end_ts: int | None = None
    checkpoint_ts: int | None = None
    checkpoint_source: Literal["global", "store-min"] | None = None
    storage: str | None = None
    gap_seconds: float | None = None
    estimate_qps: float | None = None
    store_checkpoints: tuple[StoreCheckpoint, ...] = ()
    errors: tuple[LogTaskError, ...] = ()
    table_filter: tuple[str, ...] = ()
    pause: dict[str, str] = field(default_factory=dict)

    @property
    def checkpoint_time(self) -> datetime | None:
        return _tso_time(self.checkpoint_ts)

    @property
    def start_time(self) -> datetime | None:
        return _tso_time(self.start_ts)

    def lag_seconds(self, now: datetime) -> float | None:
        """``now`` minus the checkpoint; ``None`` without a checkpoint."""
        cp = self.checkpoint_time
        return (now - cp).total_seconds() if cp else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "status_derived": self.status_derived,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "checkpoint_ts": self.checkpoint_ts,
            "checkpoint_time": iso_or_none(self.checkpoint_time),
            "checkpoint_source": self.checkpoint_source,
            "storage": self.storage,
            "gap_seconds": self.gap_seconds,
            "estimate_qps": self.estimate_qps,
            "store_checkpoints": [c.to_dict() for c in self.store_checkpoints],
            "errors": [e.to_dict() for e in self.errors],
            "table_filter": list(self.table_filter),
            "pause": dict(self.pause),
        }


_STATUS_WORD = re.compile(r"\b(NORMAL|PAUSED?|ERROR)\b")
_STATUS_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ([+-])(\d{2}):?(\d{2})"
    r"(?: [A-Za-z][A-Za-z0-9+-]{0,9})?"
)
_GAP = re.compile(r"gap=\s*(-?[0-9][0-9a-zµμ.]*)")
_TOTAL = re.compile(r"Total (\d+) Tasks?\.")
_BLOCK = re.compile(r"^\s*> #\d+ <\s*$")
_ROW = re.compile(r"^( *)([^\s:]+):(?: (.*))?$")
_KNOWN_KEY = re.compile(
    r"name|status|start|end|storage|speed\(est\.\)|checkpoint\[(?:global|store=\d+)\]|"
    r"error(?:-happen-at|-message)?\[store=\d+\]|pause-[a-z-]+(?:\[[a-z]+\])?"
)
_STORE_KEY = re.compile(r"^(checkpoint|error|error-happen-at|error-message)\[store=(\d{1,20})\]$")
# a task table whose lines a collector joined into one: where each row, block and total begins. Keys of
# plain words only after a space (they are right-aligned, so padded); the others anywhere (the longest
# key is flush left, and with lines joined by nothing it is glued to the value before it)
_JOINED = re.compile(
    r"(?P<block>> #\d{1,6} <)|(?P<total>[●○]? ?(?:Total \d{1,6} Tasks?\.|No Task Yet\.))"
    r"|(?:(?<=[\s<.])|^)(?P<plain>name|status|start|end|storage)(?=: )"
    r"|(?P<marked>speed\(est\.\)|checkpoint\[(?:global|store=\d{1,20})\]|error(?:-happen-at|-message)?\[store=\d{1,20}\]"
    r"|pause-[a-z]+(?:-[a-z]+)*(?:\[[a-z]+\])?)(?=: )"
)


def _status_date(value: str) -> tuple[datetime | None, float | None]:
    """A status-table date (``2022-07-25 22:52:15.518 +0800`` or Go's ``… +0800 CST``) and its ``gap=``."""
    dt: datetime | None = None
    m = _STATUS_DATE.search(value)
    if m:
        y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
        micros = int((m.group(7) or "0")[:6].ljust(6, "0"))
        sign = -1 if m.group(8) == "-" else 1
        try:
            offset = timezone(sign * timedelta(hours=int(m.group(9)), minutes=int(m.group(10))))
            dt = datetime(y, mo, d, h, mi, s, micros, tzinfo=offset)
        except (ValueError, OverflowError):
            dt = None
    g = _GAP.search(value)
    gap = parse_go_duration(g.group(1)) if g else None
    return dt, gap


def _dt_tso(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    try:
        return tso.from_datetime(dt)
    except (ValueError, OverflowError):
        return None


def _state(value: str | None) -> TaskState | None:
    m = _STATUS_WORD.search(value or "")
    if not m:
        return None
    word = m.group(1)
    if word == "NORMAL":
        return "NORMAL"
    if word == "ERROR":
        return "ERROR"
    return "PAUSE"


def _unjoin(line: str) -> list[str]:
    """A ``log status`` table joined into one line (with a space or with nothing), as its lines again.

    Each key opens a row once per task, and the plain ones (name, status, start, end, storage) only
    before the others, as BR prints them: a ``status: `` inside an error message is text. A value
    BR wrapped at the terminal's width went on after exactly ``longest key + 2`` spaces; those are
    taken out again, so a wrapped storage URL or error message reads whole."""
    tokens: list[tuple[str, str, int, int]] = []  # (kind, text, start, end)
    seen: set[str] = set()
    marked = False
    for m in _JOINED.finditer(line):
        if m.group("block") or m.group("total"):
            tokens.append(("mark", m.group().strip(), m.start(), m.end()))
            seen, marked = set(), False
            continue
        key = m.group("plain") or m.group("marked")
        if key in seen or (m.group("plain") and marked):  # BR prints the plain rows first, once
            continue
        seen.add(key)
        marked = marked or bool(m.group("marked"))
        tokens.append(("key", key, m.start(), m.end() + 2))
    if not any(kind == "key" for kind, *_ in tokens):
        return [line]
    out = [line[: tokens[0][2]]] if line[: tokens[0][2]].strip() else []
    i = 0
    while i < len(tokens):
        kind, text, _, _ = tokens[i]
        if kind == "mark":
            out.append(text)
            i += 1
            continue
        j = i
        while j < len(tokens) and tokens[j][0] == "key":
            j += 1
        rows = tokens[i:j]  # one task's rows
        width = max(len(k) for _, k, _, _ in rows)
        prev_end = tokens[i - 1][3] if i > 0 else 0
        pad = tokens[i][2] - prev_end
        sep = min(max(pad - (width - len(rows[0][1])), 0), 1) if i > 0 else 1
        for n, (_, key, _, value_start) in enumerate(rows):
            value_end = tokens[i + n + 1][2] if i + n + 1 < len(tokens) else len(line)
            out.append(f"{key}: {_unwrap_value(line[value_start:value_end], width + 2 + sep).strip()}")
        i = j
    return out


def _unwrap_value(value: str, indent: int) -> str:
    """A joined value without the ``indent`` spaces that began each of its wrapped lines."""
    if " " * indent not in value:
        return value
    return re.sub(f" {{{indent},}}", lambda m: " " * (len(m.group()) - indent), value)


def _status_lines(text: str) -> list[str]:
    """The lines of ``br log status`` output, however it was carried (``tidbops.br.lines``), a table
    joined into one line split into its rows again."""
    lines: list[str] = []
    for line in br_lines(text):
        if "name: " in line and "status: " in line:
            lines.extend(_unjoin(line))
        else:
            lines.append(line)
    return lines


def _table_rows(lines: list[str]) -> list[tuple[str, str]]:
    """``key: value`` rows of one task table, with wrapped values joined back together."""
    rows: list[list[str]] = []
    offset: int | None = None
    compact = False
    for line in lines:
        if not line.strip() or _HEADER.search(line) or _DETAIL.search(line):
            continue
        if offset is not None and rows and len(line) > offset and not line[:offset].strip() and not compact:
            rows[-1][1] += line[offset:]  # a wrapped value: exactly `offset` spaces, then the next chunk
            continue
        m = _ROW.match(line)
        if m:
            key = m.group(2)
            colon = len(m.group(1)) + len(key)
            aligned = offset is not None and colon + 2 == offset
            if _KNOWN_KEY.fullmatch(key) or aligned:
                value = m.group(3) or ""
                if offset is None and value:
                    offset = colon + 2
                compact = not value  # narrow terminals print "key:" then the value on the next lines
                rows.append([key, value])
                continue
        if rows and compact:
            rows[-1][1] += line.strip()
    return [(k, v.strip()) for k, v in rows]


def _task_from_rows(rows: list[tuple[str, str]]) -> LogTaskStatus | None:
    values: dict[str, str] = {}
    stores: dict[int, dict[str, str]] = {}
    pause: dict[str, str] = {}
    for key, value in rows:
        sm = _STORE_KEY.match(key)
        if sm:
            stores.setdefault(int(sm.group(2)), {})[sm.group(1)] = value
        elif key.startswith("pause-"):
            pause[key] = value
        else:
            values.setdefault(key, value)
    if "name" not in values:
        return None
    checkpoints: list[StoreCheckpoint] = []
    errors: list[LogTaskError] = []
    for store_id in sorted(stores):
        info = stores[store_id]
        if "checkpoint" in info:
            store_dt, store_gap = _status_date(info["checkpoint"])
            store_utc = utc(store_dt) if store_dt else None
            checkpoints.append(StoreCheckpoint(store_id, _dt_tso(store_dt), store_utc, store_gap))
        if any(k.startswith("error") for k in info):
            happen, _ = _status_date(info.get("error-happen-at", ""))
            happen_utc = utc(happen) if happen else None
            errors.append(
                LogTaskError(store_id, info.get("error") or None, info.get("error-message") or None, happen_utc)
            )
    if "pause-payload[errcode]" in pause or "pause-payload[errmesg]" in pause:
        errors.append(
            LogTaskError(None, pause.get("pause-payload[errcode]") or None, pause.get("pause-payload[errmesg]") or None)
        )
    start, _ = _status_date(values.get("start", ""))
    end, _ = _status_date(values.get("end", ""))
    checkpoint_ts: int | None = None
    source: Literal["global", "store-min"] | None = None
    gap: float | None = None
    if "checkpoint[global]" in values:
        dt, gap = _status_date(values["checkpoint[global]"])
        checkpoint_ts, source = _dt_tso(dt), "global" if dt else None
    if checkpoint_ts is None and checkpoints:
        known = [c for c in checkpoints if c.checkpoint_ts is not None]
        if known:
            lowest = min(known, key=lambda c: c.checkpoint_ts or 0)
            checkpoint_ts, source, gap = lowest.checkpoint_ts, "store-min", lowest.gap_seconds
    qps_match = re.match(r"\s*(\d+(?:\.\d+)?)", values.get("speed(est.)", ""))
    return LogTaskStatus(
        name=values["name"],
        status=_state(values.get("status")),
        start_ts=_dt_tso(start),
        end_ts=_dt_tso(end),
        checkpoint_ts=checkpoint_ts,
        checkpoint_source=source,
        storage=values.get("storage") or None,
        gap_seconds=gap,
        estimate_qps=float(qps_match.group(1)) if qps_match else None,
        store_checkpoints=tuple(checkpoints),
        errors=tuple(errors),
        pause=pause,
    )


def _json_tasks(lines: Iterable[str]) -> list[LogTaskStatus] | None:
    """The ``--json`` form: one line holding a JSON array of tasks (``[]`` when there are none)."""
    for line in lines:
        s = line.strip()
        if not (s == "[]" or (s.startswith("[{") and s.endswith("}]"))):
            continue
        try:
            doc = json.loads(s)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, list) and all(isinstance(d, dict) and isinstance(d.get("name"), str) for d in doc):
            return [_json_task(d) for d in doc]
    return None


def _json_task(d: Mapping[str, Any]) -> LogTaskStatus:
    printed = d.get("status")
    status = _state(printed) if isinstance(printed, str) else None
    errors: list[LogTaskError] = []
    raw_errors = d.get("last_errors")
    for item in raw_errors if isinstance(raw_errors, list) else []:
        if not isinstance(item, dict):
            continue
        raw_inner = item.get("last_error")
        inner: Mapping[str, Any] = raw_inner if isinstance(raw_inner, dict) else {}
        happen_ms = _to_int(inner.get("happen_at"))
        happen: datetime | None = None
        if happen_ms is not None and 0 < happen_ms < 1 << 47:
            try:
                happen = datetime.fromtimestamp(happen_ms / 1000, tz=UTC)
            except (ValueError, OverflowError, OSError):
                happen = None
        code, message = inner.get("error_code"), inner.get("error_message")
        errors.append(
            LogTaskError(
                _to_int(item.get("store_id")) if item.get("store_id") is not None else _to_int(inner.get("store_id")),
                code if isinstance(code, str) else None,
                message if isinstance(message, str) else None,
                happen,
            )
        )
    derived = False
    if status is None and errors:
        status, derived = "ERROR", True
    checkpoints: list[StoreCheckpoint] = []
    progress = d.get("progress")
    for item in progress if isinstance(progress, list) else []:
        if isinstance(item, dict) and (sid := _to_int(item.get("store_id"))) is not None:
            cp = _to_int(item.get("checkpoint"))
            checkpoints.append(StoreCheckpoint(sid, cp or None, _tso_time(cp)))
    checkpoint = _to_int(d.get("checkpoint")) or None
    source: Literal["global", "store-min"] | None = "global" if checkpoint else None
    if checkpoint is None:
        known = [c.checkpoint_ts for c in checkpoints if c.checkpoint_ts]
        if known:
            checkpoint, source = min(known), "store-min"
    qps = d.get("estimate_qps")
    filters = d.get("table_filter")
    storage = d.get("storage")
    return LogTaskStatus(
        name=str(d.get("name")),
        status=status,
        status_derived=derived,
        start_ts=_to_int(d.get("start_ts")) or None,
        end_ts=_to_int(d.get("end_ts")) or None,
        checkpoint_ts=checkpoint,
        checkpoint_source=source,
        storage=storage if isinstance(storage, str) else None,
        estimate_qps=float(qps) if isinstance(qps, int | float) and not isinstance(qps, bool) else None,
        store_checkpoints=tuple(checkpoints),
        errors=tuple(errors),
        table_filter=tuple(f for f in filters if isinstance(f, str)) if isinstance(filters, list) else (),
    )


def is_log_status_output(text: str) -> bool:
    """Whether ``text`` is ``br log status`` output (either form), including "no task"."""
    if not isinstance(text, str):
        return False
    lines = list(br_lines(text))
    if any("No Task Yet." in line or _TOTAL.search(line) for line in lines):
        return True
    return _json_tasks(lines) is not None


def parse_log_status(text: str) -> list[LogTaskStatus]:
    """Every task in ``br log status`` output (table or ``--json``); ``[]`` for "No Task Yet." or nothing.

    Never raises. A task table without a ``name`` row is skipped.
    """
    if not isinstance(text, str):
        return []
    lines = _status_lines(text)
    from_json = _json_tasks(lines)
    if from_json is not None:
        return from_json
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if _BLOCK.match(line):
            current = []
            blocks.append(current)
        elif current is not None:
            if _TOTAL.search(line) or "No Task Yet." in line:
                current = None
            else:
                current.append(line)
    if not blocks:
        start = next((i for i, ln in enumerate(lines) if re.match(r"^\s*name: ", ln)), None)
        if start is None:
            return []
        blocks = [lines[start:]]
    tasks: list[LogTaskStatus] = []
    for block in blocks:
        task = _task_from_rows(_table_rows(block))
        if task is not None:
            tasks.append(task)
    return tasks
