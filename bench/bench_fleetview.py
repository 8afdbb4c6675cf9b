"""Fleet-view benchmark: the fleet page, the audit and the cluster page over a million catalog rows.

Builds a catalog of 500 clusters (``--clusters``) with about a million backup and event rows
(``--rows``): a full backup a week and incrementals every few hours per cluster, each with its
events (started, succeeded, manifest, verified), older backups expired and deleted by retention with
their events, some failures and failed verifications; weekly drills (some failed), on-demand restores
by a few users (some refused, some dry runs), hourly log-backup checks for the last week, alert
episodes. Rows go in through bulk inserts (``executemany``), on SQLite (a file, the default catalog)
and on a private MariaDB server (Debian's ``mariadbd``, started here on a free port), both migrated by
``tidbops catalog migrate``'s code first, so the indexes are the real ones.

Then, ``--rounds`` times each (after one warm-up), wall time of:

- ``fleet_rows`` for all clusters;
- ``audit_page``: unfiltered; by cluster; by actor; by category and a 7-day time range; a deep page
  (the 50th, reached through the cursor); each with every cluster visible (``clusters`` = all 500
  names, as the UI passes for a user who sees them all) and the unfiltered one with a user who sees 10;
- ``cluster_view`` of one cluster;
- ``tidbops.metrics.render_metrics`` when that module exists (the Prometheus scrape).

    .venv/bin/python bench/bench_fleetview.py [--backends sqlite,mariadb] [--clusters 500] [--rows 1000000]
                                              [--rounds 30] [--keep]

Goals (issue #13): fleet page and audit p95 < 100 ms, the metrics scrape < 500 ms. The exit status says
whether they are met. ``--keep`` reuses the SQLite file in ``bench/out/fleetview/`` when it is there.
"""

from __future__ import annotations

import argparse
import importlib
import random
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from tidbops import tso
from tidbops.catalog.records import LogBackupCheck, actor_from_trigger, event_category, event_status
from tidbops.catalog.schema import (
    backups,
    drills,
    events,
    fleet_summary,
    log_backup_alerts,
    log_backup_checks,
    restores,
)
from tidbops.catalog.store import Catalog
from tidbops.fleetview.models import AuditQuery, ClusterPolicy
from tidbops.fleetview.queries import audit_page, cluster_view, fleet_rows

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out" / "fleetview"


GOAL_FLEET_MS = 100.0
GOAL_AUDIT_MS = 100.0
GOAL_METRICS_MS = 500.0
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
USERS = ("dba", "alice", "bob", "carol")
CHUNK = 20_000


# ----------------------------------------------------------------------------------------- the data


