"""Operators of the backup pipelines: check → plan → run BR → record (manifest) → verify.

Each one builds its hooks, calls one function of ``tidbops.backup`` (where the logic and its docs
live), logs one line and returns a small JSON-safe dict (XCom). A step reads what an earlier one
returned either from an argument (``target=…``, e.g. an XComArg) or, as the DAGs wire it (cheaper to
parse than XComArgs), from the XCom of the task named by ``target_task_id`` / ``backup_task_id`` /
``facts_task_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from tidbops.config import ClusterConfig
from tidbops.timefmt import iso_or_none, show
from tidbops_airflow.operators.common import init_base_operator

if TYPE_CHECKING:
    from tidbops.backup import BackupTarget, RunInfo
    from tidbops.catalog.store import Catalog
    from tidbops.config import AlertRoute
    from tidbops_airflow.hooks.br import BRHook


def run_info(context: Context | Mapping[str, Any], *, started_at: datetime | None = None) -> RunInfo:
    """Who runs this step: DAG, run, try, why, and when the run really started.

    ``started_at``: the given time (a pipeline that fixed it in an earlier step passes it on), else the DAG
    run's ``start_date`` (when it really began running: a scheduled run that starts hours after its slot,
    after an unpause or a catch-up, says so), else now. ``scheduled_for``: a scheduled run's slot (its
    logical date, else its run_after); None for manual and other runs.
    """
    from tidbops.backup import RunInfo

    dag_run = context["dag_run"]
    ti = context["ti"]
    run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
    slot = dag_run.logical_date or dag_run.run_after
    real = started_at or getattr(dag_run, "start_date", None) or datetime.now(UTC)
    user = getattr(dag_run, "triggering_user_name", None)
    return RunInfo(
        dag_id=str(ti.dag_id),
        run_id=str(ti.run_id),
        try_number=int(ti.try_number or 1),
        started_at=real,
        triggered_by=f"{run_type}:{user}" if user else run_type,
        scheduled_for=slot if run_type == "scheduled" else None,
    )


class _BackupStep(BaseOperator):
    """What every backup step shares: the cluster, where the catalog is, and reading earlier steps' XCom.

    (Each step has one flat ``__init__``: every ``__init__`` level of an operator costs DAG-parse time.)
    """

    ui_color = "#fff4d6"
    cluster: ClusterConfig
    catalog_conn_id: str | None
    catalog_sqlite_path: str | None

    @staticmethod
    def _from(context: Context, value: Any, task_id: str | None, what: str) -> Mapping[str, Any]:
        if value is None and task_id is not None:
            value = context["ti"].xcom_pull(task_ids=task_id)
        if not isinstance(value, Mapping):
            where = f"the XCom of task {task_id!r}" if task_id else "the arguments"
            raise ValueError(f"no {what} in {where} (got {type(value).__name__})")
        return value

    def _catalog(self) -> AbstractContextManager[Catalog | None]:
        from tidbops_airflow.hooks.catalog import open_catalog_or_none

        return open_catalog_or_none(self.catalog_conn_id, self.catalog_sqlite_path)

    def _target(self, value: Mapping[str, Any], backup: Mapping[str, Any] | None = None) -> BackupTarget:
        """The plan's target, or the full backup the run step took instead of a refused incremental."""
        from tidbops.backup import BackupTarget

        replanned = backup.get("replanned") if backup is not None else None
        target = BackupTarget.from_dict(replanned or value)
        if target.cluster != self.cluster.name:
            raise ValueError(f"the plan is for cluster {target.cluster!r}, this task for {self.cluster.name!r}")
        return target


class BRBackupPreflightOperator(_BackupStep):
    """Check the cluster before a backup: SQL answers (version, GC safepoint, ``tidb_gc_life_time``
    recorded in the catalog) and no other run's BR job is running on it.

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("catalog_conn_id",)

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self, kwargs, cluster=cluster, catalog_conn_id=catalog_conn_id, catalog_sqlite_path=catalog_sqlite_path
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.backup import preflight
        from tidbops_airflow.hooks.tidb import TiDBHook

        facts = TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).cluster_facts()
        with self._catalog() as catalog:
            result = preflight(self.cluster, facts, catalog, run_info(context), datetime.now(UTC))
        self.log.info(
            "cluster %s ready for a backup: TiDB %s, GC safepoint %s, tidb_gc_life_time %ss, catalog %s",
            self.cluster.name,
            facts.tidb_version or f"(not TiDB: {facts.server_version})",
            show(facts.gc_safe_point),
            facts.gc_life_time_seconds,
            result.catalog,
        )
        return result.to_dict()


class BRBackupPlanOperator(_BackupStep):
    """Decide this run's backup: full, or incremental on the current chain (with the reason), and where.

    :param cluster: the cluster from the fleet config.
    :param kind: ``full`` (always a full backup) or ``incremental`` (when safe, else a full one).
    :param cluster_facts: the preflight's result (its ``gc_safe_point`` rules out a base older than GC).
    :param facts_task_id: or the task whose XCom holds it (``check_cluster``); neither: no GC check.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("cluster_facts", "catalog_conn_id")

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        kind: str,
        cluster_facts: Any = None,
        facts_task_id: str | None = None,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            kind=kind,
            cluster_facts=cluster_facts,
            facts_task_id=facts_task_id,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.backup import describe, plan_backup
        from tidbops.catalog.records import BackupKind
        from tidbops_airflow.hooks.storage import StorageHook

        facts: Mapping[str, Any] = {}
        if self.cluster_facts is not None or self.facts_task_id is not None:
            facts = self._from(context, self.cluster_facts, self.facts_task_id, "cluster facts")
        safe_point = facts.get("gc_safe_point")
        root = StorageHook(cluster=self.cluster).get_storage()
        with self._catalog() as catalog:
            result = plan_backup(
                self.cluster,
                BackupKind(self.kind),
                run_info(context),
                catalog,
                root,
                datetime.now(UTC),
                gc_safe_point=datetime.fromisoformat(safe_point) if safe_point else None,
            )
        self.log.info(
            "plan: %s into %s — %s",
            describe(result.target),
            result.target.storage_uri,
            result.target.reason,
        )
        return result.to_dict()


