"""The wiring of ``dags/tidb_restore.py``: one DAG for the fleet, manual runs only, with a trigger form.

plan_restore → choose_target → restore__<target> (one per possible target) → validate → record_restore
→ assert_restore_succeeded

* ``plan_restore`` checks every guardrail and prints the plan; a refusal fails it (no retry) and the
  steps after it do not run. A dry run stops after it: ``choose_target`` skips every restore.
* ``restore__<target>`` runs in the target's pool ``br_<target>`` (one BR job per cluster at a time,
  shared with the backup and drill DAGs). A pool is fixed when the DAG is parsed, not per run, hence one
  task per cluster that some source may be restored into, and ``choose_target`` follows the plan's.
  No retries: a restore is a human's decision, cleared by a human. ``restore__<target>`` and ``validate``
  are the operators drills use too (``tidbops_airflow.operators.recovery``).
* A target with ``scratch_kubernetes`` is made for the restore and deleted after it
  (``create_scratch__<target>`` → ``restore__<target>``; ``delete_scratch__<target>`` after ``validate``,
  whatever happened; ``tidbops_airflow.operators.kube_scratch``).
* ``record_restore`` always runs: the ``restores`` row of every request, refused, dry run or real.
  ``assert_restore_succeeded`` then makes a refused or failed request a failed run (a run's state follows
  its last task).
* Alerts: ``assert_restore_succeeded`` (a refused or failed request) and ``record_restore`` (the audit row
  could not be written) alert through the alert routes of the request's source and target clusters
  (``RequestRoutesNotifier``): one alert per failed request, whichever step failed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Self

from airflow.sdk import DAG, Param, TriggerRule

from tidbops.config import PRODUCTION_ENVS, ClusterConfig, Fleet
from tidbops.restore_rules import POINT_FORMATS, allowed_targets
from tidbops_airflow.assets import restores_asset
from tidbops_airflow.brslot import br_slot
from tidbops_airflow.dagbuilder import START_DATE
from tidbops_airflow.notifiers.alerts import RequestRoutesNotifier
from tidbops_airflow.operators.recovery import BRRestoreOperator, ValidateRestoreOperator
from tidbops_airflow.operators.restore import (
    BRANCH_TASK,
    GATE_TASK,
    PLAN_TASK,
    RECORD_TASK,
    VALIDATE_TASK,
    RestoreGateOperator,
    RestorePlanOperator,
    RestoreRecordOperator,
    RestoreTargetBranchOperator,
    restore_task_id,
)

DAG_ID = "tidb_restore"
MAX_LISTED = 8  # sources named in one label or rule; a 500-cluster fleet's form stays readable
DESCRIPTION = "On-demand restore from a form, behind guardrails; every request audited with who, why and outcome"


def possible_targets(fleet: Fleet) -> list[str]:
    """Every cluster some source of the fleet may be restored into, in fleet order."""
    wanted = {t for source in fleet.sources() for t in allowed_targets(source, fleet.clusters)}
    return [name for name in fleet.clusters if name in wanted]


def cluster_label(cluster: ClusterConfig) -> str:
    """``uat``, ``scratch1 (scratch)``, ``prod (PRODUCTION)``, ``eu1 (live, PRODUCTION)``: what sets the
    cluster apart, each word once (an env that repeats the name or a production env adds nothing)."""
    words: list[str] = []
    if cluster.env != cluster.name and not (cluster.is_production and cluster.env in PRODUCTION_ENVS):
        words.append(cluster.env)
    if cluster.scratch and "scratch" not in words:
        words.append("scratch")
    if cluster.is_production:
        words.append("PRODUCTION")
    return f"{cluster.name} ({', '.join(words)})" if words else cluster.name


def target_choices(fleet: Fleet) -> tuple[list[str], dict[str, str], str]:
    """The target list of the form: only clusters some source may be restored into, each labelled with the
    sources that may use it (the form cannot narrow one field by another: Params are checked one by one,
    so the label says it, and ``plan_restore`` refuses any other pair before anything runs); and a
    description of who may go where."""
    sources = fleet.sources()
    allowed = {s.name: allowed_targets(s, fleet.clusters) for s in sources}
    targets = possible_targets(fleet)
    labels: dict[str, str] = {}
    for name in targets:
        users = [s for s in allowed if name in allowed[s]]
        if len(users) == len(allowed) and len(users) > 1:
            who = "any source"
        elif users == [name]:
            who = "itself only (in place)"
        else:
            shown = ", ".join(users[:MAX_LISTED]) + (
                f" and {len(users) - MAX_LISTED} more" if len(users) > MAX_LISTED else ""
            )
            who = f"{shown} only"
        labels[name] = f"{cluster_label(fleet.clusters[name])} — for {who}"
    groups: dict[tuple[str, ...], list[str]] = {}
    for source, names in allowed.items():
        groups.setdefault(tuple(names), []).append(source)
    if len(groups) == 1:
        rule = f"Every source may be restored into {', '.join(next(iter(groups))) or 'nothing'}."
    else:
        parts = [
            f"{', '.join(srcs[:MAX_LISTED])}{' …' if len(srcs) > MAX_LISTED else ''} → {', '.join(names) or 'nothing'}"
            for names, srcs in list(groups.items())[:MAX_LISTED]
        ]
        rule = "Allowed: " + "; ".join(parts) + ("; …" if len(groups) > MAX_LISTED else "") + "."
    return targets, labels, rule


class _Shared:
    """A value ``copy.deepcopy`` shares instead of copying: Airflow deep-copies a DAG's params into every task
    it builds, and this DAG has a task per possible target, each copying the form's two fleet-sized choice
    lists and label maps (a 500-cluster fleet: 126 tasks × ~2,000 copied values; the DAG's build took 76 ms
    with the copies, 32 without). Nothing changes a Param's schema after it is built."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


