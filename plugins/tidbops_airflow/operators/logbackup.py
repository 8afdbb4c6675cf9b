"""Operators of the log backup check: check → (repair) → notify → gate. Logic in ``tidbops.logbackup``.

* ``LogBackupCheckOperator`` reads ``br log status`` (read-only: no pool), the GC safepoint (SQL) and
  ``br log metadata`` (the log range, storage credentials through ``BRHook``), judges them, records the
  check and the alert states in the catalog, and branches: to the repair step when there is something to
  start or resume, else straight to the notify step (so the repair step, in the cluster's BR pool, never
  waits behind a long backup when there is nothing to do).
* ``LogBackupRepairOperator`` (pool ``br_<cluster>``) runs ``br log start`` / ``br log resume``.
* ``LogBackupNotifyOperator`` sends what the alert states owe (an episode's first alert, its recovery),
  plus the repair step's notices, through the cluster's alert routes.
* ``LogBackupHealthGateOperator`` fails (no retries) while an alert is open: the run shows red in the
  grid for every check of an episode, though the episode pages only once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BranchMixIn, Context

from tidbops.config import AlertRoute, ClusterConfig
from tidbops.timefmt import iso
from tidbops_airflow.operators.common import init_base_operator

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog
    from tidbops.keys.logkeys import LogKey
    from tidbops.keys.owner import DataKey
    from tidbops.logbackup import LogKeyIO, StatusReading
    from tidbops.pitr import LogRange
    from tidbops_airflow.hooks.br import BRHook

DEFAULT_REMIND_AFTER = 24 * 3600.0


class _LogBackupStep(BaseOperator):
    """The cluster, where the catalog is, and earlier steps' XCom. One flat ``__init__`` per step (parse time)."""

    ui_color = "#e6f7e6"
    cluster: ClusterConfig
    catalog_conn_id: str | None
    catalog_sqlite_path: str | None

    def _catalog(self) -> AbstractContextManager[Catalog | None]:
        from tidbops_airflow.hooks.catalog import open_catalog_or_none

        return open_catalog_or_none(self.catalog_conn_id, self.catalog_sqlite_path)

    @staticmethod
    def _xcom(context: Context, task_id: str | None) -> Mapping[str, Any] | None:
        if task_id is None:
            return None
        value = context["ti"].xcom_pull(task_ids=task_id)
        return value if isinstance(value, Mapping) else None


