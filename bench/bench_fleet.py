"""Fleet load: one nightly round of an N-cluster fleet through a real Airflow scheduler, then DAG parsing of a
bigger fleet.

Round (``--clusters``, default 50): a private playground (temp home, free ports) with N emulated source clusters
(``c000``…, ``--rows`` rows each, one MariaDB server per cluster: the emulator backs up a whole server, so
clusters cannot share one) and ``--drills`` scratch clusters; a generated fleet config (every schedule off:
the round is triggered over the REST API all at once, as nightly crons firing together would); ``airflow
standalone`` (LocalExecutor, metadata on the playground's PostgreSQL). For every cluster: a full backup, a
log-backup check and a slow-query harvest; and ``--drills`` restore drills (snapshot mode, each into its
own scratch cluster, started once its source's backup is verified). BR is capped fleet-wide by
``fleet.br_concurrency`` (``--br-concurrency``, default 4): every BR task runs in the pool ``br_fleet`` and
takes its cluster's lease in the catalog (never two BR jobs on one cluster); ``--br-concurrency 0`` runs
the per-cluster pools ``br_<cluster>`` instead, bounded fleet-wide only by the executor's parallelism.

Reported: the round's wall time; the scheduler delay (task instances' queued → running: ``start_date -
queued_when``), p50/p95; the most BR jobs running at once, fleet-wide and on one cluster (from the
emulator's journal: each ``br backup``/``br restore`` from its start line to its exit line); the peak RSS
of Airflow's processes (every process of the Airflow, task processes and BR included, sampled each
second, summed); and proof that every cluster ends with a verified full backup (its run succeeded and the
catalog holds a verified full backup).

Parse (``--parse-clusters``, default 200): Airflow's DAG processor (``airflow dag-processor --num-runs 2``) over
our DAG files with a fleet of that many clusters: its own per-file stats (Last Duration, DAGs, errors).

    .venv/bin/python bench/bench_fleet.py [--clusters 50] [--rows 20000] [--drills 5] [--parse-clusters 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from bench_backup_overhead import _free_port, _seconds  # this folder's: a free port, an API time span

from tidbops_playground import airflow as af
from tidbops_playground import manager
from tidbops_playground.airflow import AirflowError, AirflowStandalone, fleet_without_schedules

REPO = Path(__file__).resolve().parents[1]
BR_JOBS = {"backup", "restore"}


def fleet_doc(n: int, drills: int, br_concurrency: int | None = None) -> dict[str, Any]:
    """The shipped config's defaults and routes, with N source clusters and ``drills`` scratch ones."""
    doc = yaml.safe_load((REPO / "include/config/clusters.yaml").read_text())
    if br_concurrency is not None:
        doc["fleet"] = {"br_concurrency": br_concurrency}
    clusters: list[dict[str, Any]] = []
    for i in range(n):
        name = f"c{i:03d}"
        c: dict[str, Any] = {
            "name": name,
            "env": "dev",
            "pd": [f"127.0.0.1:{30000 + i}"],
            "tidb_conn_id": f"tidb_{name}",
            "slow_query": {"source": "sql", "table": "tidbops_slowlog.cluster_slow_query"},
            "log_backup": {"enabled": True, "task_name": f"pitr-{name}", "max_checkpoint_lag": "10m"},
        }
        if i < drills:
            c["drill"] = {"target": f"s{i:03d}", "mode": "snapshot"}
            c["restore"] = {"allowed_targets": [f"s{i:03d}"]}
        clusters.append(c)
    for i in range(drills):
        clusters.append(
            {"name": f"s{i:03d}", "env": "scratch", "scratch": True, "pd": [f"127.0.0.1:{31000 + i}"],
             "tidb_conn_id": f"tidb_s{i:03d}"}
        )  # fmt: skip
    doc["clusters"] = clusters
    return doc


def _specs(n: int, drills: int) -> list[manager.ClusterSpec]:
    specs = [manager.ClusterSpec(name=f"c{i:03d}", kind="source", pd=f"127.0.0.1:{30000 + i}") for i in range(n)]
    specs += [manager.ClusterSpec(name=f"s{i:03d}", kind="scratch", pd=f"127.0.0.1:{31000 + i}") for i in range(drills)]
    return specs


