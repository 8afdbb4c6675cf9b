from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tidbops import tso
from tidbops.catalog.info import format_info, format_info_json, human_age, human_size, info_document
from tidbops.catalog.records import BackupKind, BackupRecord, BackupStatus

pytestmark = pytest.mark.unit

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def rec(
    backup_id: str,
    hours_ago: float,
    base: str | None = None,
    *,
    status: BackupStatus = BackupStatus.SUCCEEDED,
    verified: bool | None = True,
    cluster: str = "prod",
    size: int | None = 1024**3,
    error: str | None = None,
) -> BackupRecord:
    at = NOW - timedelta(hours=hours_ago)
    done = status in (BackupStatus.SUCCEEDED, BackupStatus.EXPIRED)
    return BackupRecord(
        id=backup_id,
        cluster=cluster,
        kind=BackupKind.INCREMENTAL if base else BackupKind.FULL,
        status=status,
        storage_uri=f"s3://tidbops-backups/{cluster}/{'incr' if base else 'full'}/{backup_id}",
        started_at=at - timedelta(minutes=10),
        verified=bool(verified) and done,
        verified_at=at if verified is not None and done else None,
        verify_detail=None if verified is not False else "FAILED (sizes checked): 1 missing (backupmeta)",
        backup_ts=tso.from_datetime(at) if done else None,
        backup_time=at if done else None,
        base_backup_id=base,
        size_bytes=size if done else None,
        total_kv=123456 if done else None,
        br_duration_s=605.0 if done else None,
        br_version="v8.5.1",
        encryption_method="aes256-ctr",
        try_number=2 if status is BackupStatus.FAILED else 1,
        error=error,
    )


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536 * 1024**2, "1.5 GiB"),
        (3 * 1024**5, "3.0 PiB"),
    ],
)
def test_human_size(n: int | None, text: str) -> None:
    assert human_size(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (0, "0s"),
        (59, "59s"),
        (61, "1m 1s"),
        (3600, "1h"),
        (3 * 86400 + 7200 + 5, "3d 2h"),
        (86400 + 60, "1d"),
    ],
)
def test_human_age(seconds: int, text: str) -> None:
    assert human_age(timedelta(seconds=seconds)) == text


def healthy() -> list[BackupRecord]:
    return [
        rec("prod-full-1", 50),
        rec("prod-incr-2", 26, "prod-full-1", size=10 * 1024**2),
        rec("prod-full-3", 2),
        rec("prod-incr-4", 1, "prod-full-3", verified=None, size=5 * 1024**2),
        rec("prod-incr-5", 0.5, "prod-incr-4", status=BackupStatus.RUNNING),
    ]


def test_text_shows_chains_sizes_ages_and_flags() -> None:
    text = format_info(healthy(), NOW, ["prod"])
    assert text.splitlines()[:6] == [
        "cluster: prod",
        "    status: warning (prod-incr-4 is not verified)",
        "    latest restore point: prod-incr-4 (incremental, 1h ago)",
        "    latest verified restore point: prod-full-3 (full, 2h ago)",
        "    backups: 2 chain(s), 4 succeeded, 0 failed, 1 running, 0 expired; 2.0 GiB stored",
        "    encryption: aes256-ctr",
    ]
    assert "    full backup: prod-full-1  [verified]" in text
    assert "        incr backup: prod-incr-2  [verified]" in text
    assert "        incr backup: prod-incr-4  [unverified]" in text
    assert "            time: 2024-06-10 11:00:00 UTC (1h ago), ts " in text
    assert ", base prod-full-3" in text
    assert "            size: 5.0 MiB, kv: 123,456, br: 10m 5s (v8.5.1), encryption: aes256-ctr" in text
    assert "            storage: s3://tidbops-backups/prod/incr/prod-incr-4" in text
    assert "        prod-incr-5: running for 40m (try 1)" in text
    # chains come in time order, each full before its incrementals
    order = [line.split(":")[1].split()[0] for line in text.splitlines() if "backup: " in line]
    assert order == ["prod-full-1", "prod-incr-2", "prod-full-3", "prod-incr-4"]