class LogBackupCheckOperator(_LogBackupStep, BranchMixIn):
    """Check a cluster's log backup: status, checkpoint lag, frozen checkpoint, GC hold, PITR window.

    Succeeds whatever it finds (findings go to the notify step); fails only when the check cannot be made
    (BR cannot read the status). Returns the check (JSON) as XCom.

    :param cluster: the cluster from the fleet config.
    :param frozen_after: how long the checkpoint may stay unchanged across checks (Go duration or seconds);
        default the run's ``conf["frozen_after"]``, else 4 minutes.
    :param repair_task_id: the repair step to branch to when there is something to start or resume.
    :param notify_task_id: the notify step (always followed).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("frozen_after", "catalog_conn_id")
    inherits_from_skipmixin = True

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        frozen_after: str | float | None = None,
        repair_task_id: str | None = None,
        notify_task_id: str | None = None,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            frozen_after=frozen_after,
            repair_task_id=repair_task_id,
            notify_task_id=notify_task_id,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def _read_status(self) -> StatusReading:
        from tidbops.br import runner
        from tidbops.logbackup import STATUS_TIMEOUT, read_log_status
        from tidbops_airflow.hooks.br import BRHook

        # read-only and PD only: no credentials; the output itself is what we need (BRResult keeps no stdout)
        hook = BRHook(cluster=self.cluster)
        with hook.pd_access() as cluster, runner.passing_log_file(self.cluster.name, "log-status") as log_file:
            return read_log_status(
                cluster,
                lambda argv: hook.run_pd(argv, cluster, timeout=STATUS_TIMEOUT, log_file=log_file),
                log_file=log_file,
            )

    def _gc_safe_point(self) -> datetime | None:
        import pymysql

        from tidbops.errors import TiDBOpsError
        from tidbops_airflow.hooks.tidb import TiDBHook

        try:
            return TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cluster_facts().gc_safe_point
        except (pymysql.err.MySQLError, TiDBOpsError, OSError) as exc:
            self.log.warning("cluster %s: GC safepoint not read (%s); GC hold not judged", self.cluster.name, exc)
            return None

    def _log_range(self) -> LogRange | None:
        from tidbops.br.errors import BRError
        from tidbops_airflow.hooks.br import BRHook, read_log_range

        try:
            return read_log_range(BRHook(cluster=self.cluster))
        except BRError as exc:
            self.log.warning(
                "cluster %s: br log metadata failed (%s); the window uses the status", self.cluster.name, exc
            )
            return None

    def _frozen_after(self, context: Context) -> float:
        from tidbops.durations import parse_duration
        from tidbops.logbackup import DEFAULT_FROZEN_AFTER

        dag_run = context.get("dag_run")
        value = self.frozen_after
        if value is None:
            value = (getattr(dag_run, "conf", None) or {}).get("frozen_after")
        return DEFAULT_FROZEN_AFTER if value in (None, "") else parse_duration(value)

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.logbackup import check_log_backup

        reading = self._read_status()
        now = datetime.now(UTC)  # the lag is as of the reading
        gc_safe_point = self._gc_safe_point()
        log_range = self._log_range() if reading.tasks else None
        ti = context["ti"]
        with self._catalog() as catalog:
            result = check_log_backup(
                self.cluster,
                reading,
                now=now,
                catalog=catalog,
                log_range=log_range,
                gc_safe_point=gc_safe_point,
                frozen_after=self._frozen_after(context),
                dag_id=str(ti.dag_id),
                run_id=str(ti.run_id),
            )
        doc = result.to_dict()
        self.log.info(
            "cluster %s: log backup %s, checkpoint %s (lag %ss), %s; findings: %s; actions: %s; window: %s",
            self.cluster.name,
            doc["status"],
            doc["checkpoint_time"],
            doc["lag_seconds"],
            "healthy" if doc["healthy"] else "UNHEALTHY",
            "; ".join(f"{f['key']}: {f['message']}" for f in doc["findings"]) or "none",
            ", ".join(a["kind"] for a in doc["actions"]) or "none",
            doc["window"]["reason"],
        )
        if self.downstream_task_ids and self.notify_task_id:
            follow = [self.notify_task_id]
            if doc["actions"] and self.repair_task_id:
                follow.append(self.repair_task_id)
            ti.xcom_push(key="return_value", value=doc)  # skipping ends execute: push the result first
            self.do_branch(context, follow)
        return doc


class LogBackupRepairOperator(_LogBackupStep):
    """Start a missing log backup task, or resume a paused one, as the check step decided.

    Runs in the cluster's BR pool. A BR failure does not fail the task: it becomes an alert
    (``start_failed`` / ``resume_failed``, with BR's error) for the notify step.

    :param cluster: the cluster from the fleet config.
    :param check_task_id: the check step whose XCom holds the actions.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("catalog_conn_id",)
    ui_color = "#c8ecc8"

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        check_task_id: str,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            check_task_id=check_task_id,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )
        self._br_hook: BRHook | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.logbackup import Action, repair_log_backup
        from tidbops_airflow.hooks.br import BRHook

        check = self._xcom(context, self.check_task_id) or {}
        actions = [Action.from_dict(a) for a in check.get("actions") or ()]
        self._br_hook = hook = BRHook(cluster=self.cluster)
        with self._catalog() as catalog, hook.session("log-repair") as session:
            result = repair_log_backup(
                session,
                actions,
                run_br=lambda argv: hook.run(argv, session),
                catalog=catalog,
                now=datetime.now(UTC),
                log_keys=self._log_key_io(),
            )
        doc = result.to_dict()
        self.log.info(
            "cluster %s: %s",
            self.cluster.name,
            "; ".join(
                f"br log {o['kind']} {o['task_name']}: {'done' if o['ok'] else o['error']}" for o in doc["outcomes"]
            )
            or "nothing to do",
        )
        return doc

    def _log_key_io(self) -> LogKeyIO | None:
        """An owner-key cluster's log key plumbing (#17): the manifest into the log storage, the clear key
        into a 0600 file (masked in logs), the task's start TS from ``br log status``."""
        from airflow.sdk.log import mask_secret

        from tidbops.br import runner
        from tidbops.logbackup import LogKeyIO
        from tidbops_airflow.hooks.storage import StorageHook

        enc = self.cluster.br.encryption
        if enc is None or not enc.owner_key:
            return None
        cluster = self.cluster

        def write_manifest(key: LogKey) -> None:
            storage = StorageHook(cluster=cluster).get_storage(cluster.log_storage_uri)
            storage.write_bytes(key.manifest_name(), key.to_manifest(), overwrite=True)

        def key_file(key: DataKey) -> AbstractContextManager[str]:
            mask_secret(key.hex)
            return _path_text(runner.secret_file(key.hex))

        def read_start_ts(task_name: str) -> int | None:
            from tidbops.logbackup import STATUS_TIMEOUT, read_log_status
            from tidbops_airflow.hooks.br import BRHook

            hook = BRHook(cluster=cluster)
            with hook.pd_access() as pd_cluster, runner.passing_log_file(cluster.name, "log-key-status") as log_file:
                reading = read_log_status(
                    pd_cluster,
                    lambda argv: hook.run_pd(argv, pd_cluster, timeout=STATUS_TIMEOUT, log_file=log_file),
                    log_file=log_file,
                )
            return next((t.start_ts for t in reading.tasks if t.name == task_name), None)

        return LogKeyIO(write_manifest=write_manifest, key_file=key_file, read_start_ts=read_start_ts)

    def on_kill(self) -> None:
        if self._br_hook is not None:
            self._br_hook.kill()