class Builder:
    """Bulk rows in the catalog's own column formats, written with the driver's executemany."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.sqlite = catalog.engine.dialect.name == "sqlite"
        self.pending: dict[str, list[tuple[Any, ...]]] = {}
        self.columns: dict[str, tuple[str, ...]] = {}
        self.counts: dict[str, int] = {}

    def t(self, dt: datetime | None) -> Any:
        if dt is None:
            return None
        naive = dt.astimezone(UTC).replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else naive

    def add(self, table: str, row: dict[str, Any]) -> None:
        cols = self.columns.setdefault(table, tuple(row))
        self.pending.setdefault(table, []).append(tuple(row[c] for c in cols))
        if len(self.pending[table]) >= CHUNK:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.pending):
            rows = self.pending.get(name) or []
            if not rows:
                continue
            cols = self.columns[name]
            mark = "?" if self.sqlite else "%s"
            quoted = ", ".join(f"`{c}`" if not self.sqlite else f'"{c}"' for c in cols)
            sql = f"INSERT INTO {name} ({quoted}) VALUES ({', '.join(mark for _ in cols)})"
            raw = self.catalog.engine.raw_connection()
            try:
                cur = raw.cursor()
                if self.sqlite:
                    cur.execute("BEGIN")
                cur.executemany(sql, rows)
                raw.commit()
            finally:
                raw.close()
            self.counts[name] = self.counts.get(name, 0) + len(rows)
            self.pending[name] = []


def cluster_names(n: int) -> list[str]:
    envs = ("dev", "test", "uat", "prod")
    return [f"{envs[i % 4]}{i:03d}" for i in range(n)]


def build(catalog: Catalog, names: Sequence[str], rows: int, seed: int = 13) -> dict[str, int]:
    """About ``rows`` backup + event rows over ``names`` (plus drills, restores, checks, alerts)."""
    rnd = random.Random(seed)
    b = Builder(catalog)
    per_backup_rows = 6.5  # the backup row and its events (started, succeeded, manifest, verified, expired, …)
    backups_per_cluster = max(8, int(rows / per_backup_rows / len(names)))
    step = timedelta(hours=4)
    start = NOW - step * backups_per_cluster
    event_seq = 0
    events_buffer: list[tuple[datetime, dict[str, Any]]] = []

    def event(when: datetime, cluster: str, kind: str, message: str, actor: str, backup_id: str | None = None) -> None:
        nonlocal event_seq
        event_seq += 1
        events_buffer.append(
            (
                when,
                {
                    "time": b.t(when),
                    "cluster": cluster,
                    "kind": kind,
                    "backup_id": backup_id,
                    "message": message,
                    "details": None,
                    "actor": actor,
                    "status": event_status(kind),
                    "category": event_category(kind),
                },
            )
        )

    def flush_events(upto: datetime | None) -> None:
        events_buffer.sort(key=lambda e: e[0])
        keep = []
        for when, row in events_buffer:
            if upto is None or when < upto:
                b.add("events", row)
            else:
                keep.append((when, row))
        events_buffer[:] = keep

    last_full: dict[str, tuple[str, int]] = {}
    troubled = set(rnd.sample(list(names), max(1, len(names) // 20)))
    for i in range(backups_per_cluster):
        slot = start + step * i
        for c in names:
            when = slot + timedelta(seconds=rnd.randint(0, 600))
            kind = "full" if i % 42 == 0 or c not in last_full else "incremental"
            short = "full" if kind == "full" else "incr"
            bid = f"{c}-{short}-{when.strftime('%Y%m%dt%H%M%Sz')}-{rnd.getrandbits(32):08x}"
            manual = rnd.random() < 0.02
            trigger = f"manual:{rnd.choice(USERS)}" if manual else "scheduled"
            actor = actor_from_trigger(trigger)
            failed = rnd.random() < (0.2 if c in troubled else 0.01)
            age = NOW - when
            finished = when + timedelta(seconds=rnd.randint(30, 900))
            ts = tso.from_datetime(when + timedelta(seconds=5))
            status = "failed" if failed else "succeeded"
            if not failed and age > timedelta(days=21):
                status = "deleted"
            elif not failed and age > timedelta(days=14):
                status = "expired"
            verify_failed = not failed and rnd.random() < 0.005
            verified = not failed and not verify_failed and not (c in troubled and i > backups_per_cluster - 8)
            base = last_full.get(c) if kind == "incremental" else None
            b.add(
                "backups",
                {
                    "id": bid,
                    "cluster": c,
                    "kind": kind,
                    "status": status,
                    "verified": 1 if verified else 0,
                    "verified_at": b.t(finished + timedelta(seconds=30)) if verified or verify_failed else None,
                    "verify_detail": "1234 files, 5.6 GB match the manifest" if verified else None,
                    "backup_ts": None if failed else ts,
                    "backup_time": None if failed else b.t(tso.to_datetime(ts)),
                    "base_backup_id": base[0] if base else None,
                    "last_backup_ts": base[1] if base else None,
                    "storage_uri": f"s3://backups/{c}/{short}/{bid}",
                    "size_bytes": None if failed else rnd.randint(1 << 28, 1 << 34),
                    "total_kv": None if failed else rnd.randint(10**6, 10**9),
                    "br_duration_s": rnd.uniform(20, 900),
                    "br_version": "v8.5.1",
                    "encryption_method": None,
                    "dag_id": f"tidb_backup_{kind}__{c}",
                    "run_id": f"{'manual' if manual else 'scheduled'}__{slot.isoformat()}",
                    "try_number": 1,
                    "triggered_by": trigger,
                    "started_at": b.t(when),
                    "finished_at": b.t(finished),
                    "error": "BR exited 1: [BR:KV:ErrKVStorage] tikv down" if failed else None,
                    "manifest_uri": None if failed else f"s3://backups/{c}/{short}/{bid}/tidbops-manifest.json",
                    "updated_at": b.t(finished),
                    "verified_tier": (2 if rnd.random() < 0.5 else 1) if verified else None,
                    "scheduled_for": None if manual else b.t(slot),
                },
            )
            if kind == "full" and not failed:
                last_full[c] = (bid, ts)
            event(when, c, "backup.started", f"{kind} backup {bid} started", actor, bid)
            if failed:
                event(finished, c, "backup.failed", f"{kind} backup {bid} failed (try 1): tikv down", actor, bid)
                continue
            event(finished, c, "backup.succeeded", f"{kind} backup {bid} succeeded at ts {ts}", actor, bid)
            event(finished, c, "backup.manifest", f"manifest of {bid} written", actor, bid)
            if verified or verify_failed:
                ok = "passed" if verified else "FAILED"
                kind_v = "backup.verified" if verified else "backup.verify_failed"
                event(finished + timedelta(seconds=30), c, kind_v, f"backup {bid} {ok} tier-1 verification", actor, bid)
            if status in ("expired", "deleted"):
                gone = when + timedelta(days=14, hours=2)
                event(gone, c, "backup.expired", f"backup {bid} expired: retention", "airflow", bid)
                if status == "deleted":
                    event(gone + timedelta(days=7), c, "backup.deleted", f"backup {bid} deleted", "airflow", bid)
        if i % 6 == 5:
            flush_events(slot - timedelta(days=22))
    flush_events(None)
    b.flush()
    _extras(b, rnd, names, troubled)
    b.flush()
    return b.counts


def _event_row(b: Builder, when: datetime, cluster: str, kind: str, message: str, actor: str) -> dict[str, Any]:
    return {
        "time": b.t(when),
        "cluster": cluster,
        "kind": kind,
        "backup_id": None,
        "message": message,
        "details": None,
        "actor": actor,
        "status": event_status(kind),
        "category": event_category(kind),
    }


def _extras(b: Builder, rnd: random.Random, names: Sequence[str], troubled: set[str]) -> None:
    """Drills (weekly, 8 weeks), restores, hourly log checks for a week, alert episodes; their events."""
    for c in names:
        for w in range(8):
            started = NOW - timedelta(days=7 * w + 1, minutes=rnd.randint(0, 600))
            failed = (c in troubled and w == 0) or rnd.random() < 0.03
            did = f"{c}-drill-{started.strftime('%Y%m%dt%H%M%Sz')}-{rnd.getrandbits(32):08x}"
            b.add(
                "drills",
                {
                    "id": did,
                    "cluster": c,
                    "target": "scratch1",
                    "mode": "snapshot",
                    "status": "failed" if failed else "passed",
                    "started_at": b.t(started),
                    "restore_ts": tso.from_datetime(started - timedelta(hours=3)),
                    "restore_time": b.t(started - timedelta(hours=3)),
                    "backups_used": "[]",
                    "restore_seconds": rnd.uniform(60, 1800),
                    "validation_seconds": rnd.uniform(10, 300),
                    "tables_checked": 12,
                    "rows_checked": 1_000_000,
                    "mismatches": 1 if failed else 0,
                    "gx_evaluated": 30,
                    "gx_success_ratio": 1.0,
                    "dag_id": f"tidb_restore_drill__{c}",
                    "run_id": f"scheduled__{started.isoformat()}",
                    "try_number": 1,
                    "finished_at": b.t(started + timedelta(minutes=40)),
                    "updated_at": b.t(started + timedelta(minutes=40)),
                },
            )
            b.add("events", _event_row(b, started, c, "drill.started", f"snapshot drill {did} started", "schedule"))
            verdict = "failed" if failed else "passed"
            done = started + timedelta(minutes=40)
            b.add("events", _event_row(b, done, c, f"drill.{verdict}", f"drill {did} {verdict}", "schedule"))
        for r in range(2):
            at = NOW - timedelta(days=rnd.randint(1, 60), minutes=rnd.randint(0, 999))
            status = rnd.choice(("succeeded", "dry_run", "refused", "failed"))
            who = rnd.choice(USERS)
            rid = f"{c}-restore-{at.strftime('%Y%m%dt%H%M%Sz')}-{r:08x}"
            b.add("events", _event_row(b, at, c, "restore.requested", f"{who} requested restore {rid}", who))
            b.add("events", _event_row(b, at, c, f"restore.{status}", f"restore {rid} {status}", who))
            b.add(
                "restores",
                {
                    "id": rid,
                    "source": c,
                    "target": "scratch1",
                    "status": status,
                    "requested_by": who,
                    "reason": f"INC-{rnd.randint(100, 999)}: check yesterday's rows",
                    "requested_at": b.t(at),
                    "restore_point": "latest",
                    "dry_run": 1 if status == "dry_run" else 0,
                    "validate_after": 1,
                    "validation_ok": None if status != "succeeded" else 1,
                    "updated_at": b.t(at),
                },
            )
        for h in range(7 * 24):
            at = NOW - timedelta(hours=h, seconds=rnd.randint(0, 300))
            lag = rnd.uniform(5, 60) if c not in troubled else rnd.uniform(300, 2000)
            cp = tso.from_datetime(at - timedelta(seconds=lag))
            b.add(
                "log_backup_checks",
                {
                    "cluster": c,
                    "checked_at": b.t(at),
                    "task_name": f"pitr-{c}",
                    "status": "NORMAL",
                    "checkpoint_ts": cp,
                    "checkpoint_time": b.t(tso.to_datetime(cp)),
                    "lag_seconds": lag,
                    "window_start_ts": tso.from_datetime(NOW - timedelta(days=7)),
                    "window_start_time": b.t(NOW - timedelta(days=7)),
                    "window_end_ts": cp,
                    "window_end_time": b.t(tso.to_datetime(cp)),
                    "healthy": 1 if c not in troubled else 0,
                    "findings": "[]",
                },
            )
        if c in troubled:
            b.add(
                "log_backup_alerts",
                {
                    "cluster": c,
                    "alert_key": "checkpoint_lag",
                    "severity": "critical",
                    "message": "checkpoint lag over the limit",
                    "first_seen": b.t(NOW - timedelta(hours=5)),
                    "last_seen": b.t(NOW),
                    "occurrences": 5,
                    "episodes": 1,
                    "notify_count": 1,
                    "updated_at": b.t(NOW),
                },
            )


# ------------------------------------------------------------------------------------------ measuring


def policies(names: Sequence[str]) -> list[ClusterPolicy]:
    return [
        ClusterPolicy(
            cluster=c,
            env=c[:-3],
            production=c.startswith("prod"),
            log_backup=True,
            max_checkpoint_lag_s=600.0,
            window_promise_s=7 * 86400.0,
        )
        for c in names
    ]


def timed(
    fn: Callable[[], object], rounds: int, before: Callable[[], None] | None = None
) -> tuple[float, float, float]:
    """p50, p95 and max of ``fn``'s wall time in ms, after one warm-up; ``before`` runs untimed each round."""
    fn()  # warm-up
    samples = []
    for _ in range(rounds):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95, samples[-1]


