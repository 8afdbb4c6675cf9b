"""LogCheckpointSensor: done at once, defer to the trigger, fail fast on a stuck task; poke mode too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from tidbops import tso
from tidbops.config import load_fleet
from tidbops_airflow.sensors.logbackup import LogCheckpointSensor
from tidbops_airflow.triggers import logbackup as trigger_module
from tidbops_airflow.triggers.logbackup import LogCheckpointTrigger

pytestmark = pytest.mark.operators

TARGET = 455000000000000000


@pytest.fixture
def states(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    queue: list[str] = []

    def fake(cluster: str, target: int) -> dict[str, Any]:
        state = queue.pop(0)
        return {"state": state, "target_ts": target, "checkpoint_ts": target, "status": "NORMAL", "message": state}

    monkeypatch.setattr(trigger_module, "read_progress", fake)
    return queue


def sensor(**kw: Any) -> LogCheckpointSensor:
    return LogCheckpointSensor(task_id="wait_for_log", cluster=load_fleet().get("prod"), **{"target": TARGET, **kw})


def test_already_there_returns_without_deferring(states: list[str]) -> None:
    states.append("reached")
    assert sensor().execute({})["state"] == "reached"  # type: ignore[arg-type]


def test_defers_to_the_trigger_with_ids_only(states: list[str]) -> None:
    states.append("waiting")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(poll_interval=7, timeout=timedelta(minutes=30)).execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, LogCheckpointTrigger)
    assert trigger.serialize()[1] == {"cluster": "prod", "target_ts": TARGET, "poll_interval": 7.0, "max_errors": 3}
    assert deferred.value.method_name == "execute_complete" and deferred.value.timeout == timedelta(minutes=30)


def test_now_is_resolved_when_the_task_starts(states: list[str]) -> None:
    states.append("waiting")
    before = tso.from_datetime(datetime.now(UTC))
    with pytest.raises(TaskDeferred) as deferred:
        sensor(target="now").execute({})  # type: ignore[arg-type]
    assert deferred.value.trigger.target_ts >= before  # type: ignore[attr-defined]


def test_stuck_fails_at_once(states: list[str]) -> None:
    states.append("stuck")
    with pytest.raises(AirflowFailException, match="will not get there: stuck"):
        sensor().execute({})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "ok"),
    [
        ({"status": "reached", "state": "reached", "message": "passed"}, True),
        ({"status": "stuck", "state": "stuck", "message": "task is PAUSE"}, False),
        ({"status": "error", "errors": ["BRError: pd down"]}, False),
        (None, False),
    ],
)
def test_execute_complete(event: dict[str, Any] | None, ok: bool) -> None:
    s = sensor()
    if ok:
        assert s.execute_complete({}, event) == event  # type: ignore[arg-type]
    else:
        with pytest.raises(AirflowFailException):
            s.execute_complete({}, event)  # type: ignore[arg-type]


def test_poke_mode(states: list[str]) -> None:
    s = sensor(deferrable=False)
    states += ["waiting", "reached"]
    assert not s.poke({})  # type: ignore[arg-type]
    done = s.poke({})  # type: ignore[arg-type]
    assert done and done.xcom_value["state"] == "reached"
