"""Go-style durations ("1h30m", "10m0s", "250ms", "1.5s") as used by TiDB, BR and our config."""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")


def parse_duration(text: str | int | float) -> float:
    """Seconds in a Go duration string, or a plain number of seconds.

    >>> parse_duration("1h2m3.5s")
    3723.5
    >>> parse_duration("10m0s")
    600.0
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return float(text)
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return sign * float(s)
    pos = 0
    total = 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 10m, 1h30m)")
    return sign * total


def format_duration(seconds: float) -> str:
    """A Go-style duration rounded to whole seconds (``54h58m37s``), as BR prints gaps."""
    total = round(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"
