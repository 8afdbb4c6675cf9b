"""Running a restore: BR's runs in order, timed; the figures a restore's steps report for the catalog."""

from __future__ import annotations

from typing import Any

import pytest

from tidbops.br.errors import BRError
from tidbops.br.output import parse_br_output
from tidbops.catalog.records import BackupRecord
from tidbops.recovery.errors import RecoveryError
from tidbops.recovery.plan import RecoveryPlan, chain_steps
from tidbops.recovery.run import Reported, number, run_restore

pytestmark = pytest.mark.unit


@pytest.fixture
def plan(chain: list[BackupRecord]) -> RecoveryPlan:
    steps = chain_steps(chain, [b.id for b in chain])
    return RecoveryPlan(plan_id="uat-drill-1", source="uat", target="scratch1", mode="snapshot",
                        restore_ts=steps[-1].backup_ts, steps=steps)  # fmt: skip


class Ran:
    """What ``BRHook.run`` returns: BR's own seconds and its parsed output."""

    seconds = 0.5
    outcome = parse_br_output('["Full Restore success summary"] [total-kv=12]')


def test_every_run_is_timed_in_order_and_the_whole_is_the_rtos_restore_part(plan: RecoveryPlan) -> None:
    ticks = iter(range(100))
    ran: list[list[str]] = []
    outcome = run_restore(
        plan, [["a"], ["b"], ["c"]], lambda argv: ran.append(argv) or Ran(), cleared=["shop"],
        clock=lambda: float(next(ticks)),
    )  # fmt: skip
    assert ran == [["a"], ["b"], ["c"]] and outcome.seconds == 7.0 and outcome.br_seconds == 1.5
    assert [r["backup_id"] for r in outcome.runs] == list(plan.backups_used)
    assert outcome.runs[0] == {"kind": "full", "backup_id": "uat-full-1", "seconds": 1.0, "br_seconds": 0.5,
                               "total_kv": 12}  # fmt: skip
    assert outcome.to_dict() == {
        "plan_id": "uat-drill-1", "target": "scratch1", "restore_ts": plan.restore_ts, "restore_seconds": 7.0,
        "br_seconds": 1.5, "runs": [dict(r) for r in outcome.runs], "cleared": ["shop"],
    }  # fmt: skip


def test_the_first_failed_run_stops_the_restore_and_argv_must_match_the_steps(plan: RecoveryPlan) -> None:
    ran: list[list[str]] = []

    def fail(argv: list[str]) -> Any:
        ran.append(argv)
        raise BRError(exit_code=1, outcome=parse_br_output("Error: x: [BR:KV:ErrKVDownloadFailed]download sst failed"))

    with pytest.raises(BRError, match="ErrKVDownloadFailed"):
        run_restore(plan, [["a"], ["b"], ["c"]], fail)
    assert ran == [["a"]]
    with pytest.raises(RecoveryError, match="2 command lines for 3 restore steps"):
        run_restore(plan, [["a"], ["b"]], fail)
    assert ran == [["a"]]


def test_the_figures_a_restore_reports_are_read_alike_for_drills_and_restores() -> None:
    restored = {"restore_seconds": "12.5", "runs": []}
    validated = {"ok": True, "seconds": 4.25, "tables_checked": 7, "rows_checked": "3000", "mismatches": 0}
    assert Reported.of(restored, validated) == Reported(12.5, 4.25, True, 7, 3000, 0)
    assert Reported.of(restored, None) == Reported(restore_seconds=12.5)
    assert Reported.of(None, {"ok": False}).validation_ok is False
    assert number(None, int) is None and number("3", int) == 3
