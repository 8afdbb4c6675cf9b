"""`make demo`: bring the playground up, then run the pipelines through a real Airflow and say what happened.

Each step prints what it does and what came back. The playground stays up afterwards (``make
playground-down`` stops it); Airflow is stopped at the end (``make up`` keeps one running).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tidbops_playground import manager
from tidbops_playground.airflow import AirflowAPI, AirflowStandalone, fleet_without_schedules
from tidbops_playground.registry import Registry, load_registry, playground_home

REPO = Path(__file__).resolve().parents[2]
BR = REPO / "include" / "tidbops_playground" / "bin" / "br"
TIDBOPS = Path(sys.executable).parent / "tidbops"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def shell(argv: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command the way a DBA would type it, echoing it first (secrets stay in the env)."""
    print("$ " + " ".join(shlex.quote(a) for a in argv), flush=True)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    for line in (proc.stdout + proc.stderr).splitlines():
        print("  " + line)
    if check and proc.returncode != 0:
        raise SystemExit(f"demo step failed (exit {proc.returncode}): {argv[0]}")
    return proc


def table_counts(home: Path, cluster: str, as_of_tso: int | None = None) -> dict[str, int]:
    """Rows per user table, now or as of a TSO (the system-versioned history)."""
    as_of = ""
    if as_of_tso is not None:
        from tidbops.tso import to_datetime

        as_of = f" FOR SYSTEM_TIME AS OF TIMESTAMP '{to_datetime(as_of_tso).strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    conn = manager.instance(home, cluster).connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                "WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND "
                "TABLE_SCHEMA NOT IN ('mysql','sys','information_schema','performance_schema') "
                "AND TABLE_SCHEMA NOT LIKE 'tidbops%' ORDER BY 1, 2"
            )
            names = [f"{db}.{t}" for db, t in cur.fetchall()]
            counts = {}
            for name in names:
                db, t = name.split(".")
                cur.execute("SET time_zone = '+00:00'")
                cur.execute(f"SELECT COUNT(*) FROM `{db}`.`{t}`{as_of}")
                counts[name] = int(cur.fetchone()[0])
            return counts
    finally:
        conn.close()


def drop_user_databases(home: Path, cluster: str) -> None:
    conn = manager.instance(home, cluster).connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET foreign_key_checks = 0")
            cur.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN "
                "('mysql','sys','information_schema','performance_schema') AND SCHEMA_NAME NOT LIKE 'tidbops%'"
            )
            for (db,) in cur.fetchall():
                cur.execute(f"DROP DATABASE `{db}`")
    finally:
        conn.close()


def step_playground(home: Path) -> Registry:
    say("1. Playground: emulated TiDB clusters (private MariaDB servers + br emulator) and an S3 server")
    started = time.monotonic()
    registry = manager.up(home)
    print(f"up in {time.monotonic() - started:.1f}s; home {home}")
    for name, entry in registry.clusters.items():
        print(f"  {name:9} {entry.kind:8} pd {entry.pd:16} sql 127.0.0.1:{entry.sql_port}  TiDB {entry.tidb_version}")
    if registry.s3:
        print(f"  S3 {registry.s3.endpoint} bucket {registry.s3.bucket}")
    return registry


