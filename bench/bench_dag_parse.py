"""DAG-parse benchmark: our DAG files for an N-cluster fleet against a peer built from EmptyOperators.

The peer is the same number of DAGs with the same task counts and dependencies, defined as plainly as
Airflow allows (one loop of ``DAG`` + ``EmptyOperator`` per file). Both are parsed by a ``DagBag`` in a
fresh process each round, after ``import airflow``; the figure is the DagBag fill time, median of rounds
(the CPU time of the fills is shown too: on a shared machine it is what others' load inflates least).

Our packages (``include/``, ``plugins/``) are byte-compiled first, as installing them does (``pip install
.``, which the Dockerfile runs, compiles what it installs, as it compiled Airflow for both sides). In an editable
checkout under ``PYTHONDONTWRITEBYTECODE=1`` (this machine's environment) nothing writes their bytecode, so
every parse would compile them from source: about 40 ms that an installed package does not pay. The DAG files
themselves, ours and the peer's, are compiled at every parse alike.

    .venv/bin/python bench/bench_dag_parse.py --clusters 500 [--rounds 5]

Goal: ours ≤ 1.2× the peer, with no network and no GX/pandas import at parse time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

PARSE = """
import json, sys, time
import airflow.sdk  # warm: both sides pay the same imports before the clock starts
from airflow.dag_processing.dagbag import DagBag
t0, c0 = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=sys.argv[1])
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
shape = {d: [len(dag.tasks), sorted((t.task_id, sorted(t.downstream_task_ids)) for t in dag.tasks)] for d, dag in bag.dags.items()}
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'great_expectations', 'pandas', 'boto3', 'kubernetes'})
print(json.dumps({"seconds": elapsed, "cpu": cpu, "dags": len(bag.dags), "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                  "errors": {k: v[:300] for k, v in bag.import_errors.items()}, "heavy": heavy, "shape": shape}))
"""


def byte_compile_ours() -> None:
    """Byte-compile ``include/`` (tidbops, the playground) and ``plugins/`` as installing them would (see the
    module's docstring); a file edited later is compiled from source again, never served stale."""
    for package in (REPO / "include", REPO / "plugins"):
        if not compileall.compile_dir(package, quiet=1):
            raise SystemExit(f"cannot byte-compile {package}")


def fleet_config(clusters: int, dest: Path) -> Path:
    """An N-cluster fleet: the shipped clusters as templates, renamed and renumbered; two scratch targets."""
    shipped = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    sources = [c for c in shipped["clusters"] if not c.get("scratch")]
    scratch = [c for c in shipped["clusters"] if c.get("scratch")]
    out = []
    for i in range(clusters - len(scratch)):
        c = json.loads(json.dumps(sources[i % len(sources)]))
        own = c["name"]
        c["name"] = f"c{i:04d}"
        restore = c.get("restore") or {}
        if own in (restore.get("allowed_targets") or []):  # an in-place restore names the cluster itself
            restore["allowed_targets"] = [c["name"] if t == own else t for t in restore["allowed_targets"]]
        c["pd"] = [f"pd-{i:04d}:2379"]
        c["tidb_conn_id"] = f"tidb_c{i:04d}"
        if c.get("log_backup", {}).get("task_name"):
            c["log_backup"]["task_name"] = f"pitr-c{i:04d}"
        out.append(c)
    for j, s in enumerate(scratch):
        s = dict(s)
        s["pd"] = [f"scratch-{j}:2379"]
        out.append(s)
    shipped["clusters"] = out
    dest.write_text(yaml.safe_dump(shipped, sort_keys=False))
    return dest


def parse(folder: Path, env: dict[str, str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PARSE, str(folder)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"parse of {folder} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def peer_files(shape: dict[str, list[object]], dest: Path) -> None:
    """One peer file per pipeline, with the same DAGs (count, task ids, edges) from EmptyOperators."""
    by_pipeline: dict[str, dict[str, object]] = {}
    for dag_id, s in shape.items():
        by_pipeline.setdefault(dag_id.split("__")[0], {})[dag_id] = s[1]
    for pipeline, dags in by_pipeline.items():
        (dest / f"{pipeline}_peer.py").write_text(
            "import json\n"
            "from datetime import datetime, timezone\n"
            "from airflow.sdk import DAG\n"
            "from airflow.providers.standard.operators.empty import EmptyOperator\n"
            f"SHAPE = json.loads({json.dumps(json.dumps(dags))})\n"
            "for dag_id, tasks in SHAPE.items():\n"
            "    with DAG(dag_id, schedule='@daily', start_date=datetime(2026, 1, 1, tzinfo=timezone.utc), catchup=False):\n"
            "        ops = {t: EmptyOperator(task_id=t) for t, _ in tasks}\n"
            "        for t, down in tasks:\n"
            "            for d in down:\n"
            "                ops[t] >> ops[d]\n"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tidbops-bench-parse-") as tmp:
        work = Path(tmp)
        cfg = fleet_config(args.clusters, work / "clusters.yaml")
        env = {
            **os.environ,
            "TIDBOPS_FLEET_CONFIG": str(cfg),
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        }
        byte_compile_ours()
        first = parse(DAGS, env)
        if first["errors"]:
            raise SystemExit(f"our DAG files have import errors: {first['errors']}")
        shape = first["shape"]
        assert isinstance(shape, dict)
        peer = work / "peer"
        peer.mkdir()
        peer_files(shape, peer)
        ours_s, peer_s, ours_cpu, peer_cpu = [], [], [], []
        for _ in range(args.rounds):  # interleaved, so drift on the machine hits both sides alike
            ours_result = parse(DAGS, env)
            ours_s.append(float(ours_result["seconds"]))  # type: ignore[arg-type]
            ours_cpu.append(float(ours_result["cpu"]))  # type: ignore[arg-type]
            peer_result = parse(peer, env)
            peer_s.append(float(peer_result["seconds"]))  # type: ignore[arg-type]
            peer_cpu.append(float(peer_result["cpu"]))  # type: ignore[arg-type]
        if peer_result["dags"] != first["dags"] or peer_result["tasks"] != first["tasks"]:
            raise SystemExit(
                f"peer shape differs: {peer_result['dags']}/{peer_result['tasks']} vs {first['dags']}/{first['tasks']}"
            )
        shutil.rmtree(work / "airflow" / ".tidbops-cache", ignore_errors=True)
        cold = float(parse(DAGS, env)["seconds"])  # type: ignore[arg-type]
        ours, base = statistics.median(ours_s), statistics.median(peer_s)
        print(f"fleet: {args.clusters} clusters -> {first['dags']} DAGs, {first['tasks']} tasks; rounds: {args.rounds}")
        print(f"ours (dags/):            median {ours:.3f}s  (all: {', '.join(f'{s:.2f}' for s in ours_s)})")
        print(f"peer (EmptyOperator):    median {base:.3f}s  (all: {', '.join(f'{s:.2f}' for s in peer_s)})")
        print(f"ratio ours/peer: {ours / base:.2f}x  (goal <= 1.20x)")
        cpu_ratio = statistics.median(ours_cpu) / statistics.median(peer_cpu)
        print(f"CPU time of the parses (what preemption by other processes does not inflate): {cpu_ratio:.2f}x")
        print(f"cold (fleet-config cache empty, i.e. first parse after an edit): {cold:.3f}s = {cold / base:.2f}x peer")
        print(f"heavy modules imported while parsing ours: {first['heavy'] or 'none'}")
        return 0 if ours / base <= 1.2 and not first["heavy"] else 1


if __name__ == "__main__":
    sys.exit(main())
