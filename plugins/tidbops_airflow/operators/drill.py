"""Operators of the restore drill: check → choose → (wait) → prepare → restore → validate → drop → record → gate.

Each builds its hooks, calls ``tidbops.drill`` (where the drill's logic and its docs live), logs one line
and returns a small JSON-safe dict (XCom). The restore and the validation are the restore engine's
(``tidbops.recovery``), run by the operators both restore DAGs share (``BRRestoreOperator``,
``ValidateRestoreOperator`` in ``tidbops_airflow.operators.recovery``). Steps read earlier steps' results
from the XCom of the task ids the DAG wires in. A step that fails leaves its error (redacted) in its XCom
``error`` before raising, so ``record_drill`` (trigger rule ``all_done``) can say what went wrong.

The scratch cluster is resolved at run time (``target``, templated: the run's conf ``target``, else
the source's ``drill.target``) against the fleet config as it is then, and every step that touches it
refuses a cluster that is not marked ``scratch: true``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.bases.skipmixin import SkipMixin

from tidbops.config import ClusterConfig
from tidbops_airflow.operators.common import init_base_operator
from tidbops_airflow.operators.recovery import RecoveryStep, optional_int

if TYPE_CHECKING:
    from tidbops.backup import RunInfo
    from tidbops.catalog.store import Catalog
    from tidbops.drill import DrillPlan
    from tidbops.pitr import LogRange

BR_VERSION_TIMEOUT = 30.0  # seconds for ``br -V``

STEP_TASKS = {
    "check": "check_drill_due",
    "choose": "choose_restore_point",
    "wait": "wait_for_log_checkpoint",
    "prepare": "prepare_scratch",
    "restore": "restore_to_scratch",
    "validate": "validate_restored_data",
    "drop": "drop_scratch",
}


class _DrillStep(RecoveryStep):
    """The source cluster, the scratch target, this run (one flat ``__init__`` each)."""

    ui_color = "#e3ecff"
    cluster: ClusterConfig
    target: str | None
    plan_task_id = STEP_TASKS["choose"]

    def _run(self, context: Context, checked: Mapping[str, Any] | None = None) -> RunInfo:
        """This run, started when ``check_drill_due`` first ran (its XCom ``started_at``; ``checked``: that
        XCom when the caller has it): the drill's id and catalog times are that real time, the same for
        every step and try (even after the run is cleared from a later step, when Airflow gives the run a
        new ``start_date``)."""
        from tidbops_airflow.operators.backup import run_info

        if checked is None:
            checked = self._xcom(context, STEP_TASKS["check"])
        started = checked.get("started_at") if checked else None
        return run_info(context, started_at=datetime.fromisoformat(started) if isinstance(started, str) else None)

    def _plan(self, context: Context) -> DrillPlan:
        from tidbops.drill import DrillPlan

        value = self._xcom(context, self.plan_task_id)
        if value is None:
            raise ValueError(f"no drill plan in the XCom of {self.plan_task_id!r}")
        plan = DrillPlan.from_dict(value)
        if plan.cluster != self.cluster.name:
            raise ValueError(f"the plan is for cluster {plan.cluster!r}, this task for {self.cluster.name!r}")
        return plan

    def _scratch(self) -> ClusterConfig:
        """The target, from the fleet config as it is now; ``NotScratchError`` when refused (inside
        ``_reporting``: no retry)."""
        from tidbops.recovery.scratch import scratch_target
        from tidbops_airflow.dagbuilder import fleet

        return scratch_target(fleet().clusters, self.cluster, self.target)

    def _clear(self, target: ClusterConfig) -> list[str]:
        """Drop every database of the scratch cluster ``target`` (refused before a statement if it is not)."""
        from tidbops.recovery.scratch import clear_scratch
        from tidbops_airflow.hooks.tidb import TiDBHook

        with TiDBHook(tidb_conn_id=target.tidb_conn_id).session() as conn, conn.cursor() as cursor:
            return clear_scratch(cursor, target, source=self.cluster.name)


class DrillCheckDueOperator(_DrillStep, SkipMixin):
    """Read what a drill of the cluster would stand on now (``tidbops.freshness``: TiDB version, BR version,
    encryption method and key id, storage) and decide whether a drill runs: a manual run, a tick of
    ``schedules.drill`` since the last drill, or a passed drill made stale by a change. When none is due,
    every later task is skipped (the run is a green no-op). The basis goes to XCom for ``record_drill``.

    A version or key that cannot be read is unknown (noted), never a failure: the drill's own steps fail
    loudly if the cluster or the key is broken. The catalog is needed (the drills are read from it).

    :param cluster: the source cluster from the fleet config.
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
            self,
            kwargs,
            cluster=cluster,
            target=None,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def _tidb_version(self) -> str | None:
        from tidbops.tidb import read_cluster_facts
        from tidbops_airflow.hooks.tidb import TiDBHook

        with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).session() as conn, conn.cursor() as cursor:
            facts = read_cluster_facts(cursor)
        return facts.tidb_version or facts.server_version

    def _br_version(self) -> str | None:
        from tidbops.freshness import parse_br_version
        from tidbops_airflow.hooks.br import BRHook

        hook = BRHook(cluster=self.cluster)
        proc = hook.run_pd([self.cluster.br.path, "-V"], self.cluster, timeout=BR_VERSION_TIMEOUT)
        return parse_br_version(proc.stdout + "\n" + proc.stderr_tail)

    def _key_hex(self) -> str | None:
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        enc = self.cluster.br.encryption
        if enc is None or enc.key_conn_id is None:  # owner-key: no shared key; the basis names the public key
            return None
        key = (BaseHook.get_connection(enc.key_conn_id).password or "").strip()
        if key:
            mask_secret(key)
        return key or None

    def _read(self, what: str, read: Callable[[], str | None], notes: list[str]) -> str | None:
        try:
            return read()
        except Exception as exc:  # unknown, not a failure: the drill's own steps fail on a broken cluster
            from tidbops_airflow.notifiers.payload import clean_error

            notes.append(f"{what} not read: {clean_error(f'{type(exc).__name__}: {exc}')}")
            return None

    def execute(self, context: Context) -> dict[str, Any]:
        from concurrent.futures import ThreadPoolExecutor

        from tidbops.drill import DrillError
        from tidbops.freshness import current_basis, drill_due

        notes: list[str] = []
        dag_run = context["dag_run"]
        manual = getattr(dag_run.run_type, "value", dag_run.run_type) == "manual"
        with self._reporting(context):
            # `br -V` is a process of its own (a tenth of a second): it runs while the rest is read
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="br-version") as pool:
                br_notes: list[str] = []
                br = pool.submit(self._read, "BR version", self._br_version, br_notes)
                tidb_version = self._read("TiDB version", self._tidb_version, notes)
                br_version = br.result()
                notes += br_notes
            key_hex = self._read("crypter key", self._key_hex, notes)
            try:
                basis = current_basis(self.cluster, tidb_version=tidb_version, br_version=br_version, key_hex=key_hex)
            except ValueError as exc:  # not a crypter key (key_id says so without showing it): its id unknown
                notes.append(f"crypter key not read: {exc}")
                basis = current_basis(self.cluster, tidb_version=tidb_version, br_version=br_version, key_hex=None)
            with self._catalog() as catalog:
                if catalog is None:
                    raise DrillError("the catalog does not answer: whether a drill is due is read from it")
                due = drill_due(
                    self.cluster.name,
                    schedule=self.cluster.schedules.drill,
                    now=datetime.now(UTC),
                    drills=catalog.list_drills(self.cluster.name, limit=50),
                    current=basis,
                    manual=manual,
                )
                self._observe(catalog, basis, due.freshness.to_dict(), notes)
        for note in notes:
            self.log.warning("%s", note)
        # the run's start: the drill's id and times (see _run); this task's own XCom is cleared when it starts
        started = self._run(context, {}).started_at
        result = {**due.to_dict(), "basis": basis.to_dict(), "notes": notes, "started_at": started.isoformat()}
        self.log.info("drill of %s %s: %s", self.cluster.name, "DUE" if due.due else "not due", due.reason)
        if not due.due:
            context["ti"].xcom_push(key="return_value", value=result)
            self.skip(ti=context["ti"], tasks=list(context["task"].get_flat_relatives(upstream=False)))
        return result

    def _observe(self, catalog: Catalog, basis: Any, freshness: Mapping[str, Any], notes: list[str]) -> None:
        """A ``drill.basis_observed`` event when the basis differs from the last one observed (the
        compliance report reads it: ``tidbops.freshness.observed_basis``)."""
        from tidbops.backup import CatalogLink
        from tidbops.freshness import FIELD_NAMES, OBSERVED_EVENT

        link = CatalogLink(catalog, notes)
        last = link.call(
            "read the last basis", lambda c: c.list_events(self.cluster.name, kind=OBSERVED_EVENT, limit=1)
        )
        seen = (last[-1].details or {}).get("basis") if last else None
        if seen == basis.to_dict():
            return
        shown = ", ".join(f"{FIELD_NAMES[k]} {v or 'unknown'}" for k, v in basis.to_dict().items())
        link.call(
            "record the observed basis",
            lambda c: c.add_event(
                OBSERVED_EVENT,
                f"drill basis of {self.cluster.name}: {shown}",
                cluster=self.cluster.name,
                details={"basis": basis.to_dict(), "freshness": dict(freshness)},
            ),
        )