def deep_cursor(catalog: Catalog, query: AuditQuery, pages: int) -> int | None:
    cursor = None
    for _ in range(pages):
        page = audit_page(catalog, query.model_copy(update={"before_id": cursor}))
        cursor = page.next_cursor
        if cursor is None:
            break
    return cursor


def measure(catalog: Catalog, names: Sequence[str], rounds: int) -> list[tuple[str, str, float, float, float]]:
    pols = policies(names)
    every = tuple(names)
    results: list[tuple[str, str, float, float, float]] = []

    def add(group: str, label: str, fn: Callable[[], object], before: Callable[[], None] | None = None) -> None:
        p50, p95, worst = timed(fn, rounds, before)
        results.append((group, label, p50, p95, worst))
        print(f"  {label:<52} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms", flush=True)

    with catalog.engine.begin() as conn:  # as right after a bulk load: no cluster's summary is kept yet
        conn.execute(delete(fleet_summary))
    t0 = time.perf_counter()
    fleet_rows(catalog, pols, NOW)
    cold = (time.perf_counter() - t0) * 1000
    results.append(("-", "fleet_rows, first read (every summary computed)", cold, cold, cold))
    print(f"  {'fleet_rows, first read (every summary computed)':<52} once {cold:7.1f} ms", flush=True)
    add("fleet", f"fleet_rows ({len(pols)} clusters)", lambda: fleet_rows(catalog, pols, NOW))
    rnd = random.Random(7)

    def five_written() -> None:  # real writes through the catalog: five clusters' summaries go stale
        for name in rnd.sample(list(names), 5):
            catalog.add_log_backup_check(
                LogBackupCheck(cluster=name, checked_at=NOW, status="NORMAL", healthy=True, lag_seconds=12.0)
            )

    add(
        "fleet",
        f"fleet_rows ({len(pols)} clusters), 5 written since the last read",
        lambda: fleet_rows(catalog, pols, NOW),
        before=five_written,
    )
    q = AuditQuery(clusters=every)
    add("audit", "audit_page: unfiltered", lambda: audit_page(catalog, q))
    add(
        "audit",
        "audit_page: unfiltered, a user who sees 10 clusters",
        lambda: audit_page(catalog, AuditQuery(clusters=every[::50])),
    )
    add("audit", "audit_page: cluster", lambda: audit_page(catalog, AuditQuery(clusters=every, cluster=names[7])))
    add("audit", "audit_page: actor dba", lambda: audit_page(catalog, AuditQuery(clusters=every, actor="dba")))
    add(
        "audit",
        "audit_page: actor dba, all visible (clusters=None)",
        lambda: audit_page(catalog, AuditQuery(actor="dba")),
    )
    week = AuditQuery(
        clusters=every, category="restore", since=NOW - timedelta(days=30), until=NOW - timedelta(days=23)
    )
    add("audit", "audit_page: category restore + 7-day range", lambda: audit_page(catalog, week))
    old = AuditQuery(clusters=every, category="backup", status="failed", since=NOW - timedelta(days=40),
                     until=NOW - timedelta(days=33))  # fmt: skip
    add("audit", "audit_page: backup failures in a 7-day range", lambda: audit_page(catalog, old))
    cursor = deep_cursor(catalog, q, 49)
    add(
        "audit",
        "audit_page: page 50 through the cursor",
        lambda: audit_page(catalog, q.model_copy(update={"before_id": cursor})),
    )
    add("cluster", "cluster_view (200 backups)", lambda: cluster_view(catalog, pols[7], NOW))
    try:
        metrics = importlib.import_module("tidbops.metrics")
    except ImportError:
        print("  (tidbops.metrics is not there yet: no scrape measured)")
    else:
        render = metrics.render_metrics
        add("metrics", "render_metrics (the /metrics scrape)", lambda: render(catalog, pols, NOW))
    return results


