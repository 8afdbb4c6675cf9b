"""The wiring of ``dags/tidb_restore_drill.py``: one DAG per cluster with a drill target.

check_drill_due → choose_restore_point → [wait_for_log_checkpoint, PITR mode] → prepare_scratch
→ restore_to_scratch → validate_restored_data → drop_scratch (all_done) → record_drill (all_done)
→ assert_drill_passed

* **When a drill runs.** With ``schedules.drill`` set, the DAG runs hourly (``CHECK_SCHEDULE``) and
  ``check_drill_due`` decides (``tidbops.freshness.drill_due``): a tick of ``schedules.drill`` since the
  last drill, or the last passed drill gone stale (TiDB or BR version, encryption method or key, or
  storage changed) with no drill tried on the new basis yet, makes it due at once; otherwise every
  later task is skipped and the run is a green no-op. A manual run always drills. (Chosen over a
  trigger from ``tidb_cluster_check``: the decision and the drill live in one DAG, one run at a time,
  and the check reads BR and the key connection, which the health check has no business reading.) A
  drill cron finer than hourly runs at most hourly.

* ``restore_to_scratch`` and ``validate_restored_data`` are the operators the on-demand restore uses too
  (``tidbops_airflow.operators.recovery``); the drill's plan says what they restore and check.
* ``restore_to_scratch`` runs in the scratch cluster's pool ``br_<target>`` (one BR job at a time there);
  reading the source's backups needs none. Two sources drilling into one scratch cluster are kept apart
  by the ``drills`` catalog row that ``prepare_scratch`` takes (a later drill's try fails while another
  drill holds the scratch; its retries, every 5 minutes for an hour, wait for it).
* A scratch cluster with ``scratch_kubernetes`` is made for each drill (``operators.kube_scratch``):
  ``create_scratch_cluster`` (after ``choose_restore_point``, before ``prepare_scratch``: a TidbCluster named
  from the drill id, waited for until Ready in the triggerer; retried like ``prepare_scratch`` while another
  drill's cluster holds the scratch cluster) and ``delete_scratch_cluster`` (after ``drop_scratch``, whatever
  happened: ``all_done``). A fleet without one builds neither.
* ``drop_scratch`` and ``record_drill`` run whatever happened before them; ``assert_drill_passed`` (no
  retries, no alert: the failing step alerted) makes a failed drill a failed run.
* Every other task alerts through the cluster's routes when it fails for good.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, TriggerRule

from tidbops.config import ClusterConfig, Fleet
from tidbops_airflow.assets import drills_asset
from tidbops_airflow.brslot import br_slot
from tidbops_airflow.dagbuilder import dag_args, scratch_clusters
from tidbops_airflow.notifiers.alerts import failure_notifiers
from tidbops_airflow.operators.drill import (
    STEP_TASKS,
    DrillCheckDueOperator,
    DrillChooseRestorePointOperator,
    DrillDropScratchOperator,
    DrillGateOperator,
    DrillPrepareScratchOperator,
    DrillRecordOperator,
)
from tidbops_airflow.operators.recovery import BRRestoreOperator, ValidateRestoreOperator

RECORD_TASK = "record_drill"
GATE_TASK = "assert_drill_passed"
CHUNK_ROWS = 50_000
LOG_POLL_SECONDS = 15.0
SCRATCH_WAIT_RETRIES = 12
SCRATCH_WAIT_DELAY = timedelta(minutes=5)
LOG_WAIT_SECONDS = 3600.0
CREATE_SCRATCH_TASK = "create_scratch_cluster"  # scratch_kubernetes: a TidbCluster per drill
DELETE_SCRATCH_TASK = "delete_scratch_cluster"
CHECK_SCHEDULE = "@hourly"  # when schedules.drill is set: check_drill_due decides whether a drill runs


def wants_drill(cluster: ClusterConfig) -> bool:
    return not cluster.scratch and cluster.drill.target is not None


def build_restore_drill_dag(pipeline: str, cluster: ClusterConfig, fleet: Fleet, *, doc_md: str | None) -> DAG:
    mode = cluster.drill.mode
    target = cluster.drill.target
    assert target is not None  # wants_drill
    scratch = scratch_clusters(fleet)
    about = f"Restore drill into {target} ({mode}): restored data proved against the source, RTO recorded"
    args = dag_args(pipeline, cluster, doc_md=doc_md, tags=["drill", f"mode:{mode}"], description=about)
    # a manual run's conf may override: {"target": "<scratch>", "seed": <int>, "chunk_rows": <int>}. Not
    # DAG Params: each costs jsonschema work at every parse of every drill DAG (measured: the 500-cluster
    # parse benchmark went from 1.2x to 1.6x its peer with three of them).
    args["doc_md"] = (args.get("doc_md") or "") + (
        "\n\nRun options (trigger with conf): `target` (a scratch cluster; default "
        f"`{target}`; one of {', '.join(scratch) or 'none'}), `seed` (PITR point), `chunk_rows` "
        f"(default {CHUNK_ROWS})."
    )
    alerts = failure_notifiers(fleet, cluster)
    catalog = {"catalog_conn_id": fleet.catalog.conn_id, "catalog_sqlite_path": fleet.catalog.sqlite_path}
    run_target = "{{ dag_run.conf.get('target') or '" + target + "' }}"
    steps = ["choose", "prepare", "restore", "validate"]
    schedule = CHECK_SCHEDULE if cluster.schedules.drill else None
    args["doc_md"] += (
        f"\n\nSchedule: checked {CHECK_SCHEDULE} (`check_drill_due`); a drill runs on `schedules.drill` "
        f"(`{cluster.schedules.drill}`) or at once when the last passed drill is stale."
        if cluster.schedules.drill
        else "\n\nSchedule: `schedules.drill` is off: manual runs only."
    )
    with DAG(schedule=schedule, **args) as dag:
        check = DrillCheckDueOperator(
            task_id=STEP_TASKS["check"], cluster=cluster, on_failure_callback=alerts, **catalog
        )
        choose = DrillChooseRestorePointOperator(
            task_id=STEP_TASKS["choose"],
            cluster=cluster,
            target=run_target,
            seed="{{ dag_run.conf.get('seed', '') }}",
            on_failure_callback=alerts,
            **catalog,
        )
        prepare = DrillPrepareScratchOperator(
            task_id=STEP_TASKS["prepare"],
            cluster=cluster,
            target=run_target,
            # while another drill holds the scratch, a try fails: the retries wait for it (up to an hour)
            retries=SCRATCH_WAIT_RETRIES,
            retry_delay=SCRATCH_WAIT_DELAY,
            retry_exponential_backoff=False,
            on_failure_callback=alerts,
            **catalog,
        )
        restore = BRRestoreOperator(
            task_id=STEP_TASKS["restore"],
            plan_task_id=STEP_TASKS["choose"],
            target=run_target,
            **br_slot(fleet, target),
            on_failure_callback=alerts,
            **catalog,
        )
        validate = ValidateRestoreOperator(
            task_id=STEP_TASKS["validate"],
            plan_task_id=STEP_TASKS["choose"],
            restore_task_ids=[STEP_TASKS["restore"]],
            chunk_rows="{{ dag_run.conf.get('chunk_rows', '') }}",
            expectations=True,
            on_failure_callback=alerts,
            **catalog,
        )
        drop = DrillDropScratchOperator(
            task_id=STEP_TASKS["drop"],
            cluster=cluster,
            target=run_target,
            trigger_rule=TriggerRule.ALL_DONE,
            on_failure_callback=alerts,
        )
        record = DrillRecordOperator(
            task_id=RECORD_TASK,
            outlets=[drills_asset(cluster.name)],  # each finished drill is an event of x-tidb://<cluster>/drills
            cluster=cluster,
            target=run_target,
            steps=steps if mode == "snapshot" else ["choose", "wait", *steps[1:]],
            trigger_rule=TriggerRule.ALL_DONE,
            on_failure_callback=alerts,
            **catalog,
        )
        gate = DrillGateOperator(task_id=GATE_TASK, cluster=cluster, record_task_id=RECORD_TASK)
        if any(fleet.clusters[n].scratch_kubernetes is not None for n in scratch):
            from tidbops_airflow.operators.kube_scratch import KubeScratchCreateOperator, KubeScratchDeleteOperator

            make = KubeScratchCreateOperator(
                task_id=CREATE_SCRATCH_TASK,
                plan_task_id=STEP_TASKS["choose"],
                retries=SCRATCH_WAIT_RETRIES,  # while another drill's cluster holds the scratch cluster
                retry_delay=SCRATCH_WAIT_DELAY,
                retry_exponential_backoff=False,
                on_failure_callback=alerts,
            )
            unmake = KubeScratchDeleteOperator(
                task_id=DELETE_SCRATCH_TASK,
                plan_task_id=STEP_TASKS["choose"],
                trigger_rule=TriggerRule.ALL_DONE,
                on_failure_callback=alerts,
            )
            # from the plan on (PITR: while the log catches up, the cluster starts), done before prepare_scratch
            choose >> make >> [prepare, unmake]
            drop >> unmake >> record
        if mode == "pitr":
            from tidbops_airflow.sensors.logbackup import LogCheckpointSensor

            wait = LogCheckpointSensor(
                task_id=STEP_TASKS["wait"],
                cluster=cluster,
                target="{{ ti.xcom_pull(task_ids='" + STEP_TASKS["choose"] + "')['restore_ts'] }}",
                poll_interval=LOG_POLL_SECONDS,
                timeout=LOG_WAIT_SECONDS,
                on_failure_callback=alerts,
            )
            check >> choose >> wait >> prepare
        else:
            check >> choose >> prepare
        prepare >> restore >> validate >> drop >> record >> gate
    return dag