class DrillChooseRestorePointOperator(_DrillStep):
    """Choose the drill's restore point: the newest snapshot chain, or a point in the PITR window; hold
    the backups it restores (holder: the drill id) so that retention keeps them until ``record_drill``.

    :param cluster: the source cluster from the fleet config.
    :param target: the scratch cluster (templated; empty: the cluster's ``drill.target``).
    :param seed: PITR mode: the seed of the drawn point (templated; empty: from the drill id).
    :param recent_seconds: PITR mode: draw from the last this many seconds of the window.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("target", "seed", "catalog_conn_id")

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: str | None = None,
        seed: Any = None,
        recent_seconds: float = 600.0,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            target=target,
            seed=seed,
            recent_seconds=recent_seconds,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def _log_range(self) -> LogRange | None:
        from tidbops_airflow.hooks.br import BRHook, read_log_range

        return read_log_range(BRHook(cluster=self.cluster), "drill-log-metadata")  # the source's log storage

    def execute(self, context: Context) -> dict[str, Any]:
        from datetime import timedelta

        from tidbops.catalog.logkeys import window_within_log_keys
        from tidbops.drill import DrillError, plan_drill
        from tidbops.pitr import compute_window
        from tidbops.recovery.holds import hold_plan

        with self._reporting(context):
            target = self._scratch()
            with self._catalog() as catalog:
                if catalog is None:
                    raise DrillError("the catalog does not answer: the restore point is chosen from it")
                backups = catalog.list_backups(self.cluster.name)
            window = None
            if self.cluster.drill.mode == "pitr":
                window = compute_window(self.cluster.name, backups, self._log_range())
                with self._catalog() as catalog:  # owner-key log keys (#17): inside one key segment
                    window = window_within_log_keys(catalog, window)
            plan = plan_drill(
                self.cluster,
                target,
                self._run(context),
                datetime.now(UTC),
                backups=backups,
                window=window,
                seed=optional_int(self.seed, "seed"),
                recent=timedelta(seconds=self.recent_seconds),
            )
            with self._catalog() as catalog:  # a drill that cannot hold its backups does not start
                if catalog is None:
                    raise DrillError("the catalog does not answer: the drill's backups cannot be held")
                ttl = hold_plan(catalog, self.cluster, plan)
        self.log.info(
            "drill %s of %s into %s: %s; holding %s for %s",
            plan.drill_id, plan.cluster, plan.target, plan.reason, ", ".join(plan.backups_used), ttl,
        )  # fmt: skip
        return plan.to_dict()


class DrillPrepareScratchOperator(_DrillStep):
    """Take the scratch cluster for this drill (the ``drills`` row, running, holds it) and drop what an
    earlier drill left there. Refuses (no retry) a target not marked scratch.

    :param cluster: the source cluster from the fleet config.
    :param target: the scratch cluster (templated; empty: the cluster's ``drill.target``).
    :param hold_hours: another drill's hold on the target lapses after this long without an update.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("target", "catalog_conn_id")
    ui_color = "#ffe2b3"

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: str | None = None,
        hold_hours: float = 6.0,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            target=target,
            hold_hours=hold_hours,
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from datetime import timedelta

        from tidbops.backup import CatalogLink
        from tidbops.catalog.records import DrillRecord, DrillStatus

        with self._reporting(context):
            target = self._scratch()
            plan = self._plan(context)
            if plan.target != target.name:
                raise ValueError(f"the plan restores into {plan.target}, this run's target is {target.name}")
            run = self._run(context)
            notes: list[str] = []
            with self._catalog() as catalog:
                link = CatalogLink(catalog, notes)
                hold = DrillRecord(
                    id=plan.drill_id,
                    cluster=self.cluster.name,
                    target=target.name,
                    mode=plan.mode,
                    status=DrillStatus.RUNNING,
                    started_at=run.started_at,
                    restore_ts=plan.restore_ts,
                    point_reason=plan.reason,
                    point_seed=plan.seed,
                    backups_used=plan.backups_used,
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    try_number=run.try_number,
                )
                # ScratchInUseError (another drill holds it) fails the try; the retries wait for it
                link.call(
                    "take the scratch cluster",
                    lambda c: c.claim_scratch(hold, stale_after=timedelta(hours=self.hold_hours)),
                )
            cleared = self._clear(target)
        self.log.info(
            "scratch cluster %s taken for drill %s%s; dropped what was left: %s",
            target.name,
            plan.drill_id,
            "" if link.available else " (catalog unavailable: no hold recorded)",
            ", ".join(cleared) or "nothing",
        )
        return {"target": target.name, "drill_id": plan.drill_id, "cleared": cleared, "notes": notes}


class DrillDropScratchOperator(_DrillStep):
    """Drop everything the drill restored into the scratch cluster (trigger rule ``all_done``: also after
    a failed restore or validation). Only when this drill took the scratch (``prepare_scratch`` finished):
    a drill refused or kept waiting never touches it; a cluster not marked scratch is never touched.

    :param cluster: the source cluster from the fleet config.
    :param target: the scratch cluster (templated; empty: the cluster's ``drill.target``).
    """

    template_fields: Sequence[str] = ("target",)
    ui_color = "#ffd6d6"

    def __init__(self, *, cluster: ClusterConfig, target: str | None = None, **kwargs: Any) -> None:
        init_base_operator(self, kwargs, cluster=cluster, target=target, catalog_conn_id=None, catalog_sqlite_path=None)

    def execute(self, context: Context) -> dict[str, Any]:
        with self._reporting(context):
            prepared = self._xcom(context, STEP_TASKS["prepare"])
            if prepared is None:
                self.log.info(
                    "this drill never took a scratch cluster (prepare_scratch did not finish): nothing to drop"
                )
                return {"target": None, "dropped": [], "dropped_ok": False, "reason": "the scratch was never taken"}
            target = self._scratch()
            if prepared.get("target") != target.name:
                raise ValueError(f"prepare_scratch took {prepared.get('target')!r}, this run's target is {target.name}")
            dropped = self._clear(target)
        self.log.info("scratch cluster %s dropped: %s", target.name, ", ".join(dropped) or "it was empty")
        return {"target": target.name, "dropped": dropped, "dropped_ok": True}


class DrillRecordOperator(_DrillStep):
    """Record the drill (trigger rule ``all_done``): its ``drills`` catalog row (which also gives the
    scratch back) with its basis (from ``check_drill_due``), tier 3 of the backups it used
    (``tidbops.drill.tier3_verdict``), the release of its holds, and ``drill.json`` in backup storage,
    from what every step reported or the errors they left. Returns the record; ``assert_drill_passed``
    turns a failed drill into a failed run.

    :param cluster: the source cluster from the fleet config.
    :param target: the scratch cluster (templated; empty: the cluster's ``drill.target``).
    :param steps: the steps of this DAG (names of ``STEP_TASKS``) that must finish for a drill to pass.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("target", "catalog_conn_id")

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        target: str | None = None,
        steps: Sequence[str] = ("choose", "prepare", "restore", "validate"),
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            target=target,
            steps=tuple(steps),
            catalog_conn_id=catalog_conn_id,
            catalog_sqlite_path=catalog_sqlite_path,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.drill import (
            REPORT_NAME,
            drill_dir,
            drill_id_for,
            drill_record,
            record_drill,
            record_to_dict,
            summary_line,
        )
        from tidbops_airflow.assets import DRILLS, backups_size, emit
        from tidbops_airflow.hooks.storage import StorageHook

        # each XCom read is a round trip to Airflow's API: only the steps this DAG has, and a step's error
        # only when it has no result (it failed) or its result says it failed (the validation keeps its
        # result when the data differs); a passed snapshot drill reads 6 XComs, not 14
        tasks = set(self.dag.task_ids) if self.has_dag() else set(STEP_TASKS.values())
        results = {name: self._xcom(context, task) if task in tasks else None for name, task in STEP_TASKS.items()}
        errors: dict[str, str | None] = dict.fromkeys(STEP_TASKS)
        for name, task in STEP_TASKS.items():
            result = results[name]
            if task in tasks and (result is None or result.get("ok") is False):
                error = context["ti"].xcom_pull(task_ids=task, key="error")
                errors[name] = str(error) if error else None
        run = self._run(context, results["check"])
        where = f"{self.cluster.storage.uri}/{drill_dir(self.cluster.name, drill_id_for(self.cluster, run))}"
        record = drill_record(
            self.cluster,
            run,
            results,
            errors,
            target=self.target or self.cluster.drill.target or "?",
            report_uri=f"{where}/{REPORT_NAME}",
            now=datetime.now(UTC),
            required=self.steps,
            basis=(results.get("check") or {}).get("basis"),
        )
        storage = StorageHook(cluster=self.cluster).get_storage(where)
        with self._catalog() as catalog:
            saved, notes = record_drill(record, storage=storage, catalog=catalog)
            size = backups_size(catalog, saved.backups_used)
        for note in notes:
            self.log.warning("%s", note)
        line = summary_line(saved)
        (self.log.info if saved.status.value == "passed" else self.log.error)("%s", line)
        emit(
            context,
            self.outlets,
            DRILLS,
            {
                "drill_id": saved.id,
                "cluster": saved.cluster,
                "target": saved.target,
                "mode": saved.mode,
                "status": saved.status.value,
                "restore_ts": saved.restore_ts,
                "restore_time": saved.restore_time.isoformat() if saved.restore_time else None,
                "size_bytes": size,
                "rto_seconds": saved.rto_seconds,
                "backups_used": list(saved.backups_used),
            },
        )
        return {**record_to_dict(saved), "summary": line, "notes": list(notes)}


class DrillGateOperator(_DrillStep):
    """Fail (without retrying) when the drill failed or its scratch cluster was not dropped, so the run
    shows red. The failing step alerted already: this task carries no failure callback.

    :param cluster: the source cluster from the fleet config.
    :param record_task_id: the record step, whose XCom is the drill's record.
    """

    def __init__(self, *, cluster: ClusterConfig, record_task_id: str = "record_drill", **kwargs: Any) -> None:
        init_base_operator(
            self,
            kwargs,
            cluster=cluster,
            record_task_id=record_task_id,
            target=None,
            catalog_conn_id=None,
            catalog_sqlite_path=None,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        record = self._xcom(context, self.record_task_id)
        if record is None:
            raise AirflowFailException(f"no drill record in the XCom of {self.record_task_id!r}")
        if not record.get("passed"):
            raise AirflowFailException(f"restore drill of {self.cluster.name} FAILED: {record.get('error')}")
        if not record.get("scratch_dropped"):
            raise AirflowFailException(
                f"restore drill of {self.cluster.name} passed, but scratch cluster {record.get('target')} still "
                "holds the restored data (drop_scratch failed); clear drop_scratch"
            )
        self.log.info("%s", record.get("summary"))
        return {"passed": True, "drill_id": record.get("drill_id")}


class SourceFingerprintOperator(BaseOperator):
    """Right after a backup (the backup pipelines' last task, with ``drill.source_fingerprints``): record
    the source's chunk fingerprints as of the backup's BackupTS, while its history is there, within the
    budget, in ``<storage>/<cluster>/drills/fingerprints/<backup id>.json``. A drill of that backup whose
    point's history is gone by then compares the restored data against them.

    :param cluster: the cluster from the fleet config.
    :param backup_task_id: the task whose XCom is the backup's result (``run_br_backup``).
    :param max_tables: fingerprint at most this many tables (default ``drill.fingerprint_max_tables``).
    :param max_rows: stop after this many rows (default ``drill.fingerprint_max_rows``).
    """

    ui_color = "#e3ecff"

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        backup_task_id: str = "run_br_backup",
        max_tables: int | None = None,
        max_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        init_base_operator(
            self, kwargs, cluster=cluster, backup_task_id=backup_task_id, max_tables=max_tables, max_rows=max_rows
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from tidbops.recovery.errors import HistoryGoneError
        from tidbops.recovery.fingerprints import fingerprints_path, take_source_fingerprints
        from tidbops.tidb import read_cluster_facts
        from tidbops_airflow.hooks.storage import StorageHook
        from tidbops_airflow.hooks.tidb import TiDBHook

        backup = context["ti"].xcom_pull(task_ids=self.backup_task_id)
        if not isinstance(backup, Mapping) or not backup.get("backup_ts"):
            raise ValueError(f"no backup result in the XCom of {self.backup_task_id!r}")
        with TiDBHook(tidb_conn_id=self.cluster.tidb_conn_id).session() as conn, conn.cursor() as cursor:
            facts = read_cluster_facts(cursor)
            try:
                recorded = take_source_fingerprints(
                    cursor,
                    cluster=self.cluster.name,
                    backup_id=str(backup["backup_id"]),
                    backup_ts=int(backup["backup_ts"]),
                    now=datetime.now(UTC),
                    gc_safe_point=facts.gc_safe_point,
                    gc_life_time_seconds=facts.gc_life_time_seconds,
                    max_tables=self.max_tables or self.cluster.drill.fingerprint_max_tables,
                    max_rows=self.max_rows or self.cluster.drill.fingerprint_max_rows,
                )
            except HistoryGoneError as exc:
                raise AirflowFailException(str(exc)) from None
        path = fingerprints_path(self.cluster.name, recorded.backup_id)
        StorageHook(cluster=self.cluster).get_storage().write_bytes(path, recorded.to_bytes(), overwrite=True)
        summary = {**recorded.summary(), "uri": f"{self.cluster.storage.uri}/{path}"}
        self.log.info(
            "source fingerprints of %s as of its BackupTS: %s tables (%s fingerprinted), %s rows, %s chunks in "
            "%.1fs: %s%s",
            recorded.backup_id,
            summary["tables"],
            summary["fingerprinted"],
            summary["rows"],
            summary["chunks"],
            recorded.seconds,
            summary["uri"],
            f"; {'; '.join(recorded.notes)}" if recorded.notes else "",
        )
        return summary