class RssSampler(threading.Thread):
    """Sums VmRSS of every Airflow process of the home (and their children) once a second; keeps the peak."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home = home
        self.peak_kib = 0
        self.peak_procs = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            roots = af.airflow_processes(self.home)
            pids = set(roots)
            for p in roots:
                pids.update(af._descendants(p))
            total = 0
            for p in pids:
                try:
                    for line in Path(f"/proc/{p}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    continue
            if total > self.peak_kib:
                self.peak_kib, self.peak_procs = total, len(pids)
            self.stop.wait(1.0)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def br_concurrency(home: Path, pd_to_cluster: dict[str, str]) -> tuple[int, int, int]:
    """(most BR jobs at once fleet-wide, most on one cluster, jobs seen) from the journal's start/exit lines."""
    starts: dict[int, tuple[datetime, str]] = {}
    for line in (home / "br-invocations.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if (entry.get("command") or [""])[0] in BR_JOBS:
            cluster = next((pd_to_cluster[p] for p in entry.get("pd", []) if p in pd_to_cluster), "?")
            starts[entry["pid"]] = (datetime.fromisoformat(entry["at"]), cluster)
    ends: dict[int, datetime] = {}
    exits = home / "br-exits.jsonl"
    if exits.exists():
        for line in exits.read_text().splitlines():
            entry = json.loads(line)
            ends[entry["pid"]] = datetime.fromisoformat(entry["at"])
    events: list[tuple[datetime, int, str]] = []
    for pid, (at, cluster) in starts.items():
        events.append((at, 1, cluster))
        events.append((ends.get(pid, datetime.max.replace(tzinfo=at.tzinfo)), -1, cluster))
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    running = 0
    per: dict[str, int] = {}
    most = most_one = 0
    for _, delta, cluster in events:
        running += delta
        per[cluster] = per.get(cluster, 0) + delta
        most = max(most, running)
        most_one = max(most_one, per[cluster])
    return most, most_one, len(starts)


def _retry(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A REST call, asked again (up to 10 times) when the API server is too busy to answer in time."""
    for attempt in range(10):
        try:
            return fn(*args, **kwargs)
        except (AirflowError, OSError) as exc:
            if attempt == 9 or ("HTTP 4" in str(exc) and "HTTP 409" not in str(exc)):
                raise
            time.sleep(3)
    return None


def _br(home: Path, *args: str) -> None:
    """``br`` as a DBA types it (the S3 keys in the environment)."""
    s3 = manager.load_registry(home).s3
    assert s3 is not None
    env = {**os.environ, **manager.playground_env(home)}
    env |= {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    proc = subprocess.run([str(manager.BR_PATH), *args], env=env, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"br {' '.join(args[:2])}: exit {proc.returncode}: {proc.stderr[-1500:]}")


def round_(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    home = tmp / "playground"
    n, drills = args.clusters, args.drills
    t0 = time.monotonic()
    os.environ["TIDBOPS_PLAYGROUND_WRITER_TPS"] = str(args.writer_tps)  # the daemon inherits it
    try:
        manager.up(home, rows=args.rows, clusters=_specs(n, drills), s3_port=None)
        return _round_on(args, home, tmp, time.monotonic() - t0)
    finally:
        manager.down(home)  # Airflow of this home included


def _round_on(args: argparse.Namespace, home: Path, tmp: Path, setup_up: float) -> dict[str, Any]:
    n, drills = args.clusters, args.drills
    config = tmp / "clusters.full.yaml"
    config.write_text(yaml.safe_dump(fleet_doc(n, drills, args.br_concurrency or None), sort_keys=False))
    fleet = fleet_without_schedules(config, tmp / "clusters.yaml")
    reg = manager.load_registry(home)
    assert reg.s3 is not None
    pd_to_cluster = {e.pd: name for name, e in reg.clusters.items()}
    for i in range(n):  # log backup running, as in a fleet that has it on
        name = f"c{i:03d}"
        _br(home, "log", "start", "--task-name", f"pitr-{name}", "--pd", reg.clusters[name].pd,
            "--storage", f"s3://tidbops-backups/{name}/log", "--s3.endpoint", reg.s3.endpoint)  # fmt: skip
    if (
        args.slow_br
    ):  # every BR backup takes that long: a cluster's full and incremental overlap (its lease is contended)
        from tidbops_playground import faults

        for i in range(n):
            faults.set_fault(home, f"c{i:03d}", "backup_slow", seconds=args.slow_br)
    env = {"AIRFLOW__CORE__PARALLELISM": str(args.parallelism)}
    standalone = AirflowStandalone(home=home, port=_free_port(), fleet_config=fleet, extra_env=env)
    sampler = RssSampler(home)
    try:
        t1 = time.monotonic()
        api = standalone.start(timeout=900)
        sampler.start()
        names = [f"c{i:03d}" for i in range(n)]
        pipelines = ["tidb_backup_full", "tidb_log_backup_check", "tidb_slow_query_harvest"]
        if args.incrementals:  # a second BR job per cluster at the same moment: the clusters' leases are contended
            pipelines.append("tidb_backup_incremental")
        dag_ids = [f"{p}__{c}" for c in names for p in pipelines]
        drill_ids = [f"tidb_restore_drill__c{i:03d}" for i in range(drills)]
        for d in [*dag_ids, *drill_ids]:
            _retry(api.wait_for_dag, d, timeout=900)
        startup = time.monotonic() - t1
        for d in dag_ids:
            _retry(api.unpause, d)
        started = time.monotonic()
        started_at = datetime.now(UTC)
        runs = {d: _retry(api.trigger, d, note="bench-fleet") for d in dag_ids}
        states: dict[str, str] = {}
        drill_runs: dict[str, str] = {}
        deadline = started + args.timeout
        while time.monotonic() < deadline and (len(states) < len(runs) + drills):
            for d, r in list(runs.items()) + list(drill_runs.items()):
                if d in states:
                    continue
                try:
                    st = str(api.run(d, r)["state"])
                except (AirflowError, OSError):  # a busy API server: ask again next round
                    continue
                if st in ("success", "failed"):
                    states[d] = st
            for i in range(drills):  # a drill starts once its source's backup is in (it restores that backup)
                src, d = f"c{i:03d}", f"tidb_restore_drill__c{i:03d}"
                if d not in drill_runs and states.get(f"tidb_backup_full__{src}") == "success":
                    _retry(api.unpause, d)
                    drill_runs[d] = _retry(api.trigger, d, note="bench-fleet")
                elif d not in drill_runs and states.get(f"tidb_backup_full__{src}") == "failed":
                    states[d] = "skipped (backup failed)"
            time.sleep(2)
        polled = time.monotonic() - started
    finally:
        sampler.stop.set()
    try:
        delays: list[float] = []
        all_runs = {**runs, **drill_runs}
        ends = [_retry(api.run, d, r).get("end_date") for d, r in all_runs.items()]
        last = max((datetime.fromisoformat(e) for e in ends if e), default=None)
        wall = (last - started_at).total_seconds() if last else polled
        for d, r in all_runs.items():
            for ti in _retry(api.task_instances, d, r):
                if ti.get("queued_when") and ti.get("start_date"):
                    delays.append(_seconds(ti["queued_when"], ti["start_date"]))
        most, most_one, jobs = br_concurrency(home, pd_to_cluster)
        from tidbops.catalog.store import Catalog

        catalog = Catalog.from_url(f"sqlite:///{standalone.af_home / 'tidbops_catalog.db'}")
        verified = [c for c in names if catalog.latest_verified_full(c) is not None]
        catalog.close()
        failed = sorted(d for d, s in states.items() if s != "success")
        logs = {d: _retry(api.run_logs, d, all_runs[d])[-1500:] for d in failed[:3] if d in all_runs}
    finally:
        standalone.stop()
    return {
        "clusters": n, "drills": drills, "rows": args.rows, "parallelism": args.parallelism,
        "br_concurrency": args.br_concurrency or None,
        "playground_up_s": round(setup_up, 1), "airflow_start_s": round(startup, 1), "wall_s": round(wall, 1),
        "runs": len(all_runs), "finished": len(states), "failed": failed, "failed_logs": logs,
        "delay_p50_s": round(_pct(delays, 0.5), 2), "delay_p95_s": round(_pct(delays, 0.95), 2),
        "task_instances": len(delays), "br_jobs": jobs, "br_max_concurrent": most, "br_max_on_one_cluster": most_one,
        "airflow_peak_rss_mib": round(sampler.peak_kib / 1024), "airflow_peak_procs": sampler.peak_procs,
        "verified_clusters": len(verified), "unverified": sorted(set(names) - set(verified)),
        "lease_waits": _lease_waits(standalone.af_home), "incrementals": args.incrementals,
    }  # fmt: skip


def _lease_waits(af_home: Path) -> int:
    """Tries of BR tasks that found their cluster's lease held and gave their fleet slot back (task logs)."""
    waits = 0
    for log in (af_home / "logs").glob("dag_id=*/run_id=*/task_id=*/attempt=*.log"):
        waits += log.read_text(errors="replace").count("holds its BR lease")
    return waits


STATS_HEADER = "DAG File Processing Stats"


def _stats_tables(text: str) -> list[dict[str, dict[str, Any]]]:
    """Every "DAG File Processing Stats" table the DAG processor logged: file -> its row."""
    tables: list[dict[str, dict[str, Any]]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if STATS_HEADER not in line:
            continue
        rows: dict[str, dict[str, Any]] = {}
        for row in lines[i + 1 :]:
            if row.startswith("====="):
                break
            cells = row.split()
            if len(cells) < 6 or not cells[1].endswith(".py"):
                continue
            # Bundle, File Path, [PID], [Current Duration], # DAGs, # Errors, Last Duration, [Last Run At]
            last = next((c for c in cells[2:] if c.endswith("s") and c[:-1].replace(".", "", 1).isdigit()), None)
            numbers = [c for c in cells[2:] if c.isdigit()]
            rows[cells[1]] = {
                "seconds": float(last[:-1]) if last else None,
                "dags": int(numbers[-2]) if len(numbers) >= 2 else None,
                "errors": int(numbers[-1]) if numbers else None,
            }
        tables.append(rows)
    return tables


def parse(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Our DAG files for a fleet of ``--parse-clusters`` parsed by Airflow's own DAG processor.

    ``airflow dag-processor --num-runs 2`` (a fresh SQLite metadata DB, stats printed every loop): each file
    is parsed in the processor's child process, as in production, and the processor's "DAG File
    Processing Stats" give its Last Duration (parse + serialisation in the child), DAGs and errors per file.
    The second run's figures are reported (the first one's include the import of our packages, cold).
    """
    config = tmp / "parse.yaml"
    config.write_text(yaml.safe_dump(fleet_doc(args.parse_clusters, 5), sort_keys=False))
    af_home = tmp / "parse-airflow"
    af_home.mkdir(parents=True, exist_ok=True)
    env = {
        **af.airflow_env(tmp, airflow_home=af_home),
        "TIDBOPS_FLEET_CONFIG": str(config),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{af_home / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "1",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
    }
    airflow = str(af.VENV_BIN / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=True)
    started = time.monotonic()
    proc = subprocess.run(
        [airflow, "dag-processor", "--num-runs", "2"], env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    output = proc.stdout + proc.stderr
    tables = [t for t in _stats_tables(output) if t and all(r["seconds"] is not None for r in t.values())]
    if proc.returncode != 0 or not tables:
        raise SystemExit(f"dag-processor: exit {proc.returncode}, no complete stats table: {output[-3000:]}")
    files = {Path(name).name: row for name, row in sorted(tables[-1].items())}
    total = round(sum(f["seconds"] for f in files.values()), 2)
    return {
        "clusters": args.parse_clusters,
        "how": "airflow dag-processor --num-runs 2: its DAG File Processing Stats (Last Duration), second run",
        "files": files,
        "total_s": total,
        "dags": sum(f["dags"] or 0 for f in files.values()),
        "errors": sum(f["errors"] or 0 for f in files.values()),
        "processor_wall_s": round(wall, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--drills", type=int, default=5)
    ap.add_argument("--parallelism", type=int, default=8, help="AIRFLOW__CORE__PARALLELISM (LocalExecutor workers)")
    ap.add_argument("--br-concurrency", type=int, default=4, help="fleet.br_concurrency (0: no fleet cap)")
    ap.add_argument(
        "--incrementals", action="store_true", help="also trigger every cluster's incremental backup with its full"
    )
    ap.add_argument("--slow-br", type=float, default=0, help="the emulator's backup_slow fault (s) on every cluster")
    ap.add_argument("--writer-tps", type=float, default=1.0, help="each cluster's writer (20 in the playground)")
    ap.add_argument("--timeout", type=float, default=5400)
    ap.add_argument("--parse-clusters", type=int, default=200)
    ap.add_argument("--skip-round", action="store_true")
    args = ap.parse_args()
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tidbops-bench-fleet-") as tmp:
        if not args.skip_round:
            result["round"] = round_(args, Path(tmp))
            print(json.dumps(result["round"], indent=2), flush=True)
        if args.parse_clusters:
            result["parse"] = parse(args, Path(tmp))
            print(json.dumps(result["parse"], indent=2), flush=True)
    r = result.get("round")
    ok = r is None or (not r["failed"] and r["verified_clusters"] == r["clusters"] and r["br_max_on_one_cluster"] <= 1)
    if r is not None and r["br_concurrency"]:
        ok = ok and r["br_max_concurrent"] <= r["br_concurrency"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
