"""Reading the source as of the restore point, and refusing a point its GC has passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidbops import tso
from tidbops.recovery.errors import HistoryGoneError
from tidbops.recovery.history import check_history, history_time, source_read
from tidbops.validate.sql import Dialect

pytestmark = pytest.mark.unit

T = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)


def test_history_time_covers_the_tso_logical_part_as_microseconds() -> None:
    physical = tso.physical_ms(tso.from_datetime(T))
    assert history_time(tso.from_datetime(T)) == T
    assert history_time(tso.compose(physical, 456)) == T + timedelta(microseconds=456)
    assert history_time(tso.compose(physical, 5000)) == T + timedelta(microseconds=999)


def test_the_source_is_read_at_the_exact_point_on_each_server() -> None:
    point = tso.compose(tso.physical_ms(tso.from_datetime(T)), 7)
    tidb = source_read(Dialect.TIDB, point)
    assert tidb.at is None and tidb.setup == (f"SET @@tidb_snapshot = '{point}'",)
    assert tidb.teardown == ("SET @@tidb_snapshot = ''",)
    maria = source_read(Dialect.MARIADB, point)
    assert maria.at == T + timedelta(microseconds=7) and maria.setup == maria.teardown == ()
    assert "FOR SYSTEM_TIME AS OF '2026-11-22T10:00:00.123007Z'" in maria.description
    with pytest.raises(HistoryGoneError, match="keeps no history"):
        source_read(Dialect.MYSQL, point)


def test_a_point_older_than_the_gc_safepoint_fails_saying_why() -> None:
    point = tso.from_datetime(T)
    check_history("uat", point, None)
    check_history("uat", point, T)  # the safepoint itself is still readable
    with pytest.raises(HistoryGoneError) as err:
        check_history("uat", point, T + timedelta(hours=2), 600)
    text = str(err.value)
    assert "as of the restore point 2026-11-22 10:00:00.123 UTC" in text
    assert "older than uat's GC safepoint 2026-11-22 12:00:00.123 UTC (tidb_gc_life_time 10m)" in text
    assert "history is gone" in text
    with pytest.raises(ValueError, match="has no time zone"):
        check_history("uat", point, T.replace(tzinfo=None))