def step_br_round_trip(home: Path, registry: Registry, env: dict[str, str]) -> None:
    say("2. A BR round trip from the shell, typed as against real BR: backup dev, restore into scratch2")
    assert registry.s3 is not None
    dev, scratch = registry.clusters["dev"], registry.clusters["scratch2"]
    storage = f"s3://{registry.s3.bucket}/demo/dev-{time.strftime('%Y%m%dT%H%M%S')}"
    drop_user_databases(home, "scratch2")  # scratch2 is marked scratch: it may be wiped
    # as a DBA would: export the S3 keys (BR reads them from the environment), never put them in argv
    env = {**env, "AWS_ACCESS_KEY_ID": registry.s3.access_key, "AWS_SECRET_ACCESS_KEY": registry.s3.secret_key}
    print("$ export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…")
    s3 = ["--s3.endpoint", registry.s3.endpoint]
    backup = shell(
        [
            str(BR),
            "backup",
            "full",
            "--pd",
            dev.pd,
            "-s",
            storage,
            *s3,
            "--log-file",
            str(home / "logs/demo-backup.log"),
        ],
        env,
    )
    shell(
        [
            str(BR),
            "restore",
            "full",
            "--pd",
            scratch.pd,
            "-s",
            storage,
            *s3,
            "--log-file",
            str(home / "logs/demo-restore.log"),
        ],
        env,
    )
    from tidbops.br.output import parse_br_output

    backup_ts = parse_br_output(backup.stdout).backup_ts
    restored = table_counts(home, "scratch2")
    source = table_counts(home, "dev", as_of_tso=backup_ts)
    verdict = "identical" if restored == source else f"DIFFERENT: {restored} vs {source}"
    print(
        f"restored into scratch2: {sum(restored.values())} rows in {len(restored)} tables; row counts vs dev as of "
        f"BackupTS {backup_ts}: {verdict}"
    )
    if restored != source:
        raise SystemExit("the restored cluster does not match the source as of the BackupTS")


def run_dag(api: AirflowAPI, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 300) -> tuple[str, str]:
    api.wait_for_dag(dag_id)
    api.unpause(dag_id)
    run_id = api.trigger(dag_id, conf=conf, note="make demo")
    state = api.wait_run(dag_id, run_id, timeout=timeout)
    tasks = ", ".join(f"{t['task_id']}={t['state']}" for t in api.task_instances(dag_id, run_id))
    print(f"  {dag_id}: {state}  ({tasks})")
    return run_id, state


def step_cluster_checks(api: AirflowAPI, registry: Registry) -> None:
    say("4. tidb_cluster_check__<cluster> for every cluster, triggered through the REST API")
    for name in registry.clusters:
        run_id, state = run_dag(api, f"tidb_cluster_check__{name}")
        if state == "success":
            facts = api.xcom(f"tidb_cluster_check__{name}", run_id, "check_cluster")
            gc = f"GC safepoint {facts['gc_safe_point']}, gc life {facts['gc_life_time_seconds']}s"
            print(f"    TiDB {facts['tidb_version']}, {gc}")


