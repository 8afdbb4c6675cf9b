"""BR's output as the lines BR printed, whatever carried it to an operator. Never raises.

BR's text seldom reaches us as BR wrote it. On its way it may be:

* prefixed line by line: a klog header when TiDB Operator's backup-manager logs BR's stdout
  (``I0917 21:22:22.694198       9 backup.go:306] …``, ``klog.Info`` of each line; stderr as one
  multi-line message, so only its first line carries the header), a container runtime's
  ``2024-09-17T21:22:22.694198123Z stdout F …`` (CRI; ``P`` marks a line the runtime split, joined
  back here) or ``kubectl logs --timestamps``' RFC 3339 time, or a CI runner's ``*** ``;
* quoted inside a JSON string, escaped quotes and ``\\n`` included: one document a line as Docker's
  json-file driver (``{"log": "…\\n", "stream": "stdout", …}``) or Airflow 3's task log
  (``{"event": "…", "level": "info", …}``) write it, the whole output as one JSON string, or a
  ``key="…"`` string inside some other line (logfmt);
* coloured (ANSI), with Windows line ends, and with a TTY progress bar redrawn in place (``\\r``).

``br_lines`` undoes all of that and yields the lines BR printed, in order. BR's own
``--log-format json`` records (``{"level": "INFO", "caller": …, "message": "…", …}``) are left as they
are: they are BR's output, not a wrapper around it. A log line of pingcap/log never starts with one
of these prefixes, so stripping them does not change a line that has none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# pingcap/log's text header: [2024/09/17 21:22:22.693 +00:00] [INFO] [collector.go:264]
HEADER = re.compile(
    r"\[(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,9})? [+-]\d{2}:?\d{2})\] \[([A-Z]{4,5})\] \[([^\[\]\n]{0,200})\] "
)
QUOTED = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # unrolled: no backtracking blow-up

# klog (k8s.io/klog): Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg — the thread id is padded to 7.
_KLOG = re.compile(r"[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d{6} +\d{1,10} [^\s\]]{1,200}:\d{1,7}\] ?")
# CRI log line (containerd/CRI-O: time stream tag) or kubectl logs --timestamps (time only).
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2}) (?:(?:stdout|stderr) (?P<tag>[FP]) )?"
)
_STARS = re.compile(r"\*{3,} ?")
# where a collector's document keeps the line it carries: Docker json-file and Fluent Bit ("log"),
# Airflow 3's task log and structlog ("event"), journald ("MESSAGE"), Vector/Logstash ("message")
_PAYLOAD_KEYS = ("log", "event", "MESSAGE", "message", "msg")
_MAX_DEPTH = 3  # a wrapper inside a wrapper inside a wrapper (json-file of Airflow's JSON log of BR)
_MAX_PREFIXES = 3
# what makes a decoded string worth reading as BR output (anything else in a wrapper is its own metadata)
_BR_HINTS = (
    "summary", "Error: ", "panic: ", "fatal error: ", "BR log in", "[BR:", "[ERROR]", "[FATAL]", "[WARN]",
    "[INFO]", "Tasks.", "No Task Yet", "name: ", '[{"name"', "not fresh", "checksum", "#####", "%",
)  # fmt: skip


def strip_ansi(text: str) -> str:
    """``text`` without ANSI colour and cursor sequences."""
    return ANSI.sub("", text) if "\x1b" in text else text


def strip_prefixes(line: str) -> tuple[str, bool]:
    """``line`` without the prefixes a collector put before BR's text, and whether the container runtime
    marked it partial (``P``: the line goes on in the next one)."""
    partial = False
    for _ in range(_MAX_PREFIXES):
        head = line[:1]
        m: re.Match[str] | None = None
        if head in ("I", "W", "E", "F") and line[1:2].isdigit():
            m = _KLOG.match(line)
        elif head.isdigit() and line[4:5] == "-":
            m = _TIMESTAMP.match(line)
            if m is not None and m.group("tag") == "P":
                partial = True
        elif head == "*":
            m = _STARS.match(line)
        if m is None or not m.end():
            break
        line = line[m.end() :]
    return line, partial


def _looks_like_br(text: str) -> bool:
    return any(hint in text for hint in _BR_HINTS) or HEADER.search(text) is not None


def is_br_json_record(doc: Mapping[str, Any]) -> bool:
    """A ``--log-format json`` record of BR itself: a level and a message that is not console text."""
    message = doc.get("message", doc.get("msg"))
    if not isinstance(message, str) or not isinstance(doc.get("level"), str):
        return False
    return "\n" not in message and HEADER.search(message) is None and not message.startswith(("Error: ", "panic: "))


def _string_leaves(doc: object, depth: int = 0) -> Iterator[str]:
    if depth > 8:
        return
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for value in doc.values():
            yield from _string_leaves(value, depth + 1)
    elif isinstance(doc, list):
        for value in doc:
            yield from _string_leaves(value, depth + 1)


def _decode(quoted: str) -> str | None:
    try:
        value = json.loads(quoted)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def unwrap(line: str) -> str | None:
    """The BR text a wrapper line carries (decoded), or ``None`` when ``line`` is no wrapper."""
    s = line.strip()
    if s[:1] in ("{", '"'):
        try:
            doc = json.loads(s)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, str):
            return doc
        if isinstance(doc, dict):
            if is_br_json_record(doc):
                return None
            payload = next((doc[k] for k in _PAYLOAD_KEYS if isinstance(doc.get(k), str)), None)
            if payload is not None:  # one line, with the newline json-file keeps at its end
                return payload[:-1] if payload.endswith("\n") else str(payload)
            inner = [leaf for leaf in _string_leaves(doc) if _looks_like_br(leaf)]
            return "\n".join(leaf.rstrip("\n") for leaf in inner) if inner else None
        if doc is not None:
            return None  # a JSON array or number is BR's own output (`log status --json`) or not BR's
    if "\\" not in s or (s[:1] == "[" and HEADER.match(s)):
        return None  # a pingcap/log record's own quoted fields follow its header
    # a JSON-quoted string inside another line (logfmt's msg="…"): only where the line is no pingcap/log
    # record itself (a record's own quoted fields start after its header)
    header = HEADER.search(s)
    decoded: list[str] = []
    rest: list[str] = []
    at = 0
    for m in QUOTED.finditer(s):
        if header is not None and header.start() < m.start():
            break
        raw = m.group()
        if "\\" not in raw:
            continue
        value = _decode(raw)
        if value is None or not _looks_like_br(value):
            continue
        rest.append(s[at : m.start()])
        decoded.append(value)
        at = m.end()
    if not decoded:
        return None
    rest.append(s[at:])
    outside = " ".join(p.strip() for p in rest if p.strip())
    return "\n".join(([outside] if outside else []) + [d.rstrip("\n") for d in decoded])


def br_lines(text: str, _depth: int = 0) -> Iterator[str]:
    """The lines BR printed in ``text`` (console output or a log file, however it was carried), in order;
    each redraw of a TTY progress bar (``\\r``) is a line of its own."""
    pending = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] == "[" and not pending:  # a pingcap/log record (or a JSON array): BR's own, as printed
            if "\x1b" in raw:
                raw = strip_ansi(raw)
            if "\r" in raw:
                yield from raw.split("\r")
            else:
                yield raw
            continue
        line, partial = strip_prefixes(raw)
        if partial:  # the runtime split the line (an ANSI sequence, too): whole again before reading it
            pending += line
            continue
        line, pending = strip_ansi(pending + line), ""
        if _depth < _MAX_DEPTH and (line.lstrip()[:1] in ("{", '"') or "\\" in line):
            inner = unwrap(line)
            if inner is not None:
                yield from br_lines(inner, _depth + 1)
                continue
        if "\r" in line:
            yield from line.split("\r")
        else:
            yield line
    if pending:
        yield strip_ansi(pending)
