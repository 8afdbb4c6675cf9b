"""Deferring a BR step while BR runs elsewhere, and resuming it: what the ``kubernetes`` runner (a pod) and the
``tidb-operator`` runner (a ``Backup``) share.

The backup step marks its hook ``deferrable`` (``BRBackupOperator._may_defer``); a runner then hands the wait to a
trigger (``defer``) and the task resumes in ``resume_br`` with the trigger's event on ``BRHook.resume_event``,
which the runner takes once (``take_resume_event``) to read that run's end instead of starting another.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from airflow.triggers.base import BaseTrigger

    from tidbops_airflow.hooks.br import BRHook

DEFER_GRACE = 600.0  # seconds the deferral outlives BR's own timeout (the trigger ends first, saying so)


def take_resume_event(hook: BRHook | None, what: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The trigger's event when this task resumes after deferring on ``what`` ``namespace/name`` (one use),
    else ``None``; ``ValueError`` when the event is about another object (the step changed while it waited)."""
    if hook is None or hook.resume_event is None:
        return None
    event, hook.resume_event = dict(hook.resume_event), None
    if (event.get("namespace"), event.get("name")) != (namespace, name):
        raise ValueError(
            f"resumed after waiting on {what} {event.get('namespace')}/{event.get('name')}, but this step's BR is "
            f"{namespace}/{name}: the step changed while it waited; run it again"
        )
    return event


def defer(trigger: BaseTrigger, timeout: float) -> NoReturn:
    """Hand the wait to the triggerer; the task resumes in ``resume_br`` (the backup operator's)."""
    from airflow.sdk.exceptions import TaskDeferred

    raise TaskDeferred(trigger=trigger, method_name="resume_br", timeout=timedelta(seconds=timeout + DEFER_GRACE))
