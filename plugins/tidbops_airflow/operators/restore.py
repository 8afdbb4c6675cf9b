"""Operators of the on-demand restore (``tidb_restore``): plan → choose target → restore → validate → record.

The request, the guardrails and the audit row live in ``tidbops.restore``; these read the run's Params,
the fleet config, the catalog, the clusters and BR, call it, log, and pass small JSON dicts on (XCom).
``restore__<target>`` and ``validate`` are the operators drills use too (``BRRestoreOperator``,
``ValidateRestoreOperator`` of ``tidbops_airflow.operators.recovery``, over the restore engine
``tidbops.recovery``). A step that fails leaves its (redacted) error in XCom ``error``, and a refusal its
guardrail in XCom ``refused``, before raising, so ``record_restore`` (trigger rule ``all_done``) can
record what happened.

A real (not dry-run) restore holds the backups it restores (holder: the restore id;
``tidbops.recovery.holds``) from ``plan_restore`` until ``record_restore``, which releases them whatever
happened: retention never expires a held backup. ``restore__<target>`` takes the holds again for a full
ttl.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import BaseOperator, Context

from tidbops_airflow.notes import NOTE_CONN_ID
from tidbops_airflow.operators.recovery import RecoveryStep

if TYPE_CHECKING:
    from tidbops.config import ClusterConfig
    from tidbops.pitr import LogRange, PitrWindow
    from tidbops.restore import CheckedRequest, RestorePlan

PLAN_TASK = "plan_restore"
BRANCH_TASK = "choose_target"
VALIDATE_TASK = "validate"
RECORD_TASK = "record_restore"
GATE_TASK = "assert_restore_succeeded"


class _RestoreStep(RecoveryStep):
    """The catalog, the run's request and plan, error reporting (``RecoveryStep``)."""

    ui_color = "#fde2e2"
    plan_task_id = PLAN_TASK

    def __init__(
        self, *, catalog_conn_id: str | None = None, catalog_sqlite_path: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.catalog_conn_id = catalog_conn_id
        self.catalog_sqlite_path = catalog_sqlite_path


def restore_task_id(target: str) -> str:
    """The restore task of one target cluster (each runs in that cluster's BR pool)."""
    return f"restore__{target}"


def _restore_result(context: Context, task_ids: Sequence[str], key: str = "return_value") -> Any:
    """What the restore task of this run's target left (the others were skipped)."""
    for task_id in task_ids:
        value = context["ti"].xcom_pull(task_ids=task_id, key=key)
        if value is not None:
            return value
    return None


def _user(context: Context) -> str | None:
    user = getattr(context.get("dag_run"), "triggering_user_name", None)
    return str(user) if user else None


class RestorePlanOperator(_RestoreStep):
    """Check the request against every guardrail and make the plan; print it (task log, run note).

    Reads the trigger form (``params``). Nothing is changed here: it reads the catalog, the target's
    databases, ``br log status`` of the target and ``br log metadata`` of the source's log storage (for
    the PITR window), in that order, and only as far as the request needs.

    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    :param note_conn_id: an http connection to this Airflow's REST API (login/password), used to set the
        run's note to the plan; without it the plan is only in the log and the XCom.
    """

    ui_color = "#e3ecff"

    def __init__(self, *, note_conn_id: str = NOTE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.note_conn_id = note_conn_id

    def _window(self, source: ClusterConfig, backups: Sequence[Any]) -> PitrWindow | None:
        from tidbops.catalog.logkeys import window_within_log_keys
        from tidbops.pitr import compute_window

        if not source.log_backup.enabled:
            return None
        window = compute_window(source.name, backups, self._log_range(source))
        with self._catalog() as catalog:  # owner-key log keys (#17): a PITR stays inside one key segment
            return window_within_log_keys(catalog, window)

    def _log_range(self, source: ClusterConfig) -> LogRange | None:
        from tidbops_airflow.hooks.br import BRHook, read_log_range

        return read_log_range(BRHook(cluster=source), "restore-log-metadata")  # the source's log storage

    def _target_databases(self, target: ClusterConfig) -> list[str]:
        from tidbops.recovery.scratch import leftover_schemas
        from tidbops_airflow.hooks.tidb import TiDBHook

        with TiDBHook(tidb_conn_id=target.tidb_conn_id).session() as conn, conn.cursor() as cursor:
            return leftover_schemas(cursor)

    def _target_log_tasks(self, target: ClusterConfig) -> list[str]:
        from tidbops.br import runner
        from tidbops.logbackup import STATUS_TIMEOUT, read_log_status
        from tidbops_airflow.hooks.br import BRHook

        # PD only, read-only: BR v8's checkTaskExists refuses a restore while any log task exists
        hook = BRHook(cluster=target)
        with hook.pd_access() as pd_target, runner.passing_log_file(target.name, "restore-log-status") as log_file:
            reading = read_log_status(
                pd_target,
                lambda argv: hook.run_pd(argv, pd_target, timeout=STATUS_TIMEOUT, log_file=log_file),
                log_file=log_file,
            )
        return [t.name for t in reading.tasks]

    def _hold(self, plan: RestorePlan, source: ClusterConfig) -> timedelta:
        """Hold the plan's backups until ``record_restore`` (a restore that cannot hold them does not start)."""
        from tidbops.recovery.holds import hold_plan

        with self._catalog() as catalog:
            if catalog is None:
                raise RuntimeError("the catalog does not answer: the backups to restore cannot be held")
            return hold_plan(catalog, source, plan)

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.catalog.records import DrillStatus, make_restore_id
        from tidbops.restore import (
            RestoreRequest,
            check_log_tasks,
            check_request,
            check_scratch_free,
            check_target_databases,
            plan_restore,
            render_plan,
            resolve_point,
        )
        from tidbops_airflow.dagbuilder import fleet
        from tidbops_airflow.notes import restore_note

        user = _user(context)
        ti = context["ti"]
        with self._reporting(context):
            request = RestoreRequest.from_conf(context["params"])
            checked: CheckedRequest = check_request(request, fleet().clusters)
            source, target = checked.source, checked.target
            with self._catalog() as catalog:
                if catalog is None:
                    raise RuntimeError("the catalog does not answer: the backups to restore are chosen from it")
                backups = catalog.list_backups(source.name)
                drills = catalog.list_drills(source.name, limit=50)
                running = catalog.list_drills(target=target.name, status=DrillStatus.RUNNING) if target.scratch else []
            resolved = None
            if checked.point.kind == "backup":  # needs the catalog only: checked before anything reads BR
                resolved = resolve_point(checked.point, source, backups, None)
            check_scratch_free(target, running)
            wipe = check_target_databases(target, self._target_databases(target))
            check_log_tasks(target, self._target_log_tasks(target))
            if resolved is None:
                resolved = resolve_point(checked.point, source, backups, self._window(source, backups))
            started = context["dag_run"].run_after or datetime.now(UTC)
            plan = plan_restore(
                checked,
                restore_id=make_restore_id(source.name, started, dag_id=str(ti.dag_id), run_id=str(ti.run_id)),
                resolved=resolved,
                wipe=wipe,
                drills=drills,
                now=datetime.now(UTC),
            )
            held = self._hold(plan, source) if not plan.dry_run else None
        text = render_plan(plan, requested_by=user)
        if held is not None:
            self.log.info("restore %s holds %s for %s", plan.restore_id, ", ".join(plan.backups_used), held)
        self.log.info("restore plan:\n%s", text)
        noted = self._set_note(context, restore_note(plan, requested_by=user))
        return {"plan": plan.to_dict(), "text": text, "requested_by": user, "note_set": noted}


class RestoreTargetBranchOperator(BaseBranchOperator):
    """Follow the plan to its target's restore task; a dry run follows none (every restore is skipped).

    :param restore_task_ids: the restore task of every possible target (``restore__<target>``).
    """

    ui_color = "#e3ecff"

    def __init__(self, *, restore_task_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.restore_task_ids = list(restore_task_ids)

    def choose_branch(self, context: Context) -> list[str]:
        from tidbops.restore import RestorePlan

        value = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        if not isinstance(value, Mapping) or "plan" not in value:
            raise ValueError(f"no restore plan in the XCom of {PLAN_TASK!r}")
        plan = RestorePlan.from_dict(value["plan"])
        if plan.dry_run:
            self.log.info("dry run: no restore runs")
            return []
        task_id = restore_task_id(plan.target)
        if task_id not in self.restore_task_ids:
            raise ValueError(
                f"no restore task for target {plan.target} in this DAG (the fleet config changed since it was "
                f"parsed?); targets: {', '.join(t.removeprefix('restore__') for t in self.restore_task_ids)}"
            )
        return [task_id]


class RestoreRecordOperator(_RestoreStep):
    """Record the restore in the catalog's ``restores`` table (trigger rule ``all_done``): who asked
    (the Airflow user who triggered the run), why, the request, the plan, the outcome, the durations;
    then release the restore's holds on its backups. Refused and dry-run requests are recorded too.
    Fails (and retries) when the catalog does not answer: a restore without its audit row is not done.

    :param restore_task_ids: the restore task of every possible target (``restore__<target>``).
    """

    def __init__(self, *, restore_task_ids: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.restore_task_ids = list(restore_task_ids)

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.catalog.records import make_restore_id
        from tidbops.restore import RestoreRequest, restore_record

        ti = context["ti"]
        planned = self._xcom(context, PLAN_TASK)
        restored = _restore_result(context, self.restore_task_ids)
        results = {
            "plan": planned,
            "restore": restored if isinstance(restored, Mapping) else None,
            "validate": self._xcom(context, VALIDATE_TASK),
        }
        restore_error = _restore_result(context, self.restore_task_ids, key="error")
        errors = {
            "plan": ti.xcom_pull(task_ids=PLAN_TASK, key="error"),
            "restore": restore_error,
            "validate": ti.xcom_pull(task_ids=VALIDATE_TASK, key="error"),
        }
        errors = {k: str(v) if v else None for k, v in errors.items()}
        refused = ti.xcom_pull(task_ids=PLAN_TASK, key="refused")
        try:
            request = RestoreRequest.from_conf(context["params"])
        except Exception:  # a form the request could not even be read from: record it as given
            request = None
        started = context["dag_run"].run_after or datetime.now(UTC)
        source = request.source if request is not None else str(context["params"].get("source_cluster") or "?")
        record = restore_record(
            restore_id=make_restore_id(source or "unknown", started, dag_id=str(ti.dag_id), run_id=str(ti.run_id)),
            request=request,
            raw_request=dict(context["params"]),
            requested_by=_user(context),
            requested_at=started,
            results=results,
            errors=errors,
            refused=str(refused) if refused else None,
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            now=datetime.now(UTC),
        )
        with self._catalog() as catalog:
            if catalog is None:
                raise RuntimeError(f"the catalog does not answer: restore {record.id} is not recorded yet (retrying)")
            try:
                saved = catalog.save_restore(record)
            finally:
                released = catalog.release_holds(record.id)
        if released:
            self.log.info("restore %s released its holds on %d backup(s)", record.id, released)
        line = (
            f"restore {saved.id} {saved.source} → {saved.target} {saved.status.value.upper()}"
            f" (requested by {saved.requested_by or 'unknown'}: {saved.reason!r})"
            + (f": {saved.error}" if saved.error else "")
        )
        (self.log.error if saved.status.value in ("failed", "refused") else self.log.info)("%s", line)
        self._note_outcome(context, planned, saved.status.value, saved.error)
        return {"restore_id": saved.id, "status": saved.status.value, "summary": line}

    def _note_outcome(
        self, context: Context, planned: Mapping[str, Any] | None, status: str, error: str | None
    ) -> None:
        """A real restore's note says how it ended (a dry run's and a refusal's notes are final already)."""
        from tidbops.restore import RestorePlan
        from tidbops_airflow.notes import restore_note

        if planned is None or not planned.get("plan") or status in ("dry_run", "refused"):
            return
        plan = RestorePlan.from_dict(planned["plan"])
        self._set_note(context, restore_note(plan, requested_by=_user(context), outcome=status, error=error))


class RestoreGateOperator(BaseOperator):
    """Fail (no retry) when the request was refused or the restore failed, so the run shows red (a run's
    state follows its last task, and ``record_restore`` succeeds once the audit row is in)."""

    ui_color = "#e3ecff"

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from tidbops_airflow.operators.common import CleanFailure

        record = context["ti"].xcom_pull(task_ids=RECORD_TASK)
        if not isinstance(record, Mapping):
            raise AirflowFailException(f"no restore record in the XCom of {RECORD_TASK!r}")
        if record.get("status") not in ("succeeded", "dry_run"):
            self.log.error("%s", record.get("summary"))
            raise CleanFailure(str(record.get("summary")))  # the verdict in one line; the cause is upstream
        self.log.info("%s", record.get("summary"))
        return {"restore_id": record.get("restore_id"), "status": record.get("status")}