@contextlib.contextmanager
def _path_text(cm: AbstractContextManager[Path]) -> Iterator[str]:
    with cm as path:
        yield str(path)


class LogBackupNotifyOperator(_LogBackupStep):
    """Send what the log backup's alerts owe through the cluster's alert routes, once per episode.

    From the catalog's alert states: an episode's first alert, a reminder after ``remind_after``, the
    recovery of a notified episode; plus the repair step's notices (task started or resumed). Without the
    catalog every finding of this run is sent (nothing can be de-duplicated; the message says so).
    Returns what was sent and the alerts still open.

    :param cluster: the cluster from the fleet config.
    :param routes: the cluster's alert routes, ``(name, route)`` pairs from the fleet config.
    :param check_task_id: the check step (its findings, when the catalog is down).
    :param repair_task_id: the repair step (its notices and findings), skipped when there was nothing to do.
    :param remind_after: seconds after which an open episode is notified again (``None``: never).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("catalog_conn_id",)

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        routes: Sequence[tuple[str, AlertRoute]],
        check_task_id: str,
        repair_task_id: str | None = None,
        remind_after: float | None = DEFAULT_REMIND_AFTER,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            routes=list(routes),
            check_task_id=check_task_id,
            repair_task_id=repair_task_id,
            remind_after=remind_after,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.logbackup import Finding, Notification, pending_notifications, unsuppressed
        from tidbops_airflow.notifiers.health import send_health_notification

        name = self.cluster.name
        now = datetime.now(UTC)
        check = self._xcom(context, self.check_task_id) or {}
        repair = self._xcom(context, self.repair_task_id) or {}
        notices = [Notification.from_dict(n) for n in repair.get("notices") or ()]
        with self._catalog() as catalog:
            if catalog is not None:
                states = catalog.list_alert_states(name)
                owed = pending_notifications(states, now, self.remind_after)
                by_key = {s.key: s for s in states}
            else:
                findings = [Finding.from_dict(f) for f in [*check.get("findings", ()), *repair.get("findings", ())]]
                owed, by_key = unsuppressed(name, findings, now), {}
            sent: list[dict[str, Any]] = []
            undelivered: list[str] = []
            for n in [*notices, *owed]:
                routes, failed = send_health_notification(self.routes, name, n.to_dict(), context)
                for route, error in failed.items():
                    self.log.error("cluster %s: %s %s not sent via route %s: %s", name, n.kind, n.key, route, error)
                sent.append({"kind": n.kind, "key": n.key, "routes": routes, "failed_routes": failed})
                if not routes and self.routes:
                    undelivered.append(f"{n.kind} {n.key}")  # stays owed: the retry, or the next check, sends it
                elif catalog is not None and n.key in by_key and n.kind != "notice":
                    _mark_sent(catalog, name, n, now)
            open_alerts = (
                [{"key": s.key, "severity": s.severity, "message": s.message, "since": iso(s.first_seen)}
                 for s in catalog.list_alert_states(name, open_only=True)]
                if catalog is not None
                else [{"key": n.key, "severity": n.severity, "message": n.message, "since": None} for n in owed]
            )  # fmt: skip
        self.log.info(
            "cluster %s: sent %s; open alerts: %s",
            name,
            ", ".join(f"{s['kind']} {s['key']} via {'/'.join(s['routes']) or 'no route'}" for s in sent) or "nothing",
            ", ".join(a["key"] for a in open_alerts) or "none",
        )
        if undelivered:
            raise RuntimeError(
                f"cluster {name}: no alert route delivered {', '.join(undelivered)}; see the errors above"
            )
        return {"sent": sent, "open": open_alerts, "catalog": "recorded" if catalog is not None else "unavailable"}


def _mark_sent(catalog: Catalog, cluster: str, notification: Any, now: datetime) -> None:
    from tidbops.logbackup import mark_notified

    catalog.update_alert_states(cluster, lambda states: [mark_notified(states[notification.key], notification, now)])


class LogBackupHealthGateOperator(_LogBackupStep):
    """Fail (without retrying) while the cluster's log backup has an open alert; succeed when healthy.

    The alerts themselves went out through the notify step, once per episode: this task carries no
    failure callback. It makes every check of an episode show red in the Airflow grid.

    :param cluster: the cluster from the fleet config.
    :param notify_task_id: the notify step, whose XCom lists the open alerts.
    """

    def __init__(self, *, cluster: ClusterConfig, notify_task_id: str, **kwargs: Any) -> None:
        init_base_operator(
            self, kwargs, cluster=cluster, notify_task_id=notify_task_id, catalog_conn_id=None, catalog_sqlite_path=None
        )

    def execute(self, context: Context) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        notified = self._xcom(context, self.notify_task_id) or {}
        open_alerts = list(notified.get("open") or ())
        if open_alerts:
            lines = "; ".join(f"{a['key']} ({a['severity']}): {a['message']}" for a in open_alerts)
            raise AirflowFailException(f"cluster {self.cluster.name}: log backup unhealthy: {lines}")
        self.log.info("cluster %s: log backup healthy", self.cluster.name)