# ------------------------------------------------------------------------------------------- backends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sqlite_url(keep: bool) -> Iterator[tuple[str, bool]]:
    if keep:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "catalog.db"
        yield f"sqlite:///{path}", path.exists()
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleetview-"))
    try:
        yield f"sqlite:///{tmp}/catalog.db", False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def mariadb_url(keep: bool) -> Iterator[tuple[str, bool]]:
    from tidbops_playground.mariadb import MariaDBInstance

    tmp = Path(tempfile.mkdtemp(prefix="bench-fleetview-mariadb-"))
    server = MariaDBInstance(tmp, free_port(), secrets.token_hex(12), buffer_pool="1G")
    server.start()
    try:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE tidbops_catalog")
        yield f"mysql+pymysql://{server.user}:{server.password}@127.0.0.1:{server.port}/tidbops_catalog", False
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_backend(name: str, args: argparse.Namespace) -> list[tuple[str, str, float, float, float]]:
    names = cluster_names(args.clusters)
    opener = sqlite_url if name == "sqlite" else mariadb_url
    with opener(args.keep) as (url, existing):
        catalog = Catalog.from_url(url)
        try:
            catalog.migrate()
            if not existing:
                t0 = time.perf_counter()
                counts = build(catalog, names, args.rows)
                print(f"{name}: built in {time.perf_counter() - t0:.0f} s: {counts}", flush=True)
            with catalog.reading() as conn:
                n_backups = conn.execute(select(func.count()).select_from(backups)).scalar_one()
                n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
                n_other = sum(
                    conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (drills, restores, log_backup_checks, log_backup_alerts)
                )
            print(
                f"{name}: {n_backups:,} backups + {n_events:,} events = {n_backups + n_events:,} rows "
                f"({n_other:,} drills, restores, log checks, alerts) over {len(names)} clusters",
                flush=True,
            )
            return measure(catalog, names, args.rounds)
        finally:
            catalog.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,mariadb")
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse bench/out/fleetview/catalog.db (SQLite)")
    args = parser.parse_args(argv)
    table: list[tuple[str, str, str, float, float, float]] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        for group, label, p50, p95, worst in run_backend(backend, args):
            table.append((backend, group, label, p50, p95, worst))
    goals = {"fleet": GOAL_FLEET_MS, "audit": GOAL_AUDIT_MS, "metrics": GOAL_METRICS_MS}
    print()
    print(f"{'backend':<8} {'what':<54} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  goal")
    ok = True
    for backend, group, label, p50, p95, worst in table:
        goal = goals.get(group)
        met = goal is None or p95 < goal
        ok &= met
        verdict = "-" if goal is None else f"p95 < {goal:.0f} ms: {'yes' if met else 'NO'}"
        print(f"{backend:<8} {label:<54} {p50:8.1f} {p95:8.1f} {worst:8.1f}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
