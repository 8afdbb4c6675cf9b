"""LogCheckpointTrigger: what it serialises, and its run loop against a fake status source."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops_airflow.triggers import logbackup
from tidbops_airflow.triggers.logbackup import LogCheckpointTrigger

pytestmark = pytest.mark.operators

TARGET = 455000000000000000


def test_serialises_only_plain_values_and_rebuilds() -> None:
    trigger = LogCheckpointTrigger(cluster="prod", target_ts=TARGET, poll_interval=5, max_errors=2)
    classpath, kwargs = trigger.serialize()
    assert kwargs == {"cluster": "prod", "target_ts": TARGET, "poll_interval": 5.0, "max_errors": 2}
    assert json.loads(json.dumps(kwargs)) == kwargs
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)


def progress(state: str, checkpoint: int | None = None) -> dict[str, Any]:
    return {"state": state, "target_ts": TARGET, "checkpoint_ts": checkpoint, "status": "NORMAL", "message": state}


def events(trigger: LogCheckpointTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [e.payload async for e in trigger.run()]

    return asyncio.run(collect())


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Each poll takes the next answer: a progress dict, or an exception to raise."""
    queue: list[Any] = []
    calls: list[tuple[str, int]] = []

    def fake(cluster: str, target: int) -> dict[str, Any]:
        calls.append((cluster, target))
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    monkeypatch.setattr(logbackup, "read_progress", fake)
    yield queue
    assert all(c == ("prod", TARGET) for c in calls)


def test_waits_until_reached(answers: list[Any]) -> None:
    answers += [progress("waiting", TARGET - 1), progress("waiting", TARGET - 1), progress("reached", TARGET + 9)]
    [event] = events(LogCheckpointTrigger(cluster="prod", target_ts=TARGET, poll_interval=0))
    assert event["status"] == "reached" and event["checkpoint_ts"] == TARGET + 9 and answers == []


def test_a_stuck_task_ends_the_wait(answers: list[Any]) -> None:
    answers += [progress("waiting"), {**progress("stuck"), "status": "PAUSE", "message": "task pitr is PAUSE"}]
    [event] = events(LogCheckpointTrigger(cluster="prod", target_ts=TARGET, poll_interval=0))
    assert event["status"] == "stuck" and event["message"] == "task pitr is PAUSE"


def br_failure() -> BRError:
    text = "Error: pd address not available: [BR:PD:ErrPDUpdateFailed]"
    return BRError(exit_code=1, outcome=parse_br_output(text), stderr_tail=text)


def test_transient_br_failures_are_tolerated(answers: list[Any]) -> None:
    answers += [br_failure(), br_failure(), progress("reached", TARGET)]
    [event] = events(LogCheckpointTrigger(cluster="prod", target_ts=TARGET, poll_interval=0, max_errors=3))
    assert event["status"] == "reached"


def test_too_many_failures_in_a_row_give_up(answers: list[Any]) -> None:
    answers += [br_failure(), progress("waiting"), br_failure(), br_failure()]
    [event] = events(LogCheckpointTrigger(cluster="prod", target_ts=TARGET, poll_interval=0, max_errors=2))
    assert event["status"] == "error" and len(event["errors"]) == 2 and "ErrPDUpdateFailed" in event["errors"][0]


def test_read_progress_reads_the_fleet_and_br(monkeypatch: pytest.MonkeyPatch) -> None:
    from tidbops import tso

    seen: list[list[str]] = []

    class Out:
        exit_code, stderr_tail = 0, ""
        stdout = json.dumps([{"name": "pitr-prod", "status": "NORMAL", "checkpoint": TARGET + 1}])

    def run(argv: list[str], **_: Any) -> Out:
        seen.append(argv)
        return Out()

    monkeypatch.setattr("tidbops.br.runner.run", run)
    result = logbackup.read_progress("prod", TARGET)
    assert result["state"] == "reached" and result["checkpoint_ts"] == TARGET + 1
    assert tso.to_datetime(TARGET).isoformat().startswith(result["target_time"][:10])
    assert seen[0][seen[0].index("--pd") + 1] == "127.0.0.1:23793", "prod's PD from the fleet config"