def step_backups(api: AirflowAPI, registry: Registry) -> None:
    say("5. Backups through Airflow: tidb_backup_full__dev, then tidb_backup_incremental__dev (x2), uat (encrypted)")
    for dag_id in ("tidb_backup_full__dev", "tidb_backup_incremental__dev", "tidb_backup_incremental__dev",
                   "tidb_backup_full__uat"):  # fmt: skip
        run_id, state = run_dag(api, dag_id)
        if state != "success":
            raise RuntimeError(f"{dag_id} {state}: {api.task_log(dag_id, run_id, 'run_br_backup')[-2000:]}")
        plan = api.xcom(dag_id, run_id, "plan_backup")
        print(f"    plan: {plan.get('kind')} ({plan.get('reason')})")
    home = playground_home()
    catalog_url = f"sqlite:///{home / 'airflow' / 'tidbops_catalog.db'}"
    say(f"6. tidbops info --catalog {catalog_url}")
    # a monitoring check: prod has no backup yet, so it answers CRITICAL (2); only UNKNOWN (3) is a demo failure
    info = shell([str(TIDBOPS), "info", "--catalog", catalog_url], dict(os.environ), check=False)
    print(f"  (exit {info.returncode}: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
    if info.returncode == 3:
        raise SystemExit("demo step failed: tidbops info could not read the catalog")


def step_slow_query_harvest(api: AirflowAPI, registry: Registry) -> None:
    say("7. tidb_slow_query_harvest__<cluster>: two nights of slow queries, a regression on the second")
    from datetime import UTC, datetime, time, timedelta

    from tidbops.catalog.store import Catalog
    from tidbops.slowlog.store import forget_cluster, load_report
    from tidbops_playground import slowlogs

    home = playground_home()
    catalog = Catalog.from_url(f"sqlite:///{home / 'airflow' / 'tidbops_catalog.db'}")
    catalog.migrate()
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, time.min, UTC)
    try:
        for name, source in (("dev", "CLUSTER_SLOW_QUERY stand-in, over SQL"), ("uat", "slow-log files in S3")):
            forget_cluster(catalog, name)  # a demo run starts over
            state = slowlogs.reset(home, registry, name, today=today)
            dag_id = f"tidb_slow_query_harvest__{name}"
            print(f"  {name} ({source}): night 1 = {state['days'][0]} .. {state['days'][-2]}")
            run_dag(api, dag_id, conf={"until": (midnight - timedelta(days=1)).isoformat()})
            slowlogs.load_night(home, registry, name, 2)
            print(f"  {name}: night 2 = {state['days'][-1]} (regression injected)")
            run_id, run_state = run_dag(api, dag_id, conf={"until": midnight.isoformat()})
            if run_state != "success":
                raise RuntimeError(f"{dag_id} {run_state}")
            harvest = api.xcom(dag_id, run_id, "harvest_slow_queries")
            print(f"    harvested {harvest['entries']} new entries ({harvest['start']} .. {harvest['end']})")
            report = load_report(catalog, name, state["days"][-1]) or {}
            print(f"    top offenders on {report.get('day')}:")
            for item in report.get("top", [])[:5]:
                print(f"      {item['digest'][:12]}  {item['count']:>4}x  total {item['total_query_time']:8.2f}s"
                      f"  p95 {item['p95_query_time']:.3f}s  {item['sample_sql'][:70]}")  # fmt: skip
            for r in report.get("regressions", []):
                print(f"    REGRESSION {r['digest'][:12]}: avg {r['baseline_avg']:.3f}s -> {r['avg']:.3f}s "
                      f"({r['ratio']:.1f}x)")  # fmt: skip
            guards = report.get("guardrails_run", {})
            print(f"    guardrails: {len(guards.get('statements', []))} suggested, {guards.get('mode')}")
    finally:
        catalog.close()


def step_log_backup(api: AirflowAPI, registry: Registry) -> None:
    say("8. tidb_log_backup_check__<cluster>: log backup (PITR) health, then each cluster's restorable window")
    from tidbops.config import load_fleet

    names = [c.name for c in load_fleet(REPO / "include/config/clusters.yaml").sources() if c.log_backup.enabled]

    def checks(why: str) -> None:
        print(f"  {why}")
        runs = []
        for name in names:
            dag_id = f"tidb_log_backup_check__{name}"
            api.wait_for_dag(dag_id)
            api.unpause(dag_id)
            runs.append((dag_id, api.trigger(dag_id, note="make demo")))
        for dag_id, run_id in runs:
            state = api.wait_run(dag_id, run_id, timeout=300)
            check = api.xcom(dag_id, run_id, "check_log_backup")
            sent = api.xcom(dag_id, run_id, "notify_log_backup")["sent"]
            actions = ", ".join(a["kind"] for a in check["actions"]) or "none"
            alerts = ", ".join(f"{s['kind']} {s['key']}" for s in sent) or "none"
            lag = "-" if check["lag_seconds"] is None else f"{check['lag_seconds']:.1f}s"
            print(f"    {dag_id}: {state}; task {check['status']}, checkpoint lag {lag}, actions: {actions}, "
                  f"alerts sent: {alerts}")  # fmt: skip

    checks("first check: a cluster without a log backup task gets one (br log start, in its BR pool)")
    print("  a full backup of dev after the log start begins its PITR window")
    run_dag(api, "tidb_backup_full__dev")
    time.sleep(4)  # the playground's log checkpoint moves every 3 s: let it pass the backup
    checks("second check: status, lag, window")
    url = f"sqlite:///{playground_home() / 'airflow' / 'tidbops_catalog.db'}"
    for name in names:
        shell([str(TIDBOPS), "window", "--cluster", name, "--checks", "3", "--catalog", url], dict(os.environ))


