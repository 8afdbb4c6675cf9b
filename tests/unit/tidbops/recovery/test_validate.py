"""Judging a restore, the parts without servers: the report's figures and failures, the fallback when the
source's history is gone, the failure's message, a cluster without expectation suites. (Against real
servers: tests/integration/drill.)"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidbops import tso
from tidbops.catalog.records import BackupRecord
from tidbops.recovery.errors import HistoryGoneError
from tidbops.recovery.fingerprints import SourceFingerprints
from tidbops.recovery.plan import RecoveryPlan, chain_steps
from tidbops.recovery.validate import (
    ContentReport,
    TableResult,
    alongside,
    differs,
    no_suites_note,
    run_suites,
    validate_restore,
)
from tidbops.validate.fingerprint import Chunk, ChunkMismatch, ChunkSum, TableComparison

pytestmark = pytest.mark.unit


def report() -> ContentReport:
    bad = ChunkMismatch(Chunk((200,), (400,)), ("id",), ChunkSum(200, 1), ChunkSum(200, 2))
    tables = (
        TableResult("crm.contacts", content=TableComparison("crm.contacts", ("id",), 240, 240, 1)),
        TableResult("shop.orders", content=TableComparison("shop.orders", ("id",), 600, 600, 3, (bad,))),
        TableResult("shop.extra", ("table: only in the restored cluster",)),
        TableResult("shop.notes", skipped="beyond the budget of 2 tables"),
    )
    gc = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    return ContentReport(7, "history", tables, gc, 1.5, ("shop.notes: not compared: beyond the budget of 2 tables",))


def test_a_report_counts_what_was_compared_and_names_every_difference() -> None:
    got = report()
    assert not got.ok and (got.tables_checked, got.rows_checked, got.mismatches) == (2, 840, 2)
    assert got.failures() == [
        "shop.orders: (id) in (200, 400]: 200 rows on both sides, contents differ",
        "shop.extra: schema: table: only in the restored cluster",
    ]
    doc = got.to_dict()
    assert doc["gc_safe_point"] == "2026-11-22T01:00:00.000Z" and doc["tables"][3]["skipped"]
    assert [t["ok"] for t in doc["tables"]] == [True, False, False, True]


@pytest.fixture
def plan(chain: list[BackupRecord]) -> RecoveryPlan:
    steps = chain_steps(chain, [b.id for b in chain])
    return RecoveryPlan(plan_id="uat-restore-1", source="uat", target="scratch1", mode="snapshot",
                        restore_ts=steps[-1].backup_ts, steps=steps)  # fmt: skip


def test_gone_history_without_fingerprints_of_that_very_point_fails_saying_so(plan: RecoveryPlan) -> None:
    later = plan.restore_time + timedelta(hours=1)  # GC passed the point: nothing is read from either side
    other = SourceFingerprints("uat", "uat-incr-1", plan.restore_ts - 1, later, 100, "history", ())
    loads: list[str] = []
    for recorded in (None, other):
        with pytest.raises(HistoryGoneError, match="older than uat's GC safepoint") as info:
            validate_restore(
                None,  # type: ignore[arg-type]
                None,  # type: ignore[arg-type]
                cluster="uat",
                restore_ts=plan.restore_ts,
                gc_safe_point=later,
                load_recorded=lambda r=recorded: loads.append("read") or r,  # type: ignore[misc]
            )
        assert "; and no source fingerprints were recorded right after that backup" in str(info.value)
    assert loads == ["read", "read"]


def test_a_validation_that_found_differences_names_the_restore_and_each_difference(plan: RecoveryPlan) -> None:
    failures = [f"shop.t{n}: schema: columns differ" for n in range(25)]
    text = differs(plan, failures)
    when = tso.to_datetime(plan.restore_ts).strftime("%Y-%m-%d %H:%M:%S.000 UTC")
    assert text.startswith(f"restore uat-restore-1: the data restored into scratch1 is not uat's as of {when}:\n  ")
    assert "shop.t19: schema" in text and "shop.t20" not in text and text.endswith("\n  … 5 more")


def test_a_cluster_without_suites_is_judged_on_content_and_says_so() -> None:
    def never(*a: Any) -> Any:
        raise AssertionError("without suites, nothing connects or uploads")

    got = run_suites("uat", [], url=never, restore_time=datetime.now(UTC), tables=[], hide_values=False, docs=never)
    assert got["ran"] is False and got["ok"] and got["evaluated"] == 0 and got["success_ratio"] is None
    assert got["notes"] == [no_suites_note("uat")] == ["no expectation suites for uat: expectations did not run"]


def test_the_suites_run_alongside_the_content_check_and_either_ones_error_is_raised() -> None:
    started = time.monotonic()
    seen: list[str] = []
    both = alongside(lambda: time.sleep(0.3) or seen.append("content") or 1, lambda: time.sleep(0.3) or "suites")
    assert both == (1, "suites") and seen == ["content"] and time.monotonic() - started < 0.55
    assert alongside(lambda: 2, None) == (2, None)

    def broken() -> str:
        raise HistoryGoneError("gone")

    with pytest.raises(HistoryGoneError, match="gone"):
        alongside(lambda: 3, broken)
    with pytest.raises(HistoryGoneError, match="gone"):
        alongside(broken, lambda: "suites")
