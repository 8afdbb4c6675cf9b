"""What the fleet view, the cluster page, the audit and the metrics read: JSON-ready pydantic models.

These models are the contract between the catalog queries (``tidbops.fleetview.queries``), the UI's
JSON API (``tidbops_airflow.ui``, which uses them as ``response_model`` so they appear in its OpenAPI)
and the Prometheus collector (``tidbops.metrics``). Times are timezone-aware UTC datetimes (rendered as
ISO-8601 with ``Z``); durations and ages are seconds; sizes are bytes. ``None`` means unknown / never.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Rag = Literal["green", "amber", "red"]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClusterPolicy(_View):
    """What the fleet config promises for one cluster: the yardsticks of its red/amber/green."""

    cluster: str
    env: str
    production: bool = False
    log_backup: bool = Field(description="log backup (PITR) is enabled")
    max_checkpoint_lag_s: float = Field(description="RPO limit of the log backup's checkpoint lag")
    stale_backup_s: float = Field(default=26 * 3600.0, description="no verified backup for longer is red")
    drill_max_age_s: float = Field(default=8 * 86400.0, description="no successful drill for longer is amber")
    drills: bool = Field(default=True, description="the cluster has a drill target (else no drill is expected)")
    window_promise_s: float | None = Field(default=None, description="the PITR window retention promises")


class BackupBrief(_View):
    id: str
    kind: str  # full | incremental
    status: str  # running | succeeded | failed | expired
    backup_ts: int | None = None
    backup_time: datetime | None = Field(default=None, description="the BackupTS as a time")
    started_at: datetime
    finished_at: datetime | None = None
    scheduled_for: datetime | None = Field(default=None, description="the schedule slot, when it differs")
    age_s: float | None = Field(default=None, description="now minus backup_time (else started_at)")
    size_bytes: int | None = None
    br_duration_s: float | None = None
    verified: bool = False
    verified_tier: int | None = None
    verify_failed: bool = False
    base_backup_id: str | None = None
    storage_uri: str | None = None
    manifest_uri: str | None = None
    triggered_by: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    error: str | None = None


class LogWindow(_View):
    """The log backup as the newest check saw it, and the restorable window (start → end)."""

    checked_at: datetime
    status: str  # NORMAL | PAUSE | ERROR | absent | …
    healthy: bool
    task_name: str | None = None
    checkpoint_ts: int | None = None
    checkpoint_time: datetime | None = None
    lag_s: float | None = None
    window_start_ts: int | None = None
    window_start: datetime | None = None
    window_end_ts: int | None = None
    window_end: datetime | None = None
    frozen: bool = Field(default=False, description="an open frozen-checkpoint alert")
    dag_id: str | None = None
    run_id: str | None = None


class DrillBrief(_View):
    id: str
    target: str
    mode: str
    status: str  # running | passed | failed | …
    started_at: datetime
    finished_at: datetime | None = None
    age_s: float | None = None
    restore_ts: int | None = None
    restore_time: datetime | None = None
    rto_s: float | None = Field(default=None, description="restore plus validation seconds")
    restore_s: float | None = None
    validation_s: float | None = None
    tables_checked: int | None = None
    rows_checked: int | None = None
    mismatches: int | None = None
    gx_success_ratio: float | None = None
    data_docs_uri: str | None = None
    backups_used: tuple[str, ...] = ()
    error: str | None = None
    dag_id: str | None = None
    run_id: str | None = None


class RestoreBrief(_View):
    id: str
    source: str
    target: str
    status: str
    requested_by: str | None = None
    reason: str
    requested_at: datetime
    finished_at: datetime | None = None
    restore_point: str
    restore_ts: int | None = None
    restore_time: datetime | None = None
    mode: str | None = None
    dry_run: bool = False
    tables: tuple[str, ...] = ()
    backups_used: tuple[str, ...] = ()
    plan_summary: str | None = Field(default=None, description="one line: the steps BR runs")
    restore_s: float | None = None
    validation_ok: bool | None = None
    error: str | None = None
    dag_id: str | None = None
    run_id: str | None = None


class AlertEpisode(_View):
    """One log-backup alert (its current or last episode)."""

    key: str
    severity: str
    message: str
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    open: bool
    episodes: int
    occurrences: int
    notified_at: datetime | None = None


class FleetRow(_View):
    """One source cluster on the fleet page (and what the metrics export of it)."""

    cluster: str
    env: str
    production: bool = False
    rag: Rag
    reasons: tuple[str, ...] = Field(default=(), description="why amber or red, in words; empty when green")
    last_full: BackupBrief | None = None
    last_incremental: BackupBrief | None = None
    last_full_success: datetime | None = Field(default=None, description="finish of the newest succeeded full")
    last_incremental_success: datetime | None = None
    last_verified: datetime | None = Field(default=None, description="BackupTS time of the newest verified backup")
    log: LogWindow | None = None
    max_checkpoint_lag_s: float | None = None
    window_promise_s: float | None = None
    last_drill: DrillBrief | None = None
    last_drill_success: datetime | None = None
    validation_failures: int = Field(default=0, description="drills and restores whose validation failed, ever")
    last_restore: RestoreBrief | None = None
    storage_bytes: int = Field(default=0, description="bytes of the retained (succeeded) backups")


class SlowQueryDigest(_View):
    digest: str
    sample_sql: str | None = None
    count: int | None = None
    total_s: float | None = None
    avg_s: float | None = None
    p95_s: float | None = None
    change: str | None = Field(default=None, description="regressions: e.g. 'p95 0.2 s → 1.9 s (9.5×)'")


class SlowQueryReportView(_View):
    day: str  # YYYY-MM-DD (UTC) the report covers
    top: tuple[SlowQueryDigest, ...] = ()
    regressions: tuple[SlowQueryDigest, ...] = ()
    new_digests: tuple[SlowQueryDigest, ...] = ()


class ClusterView(_View):
    """The cluster page: its fleet row, then history."""

    summary: FleetRow
    backups: tuple[BackupBrief, ...] = Field(default=(), description="newest first, capped")
    drills: tuple[DrillBrief, ...] = ()
    restores: tuple[RestoreBrief, ...] = Field(default=(), description="where this cluster is source or target")
    alerts: tuple[AlertEpisode, ...] = ()
    slow_queries: SlowQueryReportView | None = None


AuditCategory = Literal["backup", "verification", "drill", "restore", "alert", "retention", "log", "cluster", "other"]


class AuditEvent(_View):
    id: int
    time: datetime
    cluster: str | None = None
    category: AuditCategory
    kind: str  # e.g. backup.succeeded, restore.refused
    status: str | None = None
    actor: str | None = Field(default=None, description="the user or schedule behind it")
    backup_id: str | None = None
    message: str
    details: dict[str, Any] | None = None


class AuditQuery(_View):
    """Filters of the audit; ``clusters`` are those the caller may see (``None``: all)."""

    clusters: tuple[str, ...] | None = None
    cluster: str | None = None
    category: AuditCategory | None = None
    status: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = Field(default=None, description="keyset cursor: events older than this id")
    limit: int = Field(default=100, ge=1, le=1000)


class AuditPage(_View):
    items: tuple[AuditEvent, ...]
    next_cursor: int | None = Field(default=None, description="pass as before_id for the next page")
    limit: int
