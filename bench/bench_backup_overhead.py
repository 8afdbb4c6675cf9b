"""Backup platform overhead: everything a backup run costs besides BR's own run, through a real Airflow.

Brings up a private playground (free ports, a temp home) and ``airflow standalone``, then triggers
``tidb_backup_full__dev`` and ``tidb_backup_incremental__dev`` several times. For each run it reads, over
the REST API, every task's duration and the BR process time that ``run_br_backup`` reports, and prints:

- BR: the wall time of the ``br`` process itself;
- tasks: the sum of the five task durations (what the workers spent, BR included);
- overhead: tasks − BR (our code, catalog, manifest, verification, and Airflow's per-task start-up);
- run: the DAG run's wall time (adds the scheduler's gaps between tasks).

    .venv/bin/python bench/bench_backup_overhead.py [--rows 100000] [--runs 3]

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
from tidbops_playground.airflow import AirflowStandalone, fleet_without_schedules

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tidbops-bench-backup-") as tmp:
        home = Path(tmp) / "playground"
        manager.up(home, rows=args.rows, clusters=manager.default_clusters(sql_port_base=None), s3_port=None)
        fleet = fleet_without_schedules(REPO / "include/config/clusters.yaml", Path(tmp) / "clusters.yaml")
        standalone = AirflowStandalone(home=home, port=_free_port(), fleet_config=fleet)
        try:
            api = standalone.start()
            rows: list[tuple[str, float, float, float, float]] = []
            plan = ["tidb_backup_full__dev"] + ["tidb_backup_incremental__dev"] * (args.runs - 1)
            plan = plan + ["tidb_backup_full__dev"] * (args.runs - 1)
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
        finally:
            standalone.stop()
            manager.down(home)
    print(f"{'kind':12} {'BR s':>7} {'tasks s':>8} {'overhead s':>11} {'run s':>7}")
    for kind, br, tasks, overhead, wall in rows:
        print(f"{kind:12} {br:7.2f} {tasks:8.2f} {overhead:11.2f} {wall:7.2f}")
    med = statistics.median(r[3] for r in rows)
    print(f"median overhead per backup: {med:.2f}s over {len(rows)} runs ({args.rows} rows in dev); goal < 3 s")
    return 0 if med < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
