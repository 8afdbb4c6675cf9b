from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidbops import timefmt, tso

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 1, 0, 1, 30, 568123, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))


def test_iso_is_utc_with_z_to_the_millisecond() -> None:
    assert timefmt.iso(AT) == "2026-11-01T00:01:30.568Z"
    assert timefmt.iso(AT.astimezone(SHANGHAI)) == "2026-11-01T00:01:30.568Z"
    assert timefmt.iso(AT, timespec="seconds") == "2026-11-01T00:01:30Z"
    assert timefmt.iso(AT, timespec="microseconds") == "2026-11-01T00:01:30.568123Z"
    assert datetime.fromisoformat(timefmt.iso(AT, timespec="microseconds")) == AT


def test_none_and_tso() -> None:
    assert timefmt.iso_or_none(None) is None
    assert timefmt.iso_tso(None) is None
    assert timefmt.iso_tso(tso.from_datetime(AT)) == "2026-11-01T00:01:30.568Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        timefmt.iso(datetime(2026, 11, 1))
    with pytest.raises(ValueError, match="no time zone"):
        timefmt.show(datetime(2026, 11, 1))


def test_show_for_people() -> None:
    assert timefmt.show(AT) == "2026-11-01 00:01:30 UTC"
    assert timefmt.show(AT, ms=True) == "2026-11-01 00:01:30.568 UTC"
    assert timefmt.show(None) == "unknown"
    assert timefmt.show(None, missing="-") == "-"
    assert timefmt.show(AT, zone=SHANGHAI) == "2026-11-01 08:01:30+0800 (2026-11-01 00:01:30 UTC)"
    assert timefmt.show(AT, zone=UTC) == "2026-11-01 00:01:30 UTC"
    assert timefmt.show_tso(tso.from_datetime(AT)) == "2026-11-01 00:01:30 UTC"
