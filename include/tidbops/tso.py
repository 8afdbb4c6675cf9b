"""TiDB TSO <-> time. TSO = (physical milliseconds << 18) | logical (18 bits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

LOGICAL_BITS = 18
_LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
MAX_PHYSICAL_MS = (1 << (64 - LOGICAL_BITS)) - 1  # a TSO is a uint64: 4199-11-24 01:22:57.663 UTC at most
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compose(physical_ms: int, logical: int = 0) -> int:
    if physical_ms < 0 or not 0 <= logical <= _LOGICAL_MASK:
        raise ValueError(f"bad TSO parts: physical={physical_ms} logical={logical}")
    if physical_ms > MAX_PHYSICAL_MS:
        last = to_datetime(MAX_PHYSICAL_MS << LOGICAL_BITS).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        raise ValueError(f"later than {last} UTC, the last time a TSO can hold")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(tso: int) -> int:
    return tso >> LOGICAL_BITS


def logical(tso: int) -> int:
    return tso & _LOGICAL_MASK


def to_datetime(tso: int) -> datetime:
    """The UTC time of a TSO (millisecond precision, exact: no float in between)."""
    return _EPOCH + timedelta(milliseconds=physical_ms(tso))


def from_datetime(dt: datetime) -> int:
    """The TSO of an aware datetime (logical 0, as BR's GoTimeToTS). Naive datetimes are refused."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{dt.isoformat()} has no time zone; a TSO needs an absolute time")
    return compose(round(dt.timestamp() * 1000))
