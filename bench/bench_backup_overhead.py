"""Backup platform overhead: everything a backup run costs besides BR's own run, through a real Airflow.

Brings up a private playground (free ports, a temp home) and ``airflow standalone``, then triggers
``tidb_backup_full__dev`` and ``tidb_backup_incremental__dev`` several times. For each run it reads, over
the REST API, every task's duration and the BR process time that ``run_br_backup`` reports, and prints:

- BR: the wall time of the ``br`` process itself;
- tasks: the sum of the five task durations (what the workers spent, BR included);
- overhead: tasks − BR (our code, catalog, manifest, verification, and Airflow's per-task start-up);
- run: the DAG run's wall time (adds the scheduler's gaps between tasks).

    .venv/bin/python bench/bench_backup_overhead.py [--rows 100000] [--runs 3] [--modes warm,lazy]

Both modes run in one invocation on the same playground, one Airflow after the other: ``warm`` (the
playground's setting, ``lazy_load_plugins = False``: the workers are forked with our modules already
imported, see ``plugins/tidbops_plugin.py``) and ``lazy`` (Airflow's default), the peer.

Goal (issue #4): overhead under 3 s per backup.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from tidbops_playground import manager
from tidbops_playground.airflow import AirflowAPI, AirflowStandalone, fleet_without_schedules

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _measure(api: AirflowAPI, runs: int) -> list[tuple[str, float, float, float, float]]:
    rows: list[tuple[str, float, float, float, float]] = []
    plan = ["tidb_backup_full__dev"] + ["tidb_backup_incremental__dev"] * (runs - 1)
    plan = plan + ["tidb_backup_full__dev"] * (runs - 1)
    for dag_id in plan:
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
        run_id = api.trigger(dag_id, note="bench")
        state = api.wait_run(dag_id, run_id, timeout=600)
        if state != "success":
            raise SystemExit(f"{dag_id} run {run_id}: {state}")
        tis = api.task_instances(dag_id, run_id)
        tasks = sum(_seconds(t.get("start_date"), t.get("end_date")) for t in tis)
        br = float(api.xcom(dag_id, run_id, "run_br_backup").get("br_seconds") or 0.0)
        run = api.run(dag_id, run_id)
        wall = _seconds(run.get("start_date"), run.get("end_date"))
        rows.append((dag_id.split("__")[0].removeprefix("tidb_backup_"), br, tasks, tasks - br, wall))
    return rows


MODES = {
    # the playground's setting: plugins load with `airflow`, ours preloads what tasks use before the fork
    "warm": {"AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"},
    # Airflow's default, the peer: every task process imports our core, SQLAlchemy and boto3 itself
    "lazy": {"AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True"},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="warm,lazy", help="comma-separated: warm (preloaded workers), lazy")
    args = ap.parse_args()
    results: dict[str, list[tuple[str, float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tidbops-bench-backup-") as tmp:
        home = Path(tmp) / "playground"
        manager.up(home, rows=args.rows, clusters=manager.default_clusters(sql_port_base=None), s3_port=None)
        fleet = fleet_without_schedules(REPO / "include/config/clusters.yaml", Path(tmp) / "clusters.yaml")
        try:
            for mode in args.modes.split(","):
                standalone = AirflowStandalone(home=home, port=_free_port(), fleet_config=fleet, extra_env=MODES[mode])
                try:
                    results[mode] = _measure(standalone.start(), args.runs)
                finally:
                    standalone.stop()
        finally:
            manager.down(home)
    medians: dict[str, float] = {}
    for mode, rows in results.items():
        print(f"\n[{mode}] {MODES[mode]}")
        print(f"{'kind':12} {'BR s':>7} {'tasks s':>8} {'overhead s':>11} {'run s':>7}")
        for kind, br, tasks, overhead, wall in rows:
            print(f"{kind:12} {br:7.2f} {tasks:8.2f} {overhead:11.2f} {wall:7.2f}")
        medians[mode] = statistics.median(r[3] for r in rows)
        print(f"median overhead per backup: {medians[mode]:.2f}s over {len(rows)} runs ({args.rows} rows in dev)")
    if {"warm", "lazy"} <= medians.keys():
        print(f"\nwarm / lazy overhead: {medians['warm'] / medians['lazy']:.2f}")
    goal = medians.get("warm", min(medians.values()))
    print(f"goal: overhead < 3 s per backup -> {'met' if goal < 3 else 'NOT met'} ({goal:.2f}s)")
    return 0 if goal < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