class BRBackupOperator(_BackupStep):
    """Run ``br backup full`` for the planned target (or adopt a backup an earlier try completed).

    The catalog row goes running → succeeded | failed (with BR's error). The BR hook stays on the operator
    so that ``on_kill`` ends BR (its process group, its pod, its resource). When BR runs in a Kubernetes pod
    with ``br.kubernetes.defer``, or as a TiDB Operator ``Backup`` with ``br.tidb_operator.defer``, the task
    defers while BR runs and resumes in ``resume_br`` when it ended: the steps before BR are not repeated,
    BR's result settles the row as a run that waited would.

    :param cluster: the cluster from the fleet config.
    :param target: the plan step's result (a dict, or an XComArg).
    :param target_task_id: or the task whose XCom holds it (``plan_backup``).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    :param routes: the cluster's alert routes, ``(name, route)`` pairs: a notice goes through them once when
        BR refuses the planned incremental (GC safepoint past its base) and a full backup is taken instead.
    """

    template_fields: Sequence[str] = ("target", "catalog_conn_id")
    ui_color = "#ffe2b3"

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: Any = None,
        target_task_id: str | None = None,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        routes: Sequence[tuple[str, AlertRoute]] = (),
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            target=target,
            target_task_id=target_task_id,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
            routes=list(routes),
        )
        self._br_hook: BRHook | None = None

    def execute(self, context: Context, resume_event: dict[str, Any] | None = None) -> dict[str, Any]:
        from tidbops.backup import describe, run_backup
        from tidbops.keys.owner import backup_key
        from tidbops_airflow.hooks.br import BRHook
        from tidbops_airflow.hooks.storage import StorageHook

        target = self._target(self._from(context, self.target, self.target_task_id, "backup plan"))
        storages = StorageHook(cluster=self.cluster)
        storage = storages.get_storage(target.storage_uri)
        self._br_hook = hook = BRHook(cluster=self.cluster)
        hook.deferrable, hook.resume_event = self._may_defer(), resume_event
        # owner-key (#17): a fresh data key for this backup; BR reads it from the session's 0600 key file,
        # the catalog and the manifest keep it only wrapped to the owner's public key
        fresh = backup_key(self.cluster)
        data_key, wrapped = fresh if fresh is not None else (None, None)
        with self._catalog() as catalog, hook.session(target.backup_id, data_key=data_key) as session:
            outcome = run_backup(
                target,
                run_info(context),
                session=session,
                storage=storage,
                catalog=catalog,
                run_br=lambda argv: hook.run(argv, session),
                wrapped=wrapped,
                storage_for=storages.get_storage,
                resumed=resume_event is not None,
            )
        del data_key, fresh
        if outcome.replanned_now or (resume_event is not None and outcome.replanned):
            # a try that switched to a full backup and deferred while it ran sends the notice on resuming
            self._notify_replanned(context, outcome.replanned or {})
        self.log.info(
            "%s %s: BackupTS %s (%s), %s bytes, catalog %s",
            describe(target),
            "adopted" if outcome.action == "adopted" else "done",
            outcome.backup_ts,
            show(outcome.backup_time, ms=True),
            outcome.size_bytes if outcome.size_bytes is not None else "?",
            outcome.catalog,
        )
        return outcome.to_dict()

    def _may_defer(self) -> bool:
        """``br.kubernetes.defer`` (BR in a pod) or ``br.tidb_operator.defer`` (a ``Backup`` resource), and only
        in the cluster's own pool: with ``fleet.br_concurrency`` the cluster's lease is heartbeated by the
        running task and would lapse while it is deferred."""
        from tidbops_airflow.brslot import FLEET_POOL

        br = self.cluster.br
        remote = {"kubernetes": br.kubernetes, "tidb-operator": br.tidb_operator}.get(br.runner)
        if remote is None or not remote.defer:
            return False
        if self.pool == FLEET_POOL:
            self.log.info("not deferring while BR runs: the cluster's BR lease (fleet.br_concurrency) needs this task")
            return False
        return True

    def resume_br(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from ``BRPodTrigger`` or ``BRResourceTrigger``: BR's pod or ``Backup`` ended (or timed out);
        finish this try with its result."""
        return self.execute(context, resume_event=event)

    def _notify_replanned(self, context: Context, full: Mapping[str, Any]) -> None:
        """One notice through the cluster's routes: the incremental became a full backup (no failure, no page)."""
        from tidbops_airflow.notifiers.health import send_health_notification

        notice = {
            "cluster": self.cluster.name,
            "kind": "notice",
            "key": "backup_replanned_full",
            "severity": "warning",
            "title": f"{self.cluster.name}: incremental replaced by a full backup",
            "message": str(full.get("reason") or ""),
        }
        sent, failed = send_health_notification(self.routes, self.cluster.name, notice, context)
        self.log.info("notice backup_replanned_full sent via %s; failed: %s", sent or "no route", failed or "none")

    def on_kill(self) -> None:
        if self._br_hook is not None:
            self._br_hook.kill()


class BRBackupRecordOperator(_BackupStep):
    """Write ``tidbops-manifest.json`` next to the backup and put the backup in the catalog.

    :param cluster: the cluster from the fleet config.
    :param target: the plan step's result (a dict, or an XComArg).
    :param target_task_id: or the task whose XCom holds it (``plan_backup``).
    :param backup: the run step's result (a dict, or an XComArg).
    :param backup_task_id: or the task whose XCom holds it (``run_br_backup``).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("target", "backup", "catalog_conn_id")

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: Any = None,
        target_task_id: str | None = None,
        backup: Any = None,
        backup_task_id: str | None = None,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            target=target,
            target_task_id=target_task_id,
            backup=backup,
            backup_task_id=backup_task_id,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.backup import BackupOutcome, record_backup
        from tidbops_airflow.hooks.storage import StorageHook

        done = self._from(context, self.backup, self.backup_task_id, "backup result")
        target = self._target(self._from(context, self.target, self.target_task_id, "backup plan"), done)
        backup = BackupOutcome.from_dict(done)
        storage = StorageHook(cluster=self.cluster).get_storage(target.storage_uri)
        with self._catalog() as catalog:
            result = record_backup(
                target,
                backup,
                self.cluster,
                run_info(context),
                storage=storage,
                catalog=catalog,
                now=datetime.now(UTC),
            )
        self.log.info(
            "manifest of %s %s: %s (%s files, %s bytes), catalog %s",
            target.backup_id,
            "written" if result.written else "already there",
            result.manifest_uri,
            result.files,
            result.total_bytes,
            result.catalog,
        )
        return result.to_dict()


class BRBackupVerifyOperator(_BackupStep):
    """Check the backup against its manifest (every file there with its size, ``backupmeta`` present);
    the catalog row is marked verified, or unverified and the task fails.

    :param cluster: the cluster from the fleet config.
    :param target: the plan step's result (a dict, or an XComArg).
    :param target_task_id: or the task whose XCom holds it (``plan_backup``).
    :param backup_task_id: the run step (``run_br_backup``): when it took a full backup instead of the planned
        incremental (BR refused it: GC safepoint), that full backup is verified.
    :param check_hashes: also compare every file's SHA-256 (reads the whole backup).
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("target", "catalog_conn_id")

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: Any = None,
        target_task_id: str | None = None,
        backup_task_id: str | None = None,
        check_hashes: bool = False,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            target=target,
            target_task_id=target_task_id,
            backup_task_id=backup_task_id,
            check_hashes=check_hashes,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.backup import verify_recorded_backup
        from tidbops_airflow.assets import BACKUPS, emit
        from tidbops_airflow.hooks.storage import StorageHook

        done = context["ti"].xcom_pull(task_ids=self.backup_task_id) if self.backup_task_id else None
        plan = self._from(context, self.target, self.target_task_id, "backup plan")
        target = self._target(plan, done if isinstance(done, Mapping) else None)
        storage = StorageHook(cluster=self.cluster).get_storage(target.storage_uri)
        with self._catalog() as catalog:
            result = verify_recorded_backup(target, storage=storage, catalog=catalog, check_hashes=self.check_hashes)
        self.log.info(
            "backup %s verified: %s; catalog %s",
            target.backup_id,
            result.summary,
            result.catalog,
        )
        emit(
            context,
            self.outlets,
            BACKUPS,
            {
                "backup_id": result.backup_id,
                "cluster": self.cluster.name,
                "kind": result.kind,
                "backup_ts": result.backup_ts,
                "backup_time": iso_or_none(result.backup_time),
                "size_bytes": result.size_bytes,
                "verified": True,
                "storage_uri": target.storage_uri,
            },
        )
        return result.to_dict()