def test_a_fleet_cluster_without_backups_is_an_error() -> None:
    text = format_info(healthy(), NOW, ["dev", "prod"])
    assert text.startswith("cluster: dev\n    status: error (no restorable backup)\n")
    doc = info_document(healthy(), NOW, ["dev", "prod"])
    assert [c["cluster"] for c in doc["clusters"]] == ["dev", "prod"]


@pytest.mark.parametrize(
    ("history", "status", "problem"),
    [
        pytest.param([rec("f", 1)], "ok", None, id="ok"),
        pytest.param([rec("f", 40)], "error", "latest restorable backup is 1d 16h old (limit 1d 12h)", id="stale"),
        pytest.param(
            [rec("f", 1, verified=False)], "error", "f failed verification: FAILED (sizes", id="verify-failed"
        ),
        pytest.param([rec("f", 1, verified=None)], "warning", "no verified restore point", id="unverified"),
        pytest.param(
            [rec("f", 3), rec("i", 1, "f", status=BackupStatus.FAILED, error="GC safepoint exceeded\ntrace")],
            "warning",
            "last attempt i failed: GC safepoint exceeded",
            id="last-attempt-failed",
        ),
        pytest.param(
            [rec("f", 3, status=BackupStatus.DELETED), rec("i", 1, "f", status=BackupStatus.EXPIRED)],
            "error",
            "1 backup(s) whose chain is broken",
            id="broken-chain",
        ),
        pytest.param(
            [rec("f", 3, status=BackupStatus.FAILED, error="x")], "error", "no restorable backup", id="only-failed"
        ),
    ],
)
def test_cluster_status(history: list[BackupRecord], status: str, problem: str | None) -> None:
    (cluster,) = info_document(history, NOW)["clusters"]
    assert cluster["status"] == status
    if problem is None:
        assert cluster["problems"] == []
    else:
        assert any(problem in p for p in cluster["problems"]), cluster["problems"]


def test_stale_after_is_configurable() -> None:
    (cluster,) = info_document([rec("f", 5)], NOW, stale_after=timedelta(hours=4))["clusters"]
    assert cluster["problems"] == ["latest restorable backup is 5h old (limit 4h)"]


def test_failed_attempts_listed_newest_five() -> None:
    history = [rec("f", 1)] + [rec(f"x{i}", 10 - i, status=BackupStatus.FAILED, error=f"boom {i}") for i in range(7)]
    (cluster,) = info_document(history, NOW)["clusters"]
    assert [a["id"] for a in cluster["attempts"]] == ["x2", "x3", "x4", "x5", "x6"]
    assert "        x6: failed 4h 10m ago (try 2): boom 6" in format_info(history, NOW)


def test_json_form() -> None:
    doc = json.loads(format_info_json(healthy(), NOW, ["prod"]))
    assert doc["generated_at"] == "2024-06-10T12:00:00.000Z"
    (prod,) = doc["clusters"]
    assert prod["status"] == "warning"
    assert prod["latest"]["id"] == "prod-incr-4"
    assert prod["latest_verified"]["id"] == "prod-full-3"
    assert [c["full"] for c in prod["chains"]] == ["prod-full-1", "prod-full-3"]
    assert [b["id"] for b in prod["chains"][1]["backups"]] == ["prod-full-3", "prod-incr-4"]
    assert prod["chains"][0]["size_bytes"] == 1024**3 + 10 * 1024**2
    assert prod["counts"] == {"deleted": 0, "expired": 0, "failed": 0, "running": 1, "succeeded": 4}
    assert prod["attempts"][0]["flags"] == ["running"]
    assert prod["chains"][1]["backups"][1]["flags"] == ["unverified"]
    assert prod["chains"][1]["backups"][1]["age_s"] == 3600


def test_expired_backups_are_flagged() -> None:
    history = [replace(rec("f", 100), status=BackupStatus.EXPIRED), rec("g", 1)]
    text = format_info(history, NOW)
    assert "    full backup: f  [expired, verified]" in text


def test_empty() -> None:
    assert format_info([], NOW) == "no backups recorded (no clusters and no backups in the catalog)\n"
