"""Prometheus metrics of the fleet, read from the catalog at scrape time: ``render_metrics``.

``GET /tidbops/metrics`` (``tidbops_airflow.ui.metrics``) answers each scrape with
``render_metrics(catalog, policies, now)``: a ``prometheus_client`` collector registered in a fresh,
private ``CollectorRegistry`` reads one ``fleet_rows`` (a constant number of grouped catalog queries
whatever the fleet's size) and yields gauge and counter families, rendered in the text exposition
format. Nothing is kept between scrapes and nothing is pushed: the catalog is the only state.

Every per-cluster series is labelled ``cluster`` and ``env`` (the backup series ``kind`` too). A value
the catalog does not know (a cluster never backed up, never checked, never drilled) is an **absent**
series, never 0, so an alert on its age cannot fire on a made-up epoch. Times are Unix seconds (UTC),
durations seconds, sizes bytes.

When the catalog does not answer, the scrape still succeeds: it carries
``tidbops_metrics_scrape_error 1`` and the scrape's duration only, so Prometheus alerts on the error
(``TidbopsMetricsScrapeError`` in ``include/prometheus/alerts.yml``) instead of marking the target down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from tidbops.backup import CATALOG_OUTAGES
from tidbops.catalog.errors import CatalogSchemaError
from tidbops.catalog.store import Catalog
from tidbops.fleetview.models import BackupBrief, ClusterPolicy, FleetRow
from tidbops.fleetview.queries import fleet_rows
from tidbops.redact import redact

log = logging.getLogger(__name__)

#: the media type of what ``render_metrics`` returns (Prometheus text format 0.0.4)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: what the catalog not answering looks like: the database is down or unreachable, or has no schema
#: (``tidbops catalog migrate``); anything else is a bug and fails the scrape loudly
CATALOG_UNREADABLE: tuple[type[Exception], ...] = (*CATALOG_OUTAGES, SQLAlchemyError, CatalogSchemaError)

RAG_VALUE = {"green": 0, "amber": 1, "red": 2}

#: every metric family and its help text, in the order they are exposed (counters without ``_total``)
HELP: dict[str, str] = {
    "tidbops_backup_last_success_timestamp_seconds": "When the newest succeeded backup of this kind finished.",
    "tidbops_backup_last_size_bytes": "Size of the newest backup of this kind, when it succeeded.",
    "tidbops_backup_last_verified_timestamp_seconds": "BackupTS (as a time) of the newest verified backup.",
    "tidbops_log_backup_enabled": "1 when log backup (PITR) is enabled in the fleet config, else 0.",
    "tidbops_log_checkpoint_timestamp_seconds": "Log backup checkpoint as the newest log backup check saw it.",
    "tidbops_log_checkpoint_lag_seconds": "Checkpoint lag the newest log backup check measured (the RPO then).",
    "tidbops_log_checkpoint_lag_limit_seconds": "The cluster's log_backup.max_checkpoint_lag.",
    "tidbops_log_checkpoint_frozen": "1 while a frozen-checkpoint alert is open in the catalog, else 0.",
    "tidbops_pitr_window_start_timestamp_seconds": "Start of the restorable (PITR) window.",
    "tidbops_pitr_window_end_timestamp_seconds": "End of the restorable (PITR) window: the log checkpoint.",
    "tidbops_pitr_window_promise_seconds": "How long a PITR window the cluster's retention promises.",
    "tidbops_drill_enabled": "1 when the cluster has a drill target (drills are expected), else 0.",
    "tidbops_drill_last_success_timestamp_seconds": "When the newest passed restore drill finished.",
    "tidbops_drill_last_timestamp_seconds": "When the newest restore drill finished (started, while it runs).",
    "tidbops_drill_last_rto_seconds": "RTO (restore plus validation) the newest finished drill measured.",
    "tidbops_drill_last_passed": "1 when the newest finished restore drill passed, 0 when it failed.",
    "tidbops_validation_failures": "Drills and restores whose validation failed, ever.",
    "tidbops_storage_bytes": "Bytes of the cluster's retained (succeeded) backups.",
    "tidbops_cluster_status": "The fleet page's verdict: 0 green, 1 amber, 2 red.",
    "tidbops_metrics_scrape_error": "1 when this scrape could not read the catalog, else 0.",
    "tidbops_metrics_scrape_duration_seconds": "How long this scrape took to read the catalog and build the metrics.",
}
_COUNTERS = frozenset({"tidbops_validation_failures"})
_BY_KIND = frozenset({"tidbops_backup_last_success_timestamp_seconds", "tidbops_backup_last_size_bytes"})
_CLUSTER_LABELS = ("cluster", "env")

#: every series name a scrape can expose (what alert rules may read)
METRIC_NAMES: tuple[str, ...] = tuple(f"{name}_total" if name in _COUNTERS else name for name in HELP)


def _ts(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def _succeeded(backup: BackupBrief | None) -> BackupBrief | None:
    return backup if backup is not None and backup.status == "succeeded" else None


def fleet_families(rows: Sequence[FleetRow], policies: Sequence[ClusterPolicy]) -> list[Metric]:
    """The per-cluster metric families of fleet rows (absent values are absent series)."""
    by_name = {p.cluster: p for p in policies}
    families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
    for name in HELP:
        if name.startswith("tidbops_metrics_"):
            continue
        label_names = [*_CLUSTER_LABELS, "kind"] if name in _BY_KIND else list(_CLUSTER_LABELS)
        family = CounterMetricFamily if name in _COUNTERS else GaugeMetricFamily
        families[name] = family(name, HELP[name], labels=label_names)

    def put(name: str, labels: Sequence[str], value: float | None) -> None:
        if value is not None:
            families[name].add_metric(list(labels), float(value))

    for row in rows:
        labels = (row.cluster, row.env)
        policy = by_name.get(row.cluster)
        for kind, newest, success in (
            ("full", row.last_full, row.last_full_success),
            ("incremental", row.last_incremental, row.last_incremental_success),
        ):
            put("tidbops_backup_last_success_timestamp_seconds", (*labels, kind), _ts(success))
            done = _succeeded(newest)
            put("tidbops_backup_last_size_bytes", (*labels, kind), done.size_bytes if done else None)
        put("tidbops_backup_last_verified_timestamp_seconds", labels, _ts(row.last_verified))

        log_backup = policy.log_backup if policy is not None else row.log is not None
        put("tidbops_log_backup_enabled", labels, 1 if log_backup else 0)
        if log_backup:
            put("tidbops_log_checkpoint_lag_limit_seconds", labels, row.max_checkpoint_lag_s)
            put("tidbops_pitr_window_promise_seconds", labels, row.window_promise_s)
            if row.log is not None:
                put("tidbops_log_checkpoint_timestamp_seconds", labels, _ts(row.log.checkpoint_time))
                put("tidbops_log_checkpoint_lag_seconds", labels, row.log.lag_s)
                put("tidbops_log_checkpoint_frozen", labels, 1 if row.log.frozen else 0)
                put("tidbops_pitr_window_start_timestamp_seconds", labels, _ts(row.log.window_start))
                put("tidbops_pitr_window_end_timestamp_seconds", labels, _ts(row.log.window_end))

        if policy is not None:
            put("tidbops_drill_enabled", labels, 1 if policy.drills else 0)
        put("tidbops_drill_last_success_timestamp_seconds", labels, _ts(row.last_drill_success))
        drill = row.last_drill
        if drill is not None:
            put("tidbops_drill_last_timestamp_seconds", labels, _ts(drill.finished_at or drill.started_at))
            if drill.status in ("passed", "failed"):
                put("tidbops_drill_last_passed", labels, 1 if drill.status == "passed" else 0)
                put("tidbops_drill_last_rto_seconds", labels, drill.rto_s)
        put("tidbops_validation_failures", labels, row.validation_failures)
        put("tidbops_storage_bytes", labels, row.storage_bytes)
        put("tidbops_cluster_status", labels, RAG_VALUE[row.rag])
    return list(families.values())


class FleetCollector(Collector):
    """One scrape: the fleet rows of ``policies`` as of ``now``, then the scrape's own error and duration.

    :param catalog: the catalog to read; ``None`` when it could not even be opened (a scrape error).
    :param policies: the source clusters (``tidbops.fleetview.queries.policies_from_fleet``).
    :param now: the scrape's time (ages and the fleet's red/amber/green are computed as of it).
    """

    def __init__(self, catalog: Catalog | None, policies: Sequence[ClusterPolicy], now: datetime) -> None:
        self.catalog = catalog
        self.policies = tuple(policies)
        self.now = now

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        families: list[Metric] = []
        error = self.catalog is None
        if self.catalog is not None:
            try:
                families = fleet_families(fleet_rows(self.catalog, self.policies, self.now), self.policies)
            except CATALOG_UNREADABLE as exc:
                error = True
                orig = getattr(exc, "orig", None) or exc  # the driver's error, never the URL
                log.warning("metrics: the catalog does not answer: %s", redact(f"{type(orig).__name__}: {orig}", ()))
        yield from families
        failed = GaugeMetricFamily("tidbops_metrics_scrape_error", HELP["tidbops_metrics_scrape_error"])
        failed.add_metric([], 1.0 if error else 0.0)
        yield failed
        took = GaugeMetricFamily(
            "tidbops_metrics_scrape_duration_seconds", HELP["tidbops_metrics_scrape_duration_seconds"]
        )
        took.add_metric([], time.perf_counter() - started)
        yield took


def render_metrics(catalog: Catalog | None, policies: Sequence[ClusterPolicy], now: datetime) -> bytes:
    """One scrape in the Prometheus text format (``CONTENT_TYPE``), from a fresh private registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(catalog, policies, now))
    return generate_latest(registry)
