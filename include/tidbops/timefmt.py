"""The one place times are written as text: ISO 8601 in UTC for machines (JSON, manifests, the catalog's
documents, XCom) and ``YYYY-MM-DD HH:MM:SS UTC`` for people (logs, notes, errors).

Every formatter refuses a naive datetime, as ``utc`` does: a time without a zone could mean anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Literal

from tidbops import tso

TimeSpec = Literal["seconds", "milliseconds", "microseconds"]


def utc(dt: datetime, what: str = "datetime") -> datetime:
    """``dt`` in UTC; a naive datetime is refused (we cannot know what zone it meant)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} {dt.isoformat()} has no time zone; pass an aware datetime (UTC)")
    return dt.astimezone(UTC)


def iso(dt: datetime, *, timespec: TimeSpec = "milliseconds") -> str:
    """``2026-11-01T00:01:30.568Z``: ISO 8601, UTC, with a ``Z``, to the millisecond unless asked otherwise
    (TSOs carry milliseconds; ``seconds`` for people's tables, ``microseconds`` where a value round-trips)."""
    return utc(dt).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_or_none(dt: datetime | None, *, timespec: TimeSpec = "milliseconds") -> str | None:
    """``iso(dt)``, or ``None`` for ``None`` (JSON's null)."""
    return None if dt is None else iso(dt, timespec=timespec)


def iso_tso(ts: int | None) -> str | None:
    """The UTC time of a TSO as ``iso`` writes it; ``None`` for ``None``."""
    return None if ts is None else iso(tso.to_datetime(ts))


def show(dt: datetime | None, *, ms: bool = False, zone: tzinfo | None = None, missing: str = "unknown") -> str:
    """``2026-11-01 00:01:30 UTC`` (``ms``: ``…:30.568 UTC``) for people; ``missing`` for ``None``.

    With ``zone`` (and a time whose offset there is not 0): ``2026-11-01 08:01:30+0800 (2026-11-01 00:01:30 UTC)``.
    """
    if dt is None:
        return missing
    at = utc(dt)
    text = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    utc_text = (text[:-3] if ms else text[:-7]) + " UTC"
    if zone is None:
        return utc_text
    local = at.astimezone(zone)
    if local.utcoffset() == at.utcoffset():
        return utc_text
    return f"{local.strftime('%Y-%m-%d %H:%M:%S%z')} ({utc_text})"


def show_tso(ts: int, *, ms: bool = False, zone: tzinfo | None = None) -> str:
    """The UTC time of a TSO as ``show`` writes it."""
    return show(tso.to_datetime(ts), ms=ms, zone=zone)
