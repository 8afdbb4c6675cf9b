"""What a drill does to the catalog (#16): tier 3 of the backups it used, the release of its holds, its basis,
and the verdict of a cluster without expectation suites. A real SQLite catalog. (How holds are taken:
tests/unit/tidbops/recovery/test_holds.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tidbops import tso
from tidbops.backup import RunInfo
from tidbops.catalog.records import BackupKind, DrillStatus, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.config import BRConfig, ClusterConfig, DrillConfig, StorageConfig
from tidbops.drill import (
    drill_record,
    record_drill,
    record_to_dict,
    summary_line,
    tier3_verdict,
)
from tidbops.recovery.validate import no_suites_note
from tidbops.storage import LocalStorage

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
RUN = RunInfo(dag_id="tidb_restore_drill__uat", run_id="scheduled__1", try_number=1, started_at=T0 + timedelta(hours=2))
CHAIN = ("uat-full-1", "uat-incr-1")
BASIS = {"tidb_version": "v8.5.1", "br_version": "v8.5.1", "encryption_method": "plaintext",
         "encryption_key_id": "none", "storage_uri": "s3://backups"}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(hours=2)

    def __call__(self) -> datetime:
        return self.now


def source(mode: str = "snapshot") -> ClusterConfig:
    return ClusterConfig(
        name="uat", env="uat", pd=("pd:2379",), tidb_conn_id="tidb_uat", storage=StorageConfig(uri="s3://backups"),
        br=BRConfig(timeout=3600), drill=DrillConfig(target="scratch1", mode=mode),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog(tmp_path: Path, clock: Clock) -> Iterator[Catalog]:
    cat = Catalog.from_url(f"sqlite:///{tmp_path}/c.db", clock=clock)
    cat.migrate()
    for n, backup_id in enumerate(CHAIN):
        at = T0 + timedelta(minutes=10 * n)
        cat.start_backup(
            NewBackup(
                id=backup_id, cluster="uat", kind=BackupKind.INCREMENTAL if n else BackupKind.FULL,
                storage_uri=f"s3://backups/uat/{backup_id}", started_at=at,
                base_backup_id=CHAIN[0] if n else None, last_backup_ts=tso.from_datetime(T0) if n else None,
            )
        )  # fmt: skip
        cat.finish_backup(backup_id, backup_ts=tso.from_datetime(at + timedelta(minutes=1)))
        cat.mark_verified(backup_id, True, "files ok", tier=1)
    yield cat
    cat.close()


def results(mode: str = "snapshot", *, content_ok: bool | None = True, gx_ok: bool = True, suites: bool = True,
            restored: bool = True) -> dict[str, Any]:  # fmt: skip
    steps = [{"backup_id": b} for b in (CHAIN if mode == "snapshot" else CHAIN[:1])]
    validate = None
    if content_ok is not None:
        gx = {"ok": gx_ok, "evaluated": 9 if suites else 0, "success_ratio": (1.0 if gx_ok else 0.5) if suites else None,
              "failures": [] if gx_ok else ["shop.orders: expect_x: 3 unexpected"],
              "suites": [{"suite": "shop.orders"}] if suites else []}  # fmt: skip
        validate = {
            "ok": content_ok and gx_ok, "content_ok": content_ok, "tables_checked": 1, "rows_checked": 600,
            "mismatches": 0 if content_ok else 1, "seconds": 1.0, "expectations": gx,
            "failures": [] if content_ok else ["shop.orders: (id) in (200, 400]: contents differ"],
        }  # fmt: skip
    return {
        "choose": {"mode": mode, "target": "scratch1", "restore_ts": tso.from_datetime(T0), "steps": steps},
        "prepare": {"target": "scratch1"},
        "restore": {"restore_seconds": 5.0, "runs": []} if restored else None,
        "validate": validate,
        "drop": {"dropped_ok": True},
        **({"wait": {"checkpoint_ts": 1}} if mode == "pitr" else {}),
    }


def record(mode: str = "snapshot", errors: dict[str, str | None] | None = None, **kw: Any) -> Any:
    return drill_record(
        source(mode), RUN, results(mode, **kw), errors or {}, target="scratch1", report_uri=None, now=RUN.started_at,
        basis=BASIS,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ tier 3


def test_a_passed_drill_verifies_its_backups_at_tier_3_records_its_basis_and_releases_its_holds(
    catalog: Catalog, tmp_path: Path
) -> None:
    rec = record()
    catalog.hold_backups("uat", CHAIN, rec.id, ttl=timedelta(hours=5))
    catalog.hold_backups("uat", CHAIN[:1], "uat-restore-x", ttl=timedelta(hours=5))  # someone else's: kept
    saved, notes = record_drill(rec, storage=LocalStorage(tmp_path / "s"), catalog=catalog)
    assert notes == () and saved.status is DrillStatus.PASSED and saved.basis == BASIS
    assert catalog.get_drill(rec.id).basis == BASIS  # type: ignore[union-attr]
    for backup_id in CHAIN:
        got = catalog.get(backup_id)
        assert got is not None and got.verified and got.verified_tier == 3
        assert f"restore drill {rec.id} passed" in (got.verify_detail or "")
    assert catalog.held_backups("uat") == {"uat-full-1": ["uat-restore-x"]}
    assert [e.details["tier"] for e in catalog.list_events(backup_id="uat-full-1") if e.kind == "backup.verified"][
        -1
    ] == 3


def test_a_snapshot_drill_whose_data_differs_fails_its_backups_at_tier_3(catalog: Catalog) -> None:
    rec = record(content_ok=False, errors={"validate": "AirflowFailException: shop.orders differs"})
    assert rec.status is DrillStatus.FAILED and rec.details["tier3"]["ok"] is False  # type: ignore[index]
    catalog.hold_backups("uat", CHAIN, rec.id, ttl=timedelta(hours=5))
    record_drill(rec, storage=None, catalog=catalog)
    for backup_id in CHAIN:
        got = catalog.get(backup_id)
        assert got is not None and got.verify_failed and got.verified_tier is None
        assert "shop.orders: (id) in (200, 400]" in (got.verify_detail or "")
    assert catalog.held_backups("uat") == {}, "a failed drill releases its holds too"


@pytest.mark.parametrize(
    ("mode", "kw", "errors", "why"),
    [
        ("snapshot", {"content_ok": None, "restored": False}, {"restore": "BRError: download sst failed"},
         "failed before the restored data could be judged"),
        ("snapshot", {"content_ok": None}, {"validate": "HistoryGoneError: older than the GC safepoint"},
         "failed before the restored data could be judged"),
        ("snapshot", {"gx_ok": False}, {"validate": "AirflowFailException: expectations"},
         "the restored content equals the source's"),
        ("pitr", {"content_ok": False}, {"validate": "AirflowFailException: differs"},
         "the log backup may be at fault"),
    ],
    ids=["br-failed", "history-gone", "expectations-only", "pitr-mismatch"],
)  # fmt: skip
def test_a_failure_that_is_not_the_backups_data_marks_nothing(
    catalog: Catalog, mode: str, kw: dict[str, Any], errors: dict[str, str | None], why: str
) -> None:
    rec = record(mode, errors=errors, **kw)
    assert rec.status is DrillStatus.FAILED
    tier3 = rec.details["tier3"]  # type: ignore[index]
    assert tier3["ok"] is None and why in tier3["reason"]
    record_drill(rec, storage=None, catalog=catalog)
    for backup_id in CHAIN:
        got = catalog.get(backup_id)
        assert got is not None and got.verified and got.verified_tier == 1, "tier 1 stands"


def test_a_passed_pitr_drill_verifies_its_full_backup() -> None:
    rec = record("pitr")
    assert rec.backups_used == CHAIN[:1]
    assert tier3_verdict(rec.id, "pitr", rec.status, results("pitr")).ok is True


def test_a_backup_gone_from_the_catalog_is_noted_not_fatal(catalog: Catalog) -> None:
    rec = record()
    with catalog.engine.begin() as conn:  # the row is gone (deleted behind our back)
        from tidbops.catalog.schema import backups

        conn.execute(backups.delete().where(backups.c.id == "uat-incr-1"))
    saved, notes = record_drill(rec, storage=None, catalog=catalog)
    assert saved.status is DrillStatus.PASSED
    assert notes == ("uat-incr-1: not marked at tier 3: backup 'uat-incr-1' is not in the catalog",)
    assert catalog.get("uat-full-1").verified_tier == 3  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------- no suites


def test_a_drill_without_expectation_suites_says_so_and_passes_on_the_content_check(catalog: Catalog) -> None:
    rec = record(suites=False)
    note = no_suites_note("uat")
    assert note == "no expectation suites for uat: expectations did not run"
    assert rec.status is DrillStatus.PASSED and rec.gx_success_ratio is None
    assert rec.details["expectations_ran"] is False and rec.details["caveats"] == [note]  # type: ignore[index]
    assert summary_line(rec).endswith(f"; CAVEAT: {note}") and "expectations did not run" in summary_line(rec)
    assert record_to_dict(rec)["caveats"] == [note]
    saved, _ = record_drill(rec, storage=None, catalog=catalog)
    assert catalog.get_drill(saved.id).details["caveats"] == [note]  # type: ignore[union-attr,index]
    with_suites = record()
    assert with_suites.details["expectations_ran"] is True and with_suites.details["caveats"] == []  # type: ignore[index]
    assert "CAVEAT" not in summary_line(with_suites)
