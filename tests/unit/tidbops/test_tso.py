from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidbops import tso

pytestmark = pytest.mark.unit


def test_reference_example() -> None:
    # br-cli.md §6: 435844546560000000 >> 18 = 1662615000000 = 2022-09-08 13:30:00 +08:00, logical 0
    t = 435844546560000000
    assert tso.physical_ms(t) == 1662615000000 and tso.logical(t) == 0
    assert tso.to_datetime(t) == datetime(2022, 9, 8, 13, 30, tzinfo=timezone(timedelta(hours=8)))
    assert tso.from_datetime(datetime(2022, 9, 8, 5, 30, tzinfo=UTC)) == t


def test_max_end_ts() -> None:
    assert (
        tso.to_datetime(999999999999999999)
        .astimezone(timezone(timedelta(hours=8)))
        .strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        == "2090-11-18 22:07:45.624"
    )


def test_compose_and_logical() -> None:
    t = tso.compose(1662615000000, 7)
    assert (tso.physical_ms(t), tso.logical(t)) == (1662615000000, 7)
    with pytest.raises(ValueError):
        tso.compose(1, 1 << 18)


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        tso.from_datetime(datetime(2026, 1, 1))


def test_the_last_time_a_tso_holds() -> None:
    last = tso.MAX_PHYSICAL_MS << tso.LOGICAL_BITS | ((1 << tso.LOGICAL_BITS) - 1)
    assert last == (1 << 64) - 1
    assert tso.to_datetime(last) == datetime(4199, 11, 24, 1, 22, 57, 663000, tzinfo=UTC)
    assert tso.from_datetime(datetime(4199, 11, 24, 1, 22, 57, 663000, tzinfo=UTC)) == tso.MAX_PHYSICAL_MS << 18
    with pytest.raises(ValueError, match="the last time a TSO can hold"):
        tso.from_datetime(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))))