# --------------------------------------------------------------------------------- restore drill (#6)


def step_restore_drill(api: AirflowAPI, registry: Registry) -> None:
    say("9. tidb_restore_drill__dev: restore dev's newest backup chain into scratch1, prove it, measure the RTO")
    dag_id = "tidb_restore_drill__dev"
    run_id, state = run_dag(api, dag_id, conf={"chunk_rows": 10_000})
    record = api.xcom(dag_id, run_id, "record_drill")
    verdict = "PASSED" if record["passed"] else "FAILED"
    print(f"  verdict: {verdict}{'' if record['passed'] else ': ' + str(record['error'])}")
    print(f"  restore point: {record['restore_time']} (TSO {record['restore_ts']}), backups restored in order: "
          f"{', '.join(record['backups_used'])}")  # fmt: skip
    print(f"  RTO: {record['rto_seconds']}s = restore {record['restore_seconds']}s + validation "
          f"{record['validation_seconds']}s")  # fmt: skip
    ratio = record["gx_success_ratio"]
    print(f"  checked: {record['tables_checked']} tables, {record['rows_checked']} rows against dev as of the point; "
          f"{record['mismatches']} mismatches; expectations {ratio * 100 if ratio is not None else 0:.0f}% of "
          f"{record['gx_evaluated']} passed")  # fmt: skip
    print(f"  Data Docs: {record['data_docs_uri']}")
    if registry.s3 is not None and record.get("data_docs_uri"):
        bucket = manager.Bucket.of(registry.s3)
        prefix = bucket.key(record["data_docs_uri"]).rsplit("/", 1)[0] + "/"
        local = playground_home() / "drills" / record["drill_id"] / "data_docs"
        for key in bucket.objects(prefix):
            path = local / key[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bucket.get(key))
        print(f"  a local copy to open in a browser: file://{local / 'index.html'}")
    print(f"  drill report: {record['report_uri']}; catalog table drills, row {record['drill_id']}")
    if state != "success":
        raise RuntimeError(f"{dag_id} {state}")


STEPS_WITH_AIRFLOW: list[Callable[[AirflowAPI, Registry], None]] = [
    step_cluster_checks,
    step_backups,
    step_slow_query_harvest,
    step_log_backup,
    step_restore_drill,  # issue #6
]


def main() -> int:
    home = playground_home()
    os.environ["TIDBOPS_PLAYGROUND_HOME"] = str(home)
    registry = step_playground(home)
    env = {**os.environ, **manager.playground_env(home)}
    env["PATH"] = os.pathsep.join([str(BR.parent), str(Path(sys.executable).parent), env.get("PATH", "")])
    step_br_round_trip(home, registry, env)

    say("3. A real Airflow (standalone, LocalExecutor, metadata on the playground's PostgreSQL) with our DAGs")
    fleet = fleet_without_schedules(REPO / "include/config/clusters.yaml", home / "demo-fleet.yaml")
    standalone = AirflowStandalone(
        home=home, port=int(os.environ.get("TIDBOPS_AIRFLOW_PORT", "28080")), fleet_config=fleet
    )
    api = standalone.start()
    print(f"Airflow up at {standalone.url} (log {standalone.log_file})")
    failed = False
    try:
        registry = load_registry(home)
        for step in STEPS_WITH_AIRFLOW:
            step(api, registry)
    except Exception as exc:  # the demo reports and exits non-zero; nothing is hidden
        failed = True
        print(f"demo failed: {exc}", file=sys.stderr)
    finally:
        standalone.stop()
    say("Done" if not failed else "Done, with failures")
    print(json.dumps({"playground": str(home), "stop it with": "make playground-down"}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
