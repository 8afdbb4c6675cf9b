"""tidbops.metrics: the fleet's Prometheus metrics, read from a real catalog at scrape time.

The text is read back with prometheus_client's own parser, so what is checked is what Prometheus reads.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from tidbops import tso
from tidbops.catalog.records import BackupKind, DrillRecord, DrillStatus, LogBackupCheck, NewBackup
from tidbops.catalog.store import Catalog
from tidbops.fleetview.models import BackupBrief, ClusterPolicy, DrillBrief, FleetRow, LogWindow
from tidbops.metrics import CONTENT_TYPE, METRIC_NAMES, fleet_families, render_metrics

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

#: the contract between the collector and include/prometheus/alerts.yml (issue #13), plus
#: tidbops_drill_enabled (the cluster has a drill target: a never-drilled cluster is then alerted on)
CONTRACT = {
    "tidbops_drill_enabled",
    "tidbops_backup_last_success_timestamp_seconds",
    "tidbops_backup_last_size_bytes",
    "tidbops_backup_last_verified_timestamp_seconds",
    "tidbops_log_backup_enabled",
    "tidbops_log_checkpoint_timestamp_seconds",
    "tidbops_log_checkpoint_lag_seconds",
    "tidbops_log_checkpoint_lag_limit_seconds",
    "tidbops_log_checkpoint_frozen",
    "tidbops_pitr_window_start_timestamp_seconds",
    "tidbops_pitr_window_end_timestamp_seconds",
    "tidbops_pitr_window_promise_seconds",
    "tidbops_drill_last_success_timestamp_seconds",
    "tidbops_drill_last_rto_seconds",
    "tidbops_drill_last_passed",
    "tidbops_drill_last_timestamp_seconds",
    "tidbops_validation_failures_total",
    "tidbops_storage_bytes",
    "tidbops_cluster_status",
    "tidbops_metrics_scrape_duration_seconds",
    "tidbops_metrics_scrape_error",
}

Key = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: bytes | str) -> dict[Key, float]:
    raw = text.decode() if isinstance(text, bytes) else text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(raw)
        for s in family.samples
    }


def of(samples: dict[Key, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: dict[Key, float], cluster: str | None = None) -> set[str]:
    return {n for (n, labels) in samples if cluster is None or ("cluster", cluster) in labels}


def policy(
    cluster: str, *, log_backup: bool = True, promise: float | None = 7 * 86400.0, drills: bool = True
) -> ClusterPolicy:
    return ClusterPolicy(
        cluster=cluster, env="prod" if cluster == "prod" else "dev", log_backup=log_backup,
        max_checkpoint_lag_s=600.0, window_promise_s=promise, drills=drills,
    )  # fmt: skip


# ------------------------------------------------------------------------------- rows → families (pure)


def brief(kind: str, status: str, finished: datetime, size: int | None) -> BackupBrief:
    return BackupBrief(
        id=f"dev-{kind}-1", kind=kind, status=status, started_at=finished - timedelta(minutes=5),
        finished_at=finished, size_bytes=size, backup_time=finished - timedelta(minutes=4),
    )  # fmt: skip


def test_a_row_as_series() -> None:
    full_done = NOW - timedelta(hours=3)
    row = FleetRow(
        cluster="dev", env="dev", rag="amber", reasons=("last incremental failed",),
        last_full=brief("full", "succeeded", full_done, 5_000_000),
        last_incremental=brief("incremental", "failed", NOW - timedelta(hours=1), None),
        last_full_success=full_done,
        last_incremental_success=NOW - timedelta(hours=5),
        last_verified=full_done - timedelta(minutes=4),
        log=LogWindow(
            checked_at=NOW - timedelta(minutes=2), status="NORMAL", healthy=True,
            checkpoint_time=NOW - timedelta(minutes=3), lag_s=61.5,
            window_start=NOW - timedelta(days=2), window_end=NOW - timedelta(minutes=3), frozen=False,
        ),
        max_checkpoint_lag_s=600.0, window_promise_s=7 * 86400.0,
        last_drill=DrillBrief(
            id="dev-drill-1", target="scratch1", mode="snapshot", status="failed",
            started_at=NOW - timedelta(days=1, minutes=5), finished_at=NOW - timedelta(days=1), rto_s=42.5,
        ),
        last_drill_success=NOW - timedelta(days=8),
        validation_failures=3, storage_bytes=123_456_789,
    )  # fmt: skip
    got = parse(_render(fleet_families([row], [policy("dev")])))
    dev = {"cluster": "dev", "env": "dev"}
    assert of(got, "tidbops_backup_last_success_timestamp_seconds", **dev, kind="full") == full_done.timestamp()
    assert (
        of(got, "tidbops_backup_last_success_timestamp_seconds", **dev, kind="incremental")
        == (NOW - timedelta(hours=5)).timestamp()
    )
    assert of(got, "tidbops_backup_last_size_bytes", **dev, kind="full") == 5_000_000
    assert of(got, "tidbops_backup_last_size_bytes", **dev, kind="incremental") is None, "a failed backup has no size"
    assert (
        of(got, "tidbops_backup_last_verified_timestamp_seconds", **dev)
        == (full_done - timedelta(minutes=4)).timestamp()
    )
    assert of(got, "tidbops_log_backup_enabled", **dev) == 1
    assert of(got, "tidbops_log_checkpoint_timestamp_seconds", **dev) == (NOW - timedelta(minutes=3)).timestamp()
    assert of(got, "tidbops_log_checkpoint_lag_seconds", **dev) == 61.5
    assert of(got, "tidbops_log_checkpoint_lag_limit_seconds", **dev) == 600
    assert of(got, "tidbops_log_checkpoint_frozen", **dev) == 0
    assert of(got, "tidbops_pitr_window_start_timestamp_seconds", **dev) == (NOW - timedelta(days=2)).timestamp()
    assert of(got, "tidbops_pitr_window_end_timestamp_seconds", **dev) == (NOW - timedelta(minutes=3)).timestamp()
    assert of(got, "tidbops_pitr_window_promise_seconds", **dev) == 7 * 86400
    assert of(got, "tidbops_drill_last_success_timestamp_seconds", **dev) == (NOW - timedelta(days=8)).timestamp()
    assert of(got, "tidbops_drill_last_timestamp_seconds", **dev) == (NOW - timedelta(days=1)).timestamp()
    assert of(got, "tidbops_drill_last_passed", **dev) == 0
    assert of(got, "tidbops_drill_last_rto_seconds", **dev) == 42.5
    assert of(got, "tidbops_validation_failures_total", **dev) == 3
    assert of(got, "tidbops_storage_bytes", **dev) == 123_456_789
    assert of(got, "tidbops_cluster_status", **dev) == 1


def test_unknown_values_are_absent_series_not_zero() -> None:
    """Never backed up, never checked, never drilled: only what is known (status, storage, the config's)."""
    rows = [
        FleetRow(cluster="dev", env="dev", rag="red", reasons=("no backup",), max_checkpoint_lag_s=600.0,
                 window_promise_s=86400.0),
        FleetRow(cluster="prod", env="prod", rag="red", reasons=("no backup",), max_checkpoint_lag_s=600.0),
    ]  # fmt: skip
    got = parse(_render(fleet_families(rows, [policy("dev"), policy("prod", log_backup=False, drills=False)])))
    assert names(got, "dev") == {
        "tidbops_log_backup_enabled",
        "tidbops_drill_enabled",
        "tidbops_log_checkpoint_lag_limit_seconds",
        "tidbops_pitr_window_promise_seconds",
        "tidbops_validation_failures_total",
        "tidbops_storage_bytes",
        "tidbops_cluster_status",
    }
    # log backup off: no limit, promise or log series even if the row carries a limit
    assert names(got, "prod") == {
        "tidbops_log_backup_enabled",
        "tidbops_drill_enabled",
        "tidbops_validation_failures_total",
        "tidbops_storage_bytes",
        "tidbops_cluster_status",
    }
    assert of(got, "tidbops_log_backup_enabled", cluster="prod", env="prod") == 0
    assert of(got, "tidbops_drill_enabled", cluster="prod", env="prod") == 0
    assert of(got, "tidbops_drill_enabled", cluster="dev", env="dev") == 1
    assert of(got, "tidbops_cluster_status", cluster="prod", env="prod") == 2


def test_a_running_drill_has_a_time_but_no_verdict() -> None:
    started = NOW - timedelta(minutes=7)
    row = FleetRow(
        cluster="dev", env="dev", rag="green",
        last_drill=DrillBrief(id="dev-drill-2", target="scratch1", mode="pitr", status="running", started_at=started),
    )  # fmt: skip
    got = parse(_render(fleet_families([row], [policy("dev")])))
    assert of(got, "tidbops_drill_last_timestamp_seconds", cluster="dev", env="dev") == started.timestamp()
    assert "tidbops_drill_last_passed" not in names(got)
    assert "tidbops_drill_last_rto_seconds" not in names(got)


def test_exposed_names_are_the_contract() -> None:
    assert set(METRIC_NAMES) == CONTRACT


# ---------------------------------------------------------------------------- a real catalog, a scrape


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.from_url(f"sqlite:///{tmp_path / 'catalog.db'}")
    cat.migrate()
    return cat


def backup(cat: Catalog, cluster: str, kind: BackupKind, at: datetime, size: int, *, verified: bool = True) -> str:
    backup_id = f"{cluster}-{kind.value}-{at:%Y%m%dt%H%M%Sz}-0000abcd"
    cat.start_backup(
        NewBackup(
            id=backup_id, cluster=cluster, kind=kind, started_at=at - timedelta(minutes=10),
            storage_uri=f"s3://b/{cluster}/{'full' if kind is BackupKind.FULL else 'incr'}/{backup_id}",
        )
    )  # fmt: skip
    cat.finish_backup(
        backup_id, backup_ts=tso.from_datetime(at - timedelta(minutes=9)), size_bytes=size, finished_at=at
    )
    if verified:
        cat.mark_verified(backup_id, True, "manifest matches")
    return backup_id


def test_render_from_a_real_catalog(catalog: Catalog) -> None:
    full_at = NOW - timedelta(hours=20)
    backup(catalog, "dev", BackupKind.FULL, full_at, 7_000)
    catalog.add_log_backup_check(
        LogBackupCheck(
            cluster="dev", checked_at=NOW - timedelta(minutes=1), status="NORMAL", healthy=True, task_name="pitr-dev",
            checkpoint_ts=tso.from_datetime(NOW - timedelta(minutes=2)), lag_seconds=60.0,
            window_start_ts=tso.from_datetime(full_at - timedelta(minutes=9)),
            window_end_ts=tso.from_datetime(NOW - timedelta(minutes=2)),
        )
    )  # fmt: skip
    catalog.save_drill(
        DrillRecord(
            id="dev-drill-20261201t100000z-0000abcd", cluster="dev", target="scratch1", mode="snapshot",
            status=DrillStatus.PASSED, started_at=NOW - timedelta(hours=2), finished_at=NOW - timedelta(hours=1),
            restore_seconds=30.0, validation_seconds=12.5,
        )
    )  # fmt: skip
    text = render_metrics(catalog, [policy("dev"), policy("prod")], NOW)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    got = parse(text)
    dev = {"cluster": "dev", "env": "dev"}
    assert of(got, "tidbops_metrics_scrape_error") == 0
    assert 0 < (of(got, "tidbops_metrics_scrape_duration_seconds") or 0) < 5
    assert of(got, "tidbops_backup_last_success_timestamp_seconds", **dev, kind="full") == full_at.timestamp()
    assert of(got, "tidbops_backup_last_size_bytes", **dev, kind="full") == 7_000
    assert of(got, "tidbops_backup_last_verified_timestamp_seconds", **dev) == pytest.approx(
        (full_at - timedelta(minutes=9)).timestamp(), abs=0.001
    )
    assert of(got, "tidbops_log_checkpoint_lag_seconds", **dev) == 60
    assert of(got, "tidbops_log_checkpoint_timestamp_seconds", **dev) == pytest.approx(
        (NOW - timedelta(minutes=2)).timestamp(), abs=0.001
    )
    assert of(got, "tidbops_pitr_window_end_timestamp_seconds", **dev) == pytest.approx(
        (NOW - timedelta(minutes=2)).timestamp(), abs=0.001
    )
    assert of(got, "tidbops_drill_last_passed", **dev) == 1
    assert of(got, "tidbops_drill_last_rto_seconds", **dev) == 42.5
    assert of(got, "tidbops_drill_last_success_timestamp_seconds", **dev) == (NOW - timedelta(hours=1)).timestamp()
    assert of(got, "tidbops_storage_bytes", **dev) == 7_000
    # prod: nothing recorded; a status, no backup or drill series
    assert "tidbops_cluster_status" in names(got, "prod")
    assert not {n for n in names(got, "prod") if "backup_last" in n or "drill_last" in n}
    assert set(names(got)) <= CONTRACT


def test_no_state_between_scrapes(catalog: Catalog) -> None:
    first = parse(render_metrics(catalog, [policy("dev")], NOW))
    assert "tidbops_backup_last_success_timestamp_seconds" not in names(first)
    backup(catalog, "dev", BackupKind.FULL, NOW - timedelta(hours=1), 10)
    second = parse(render_metrics(catalog, [policy("dev")], NOW))
    assert "tidbops_backup_last_success_timestamp_seconds" in names(second)
    assert not [n for n in prometheus_client.REGISTRY._names_to_collectors if n.startswith("tidbops")], (
        "nothing registered in the process-wide registry"
    )


def test_a_catalog_that_does_not_answer(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Catalog.from_url(f"mysql+pymysql://ops:pw-9f31c0@127.0.0.1:{port}/tidbops")
    with caplog.at_level(logging.WARNING, logger="tidbops.metrics"):
        got = parse(render_metrics(down, [policy("dev")], NOW))
    assert names(got) == {"tidbops_metrics_scrape_error", "tidbops_metrics_scrape_duration_seconds"}
    assert of(got, "tidbops_metrics_scrape_error") == 1
    assert "the catalog does not answer: OperationalError" in caplog.text and "pw-9f31c0" not in caplog.text


def test_a_catalog_that_could_not_be_opened() -> None:
    got = parse(render_metrics(None, [policy("dev")], NOW))
    assert of(got, "tidbops_metrics_scrape_error") == 1 and names(got) == {
        "tidbops_metrics_scrape_error",
        "tidbops_metrics_scrape_duration_seconds",
    }


# ------------------------------------------------------------------------------------------------ helpers


class _Static(Collector):
    """Fixed families, as a collector."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _render(families: list[Metric]) -> str:
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Static(families))
    return prometheus_client.generate_latest(registry).decode()
