"""Running a restore: BR's runs of a plan, in order and timed; and the figures a restore's steps report.

``run_restore`` is the RTO's restore part: from the first BR start to the last BR end. ``Reported``
reads what the restore and validation steps returned (their XCom), for the ``drills`` and ``restores``
catalog rows alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.plan import RecoveryPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreOutcome:
    """What the restore step did: the RTO's restore part, and each BR run."""

    plan_id: str
    target: str
    restore_ts: int
    seconds: float  # first BR start to last BR end: the RTO's restore part
    runs: tuple[Mapping[str, Any], ...]
    cleared: tuple[str, ...] = ()

    @property
    def br_seconds(self) -> float:
        """The BR processes' own wall time (``seconds`` less our work between the runs)."""
        return round(sum(float(r.get("br_seconds") or 0.0) for r in self.runs), 3)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "target": self.target,
            "restore_ts": self.restore_ts,
            "restore_seconds": self.seconds,
            "br_seconds": self.br_seconds,
            "runs": [dict(r) for r in self.runs],
            "cleared": list(self.cleared),
        }


def run_restore(
    plan: RecoveryPlan,
    argvs: Sequence[list[str]],
    run_br: Callable[[list[str]], Any],
    *,
    cleared: Sequence[str] = (),
    clock: Callable[[], float] = time.monotonic,
) -> RestoreOutcome:
    """Run the restores in order (``run_br`` raises ``BRError`` when one fails); time them all."""
    if len(argvs) != len(plan.steps):
        raise RecoveryError(f"{len(argvs)} command lines for {len(plan.steps)} restore steps")
    runs: list[Mapping[str, Any]] = []
    started = clock()
    for step, argv in zip(plan.steps, argvs, strict=True):
        t0 = clock()
        result = run_br(argv)
        outcome = getattr(result, "outcome", None)
        runs.append(
            {
                "kind": step.kind,
                "backup_id": step.backup_id,
                "seconds": round(clock() - t0, 3),
                "br_seconds": round(float(getattr(result, "seconds", 0.0)), 3),
                "total_kv": getattr(outcome, "total_kv", None),
            }
        )
        log.info("restored %s %s into %s in %.1fs", step.kind, step.backup_id, plan.target, runs[-1]["seconds"])
    return RestoreOutcome(
        plan.plan_id, plan.target, plan.restore_ts, round(clock() - started, 3), tuple(runs), tuple(cleared)
    )


def number(value: Any, kind: type[int] | type[float]) -> Any:
    """A figure from a step's JSON result as ``kind``; ``None`` stays ``None``."""
    return None if value is None else kind(value)


@dataclass(frozen=True)
class Reported:
    """The figures a restore's steps reported (the restore step's and the validation's results), as the
    ``drills`` and ``restores`` rows keep them; ``None`` for what a step that did not finish never said."""

    restore_seconds: float | None = None
    validation_seconds: float | None = None
    validation_ok: bool | None = None
    tables_checked: int | None = None
    rows_checked: int | None = None
    mismatches: int | None = None

    @classmethod
    def of(cls, restored: Mapping[str, Any] | None, validated: Mapping[str, Any] | None) -> Reported:
        restored, validation = restored or {}, validated or {}
        return cls(
            restore_seconds=number(restored.get("restore_seconds"), float),
            validation_seconds=number(validation.get("seconds"), float),
            validation_ok=bool(validation.get("ok")) if validated else None,
            tables_checked=number(validation.get("tables_checked"), int),
            rows_checked=number(validation.get("rows_checked"), int),
            mismatches=number(validation.get("mismatches"), int),
        )