class _SharedList(_Shared, list[str]):
    """The form's choices."""


class _SharedDict(_Shared, dict[str, str]):
    """The form's labels."""


def restore_params(fleet: Fleet) -> dict[str, Param]:
    """The trigger form: every field a request has (``tidbops.restore.RestoreRequest.from_conf``)."""
    sources = [c.name for c in fleet.sources()]
    targets, target_labels, rule = target_choices(fleet)
    scratch = [n for n in targets if fleet.clusters[n].scratch]
    return {
        "source_cluster": Param(
            sources[0] if sources else None,
            type="string",
            enum=_SharedList(sources),
            values_display=_SharedDict({n: cluster_label(fleet.clusters[n]) for n in sources}),
            title="Source cluster",
            description="The cluster whose backups are restored.",
        ),
        "restore_point": Param(
            "latest",
            type="string",
            minLength=1,
            title="Restore point",
            description=f"What to restore to. Accepted: {POINT_FORMATS}.",
        ),
        "target_cluster": Param(
            scratch[0] if scratch else (targets[0] if targets else None),
            type="string",
            enum=_SharedList(targets),
            values_display=_SharedDict(target_labels),
            title="Target cluster",
            description=f"Where the data lands; only clusters some source may be restored into are listed. {rule} "
            "(restore.allowed_targets; by default the scratch clusters.) A scratch target is wiped first; any "
            "other must be empty.",
        ),
        "tables": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Tables (optional)",
            description="BR table filters, one per line, e.g. shop.orders, crm.*, !crm.audit_*. Empty: the "
            "whole cluster.",
        ),
        "dry_run": Param(
            True,
            type="boolean",
            title="Dry run",
            description="Only check the request and print the plan; nothing is changed. Untick to restore.",
        ),
        "confirm": Param(
            "",
            type=["null", "string"],
            title="Confirm",
            description="Type the target cluster's name. Required when the target is a production cluster, "
            "and for a real restore into a cluster not marked scratch.",
        ),
        "validate_after": Param(
            False,
            type="boolean",
            title="Validate after",
            description="Compare the restored tables with the source as of the restore point (row counts and "
            "fingerprints per key chunk; needs the source's history: tidb_gc_life_time).",
        ),
        "reason": Param(
            type="string",
            minLength=3,
            title="Reason",
            description="Why this restore (kept in the restores audit with your user name).",
        ),
    }


def build_restore_dag(fleet: Fleet, *, doc_md: str | None) -> DAG:
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    default_args: dict[str, Any] = {"owner": "dba", "retries": 0}
    with DAG(
        dag_id=DAG_ID,
        description=DESCRIPTION,
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=4,
        doc_md=doc_md,
        tags=["tidbops", DAG_ID, "restore"],
        params=restore_params(fleet),
        default_args=default_args,
    ) as dag:
        alert = RequestRoutesNotifier(fleet)
        targets = possible_targets(fleet)
        restore_ids = [restore_task_id(t) for t in targets]
        plan = RestorePlanOperator(task_id=PLAN_TASK, **catalog)
        branch = RestoreTargetBranchOperator(task_id=BRANCH_TASK, restore_task_ids=restore_ids)
        restores = [
            BRRestoreOperator(
                task_id=restore_task_id(t),
                plan_task_id=PLAN_TASK,
                target=t,
                **br_slot(fleet, t),
                outlets=[restores_asset(t)],  # each restore BR finished is an event of x-tidb://<target>/restores
                execution_timeout=timedelta(hours=12),
                **catalog,
            )
            for t in targets
        ]
        validate = ValidateRestoreOperator(
            task_id=VALIDATE_TASK,
            plan_task_id=PLAN_TASK,
            restore_task_ids=restore_ids,
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
            **catalog,
        )
        record = RestoreRecordOperator(
            task_id=RECORD_TASK,
            restore_task_ids=restore_ids,
            trigger_rule=TriggerRule.ALL_DONE,
            retries=3,
            retry_delay=timedelta(seconds=30),
            on_failure_callback=alert,
            **catalog,
        )
        plan >> branch >> restores
        for task in restores:
            task >> validate
        gate = RestoreGateOperator(task_id=GATE_TASK, on_failure_callback=alert)
        validate >> record >> gate
        _kube_scratch(fleet, dict(zip(targets, restores, strict=True)), plan, validate, record)
    return dag


def _kube_scratch(fleet: Fleet, restores: dict[str, Any], plan: Any, validate: Any, record: Any) -> None:
    """For each target with ``scratch_kubernetes``: ``create_scratch__<t>`` (from the plan on, before
    ``restore__<t>``; skipped unless the plan restores into t) and ``delete_scratch__<t>`` (after validation,
    whatever happened, before the audit row). None for a fleet without one."""
    on_k8s = [t for t in restores if fleet.clusters[t].scratch_kubernetes is not None]
    if not on_k8s:
        return
    from tidbops_airflow.operators.kube_scratch import KubeScratchCreateOperator, KubeScratchDeleteOperator

    for t in on_k8s:
        make = KubeScratchCreateOperator(task_id=f"create_scratch__{t}", plan_task_id=PLAN_TASK, target=t)
        unmake = KubeScratchDeleteOperator(
            task_id=f"delete_scratch__{t}", plan_task_id=PLAN_TASK, target=t, trigger_rule=TriggerRule.ALL_DONE
        )
        plan >> make >> [restores[t], unmake]
        validate >> unmake >> record
