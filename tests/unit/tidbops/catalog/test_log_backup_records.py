"""The catalog's log-backup records refuse what the tables could not hold or would mislead a reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidbops import tso
from tidbops.catalog.records import AlertState, LogBackupCheck

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def check(**kw: Any) -> LogBackupCheck:
    return LogBackupCheck(**{"cluster": "dev", "checked_at": AT, "status": "NORMAL", "healthy": True, **kw})


def state(**kw: Any) -> AlertState:
    values = {"cluster": "dev", "key": "checkpoint_lag", "severity": "critical", "message": "m"}
    return AlertState(**{**values, "first_seen": AT, "last_seen": AT, **kw})


def test_a_check_in_utc_with_derived_times() -> None:
    cp = tso.from_datetime(AT - timedelta(seconds=3))
    c = check(checked_at=AT.astimezone(), checkpoint_ts=cp, window_start_ts=cp, window_end_ts=cp)
    assert c.checked_at.tzinfo is UTC and c.checkpoint_time == AT - timedelta(seconds=3)
    assert c.window_start_time == c.window_end_time == c.checkpoint_time
    assert check().checkpoint_time is None and check().finding_keys == ()
    assert check(findings=[{"key": "gc_held", "severity": "warning", "message": "x"}]).finding_keys == ("gc_held",)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"status": "PAUSED"}, "status 'PAUSED' is not one of"),
        ({"checked_at": datetime(2026, 11, 22)}, "no time zone"),
        ({"gc_safe_point": datetime(2026, 11, 22)}, "no time zone"),
        ({"checkpoint_ts": 0}, "checkpoint_ts must be a positive TSO"),
        ({"cluster": "x" * 65}, "cluster is 65 characters long"),
        ({"task_name": "t" * 129}, "task_name is 129 characters long"),
    ],
)
def test_a_check_refuses(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check(**kw)


def test_an_alert_state() -> None:
    s = state()
    assert s.is_open and s.occurrences == 1 and s.episodes == 1 and s.notified_at is None
    assert not state(resolved_at=AT).is_open


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"key": "Checkpoint Lag"}, "alert key"),
        ({"key": "x" * 65}, "alert key"),
        ({"severity": "info"}, "severity 'info'"),
        ({"first_seen": datetime(2026, 11, 22)}, "no time zone"),
        ({"notified_at": datetime(2026, 11, 22)}, "no time zone"),
    ],
)
def test_an_alert_state_refuses(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        state(**kw)
