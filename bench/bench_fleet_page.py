"""The data protection view at fleet scale, through Airflow's own API app: pages, JSON API and /metrics.

``bench_fleetview.py`` times the catalog queries; this times what a user or Prometheus waits for: the
request through Airflow's ``create_app`` (the app ``airflow api-server`` serves) with our plugin mounted,
its simple auth manager checking a real JWT (and the per-cluster DAG permissions of 500 clusters), the
fleet config read as the DAGs read it, the catalog, and the HTML or JSON written. The catalog is the
same million rows over 500 clusters (built by ``bench_fleetview.build``), on SQLite (the default) or on a
private MariaDB (``--backend mariadb``).

    .venv/bin/python bench/bench_fleet_page.py [--backend sqlite|mariadb] [--rounds 30] [--keep]

Goals (issue #13): the fleet page and the audit API p95 < 100 ms, a /metrics scrape < 500 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fleetview as fv

REPO = Path(__file__).resolve().parents[1]
GOALS = {"fleet page": 100.0, "audit API": 100.0, "/metrics": 500.0}
TOKEN = "bench-metrics-token-0123456789"


def fleet_yaml(names: list[str], catalog: dict[str, Any]) -> dict[str, Any]:
    clusters: list[dict[str, Any]] = [
        {
            "name": name,
            "env": name.rstrip("0123456789").rstrip("-_") or "dev",
            "pd": [f"pd-{name}:2379"],
            "tidb_conn_id": f"tidb_{name}",
            "log_backup": {"enabled": True, "task_name": f"pitr-{name}"},
            "drill": {"target": "scratch1"},
        }
        for name in names
    ]
    clusters.append({"name": "scratch1", "env": "scratch", "scratch": True, "pd": ["pd-scratch1:2379"],
                     "tidb_conn_id": "tidb_scratch1"})  # fmt: skip
    return {
        "version": 1,
        "defaults": {"storage": {"uri": "s3://tidbops-backups", "conn_id": "s3"}},
        "catalog": catalog,
        "clusters": clusters,
    }


@contextmanager
def catalog_config(backend: str, keep: bool, names: list[str]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """The fleet config's ``catalog`` section and the environment it needs, with the catalog built."""
    from tidbops.catalog.store import Catalog

    opener = fv.sqlite_url if backend == "sqlite" else fv.mariadb_url
    with opener(keep) as (url, existing):
        catalog = Catalog.from_url(url)
        catalog.migrate()
        if not existing:
            t0 = time.perf_counter()
            fv.build(catalog, names, 1_000_000)
            print(f"{backend}: catalog built in {time.perf_counter() - t0:.0f} s", flush=True)
        catalog.close()
        if backend == "sqlite":
            yield {"sqlite_path": url.removeprefix("sqlite:///")}, {}
        else:
            from sqlalchemy.engine import make_url

            u = make_url(url)
            conn = {"conn_type": "mysql", "host": u.host, "port": u.port, "login": u.username,
                    "password": u.password, "schema": u.database}  # fmt: skip
            yield {"conn_id": "tidbops_catalog"}, {"AIRFLOW_CONN_TIDBOPS_CATALOG": json.dumps(conn)}


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, float, float]:
    fn()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))], samples[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "mariadb"), default="sqlite")
    parser.add_argument("--clusters", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="reuse bench/out/fleetview/catalog.db (SQLite)")
    parser.add_argument("--profile", metavar="PATH", help="profile 5 requests of PATH (e.g. /tidbops/) instead")
    args = parser.parse_args(argv)
    names = fv.cluster_names(args.clusters)
    home = Path(tempfile.mkdtemp(prefix="bench-fleet-page-"))
    with catalog_config(args.backend, args.keep, names) as (catalog, catalog_env):
        fleet = home / "fleet.yaml"
        fleet.write_text(yaml.safe_dump(fleet_yaml(names, catalog), sort_keys=False))
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({"admin": "bench-admin-pw-123"}))
        os.environ.update(
            {
                **catalog_env,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": "bench-secret-that-is-long-enough-for-hs512-" * 2,
                "TIDBOPS_FLEET_CONFIG": str(fleet),
                "AIRFLOW_CONN_TIDBOPS_METRICS": json.dumps({"conn_type": "http", "password": TOKEN}),
            }
        )
        sys.path[:0] = [str(REPO / "plugins"), str(REPO / "dags")]
        from airflow.api_fastapi import app as airflow_api
        from airflow.utils.db import initdb
        from fastapi.testclient import TestClient

        initdb()
        import logging

        logging.getLogger("http.access").setLevel(logging.WARNING)  # one line per request otherwise
        logging.getLogger().setLevel(logging.WARNING)
        client = TestClient(airflow_api.create_app("core"))
        token = client.post("/auth/token", json={"username": "admin", "password": "bench-admin-pw-123"}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}

        def get(path: str, headers: dict[str, str] = auth) -> Callable[[], Any]:
            def call() -> Any:
                response = client.get(path, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: HTTP {response.status_code}: {response.text[:300]}")
                return response

            return call

        page = get("/tidbops/")()
        print(f"fleet page: {len(page.content):,} bytes, {page.text.count('data-cluster=')} clusters", flush=True)
        cases = [
            ("fleet page", "fleet page (HTML)", get("/tidbops/")),
            ("fleet API", "fleet (JSON API)", get("/tidbops/api/fleet")),
            ("audit API", "audit (JSON API), newest 100", get("/tidbops/api/audit")),
            ("audit API", "audit (JSON API), actor dba", get("/tidbops/api/audit?actor=dba")),
            ("audit API", f"audit (JSON API), cluster {names[7]}", get(f"/tidbops/api/audit?cluster={names[7]}")),
            ("audit page", "audit page (HTML)", get("/tidbops/audit")),
            ("cluster page", f"cluster page {names[7]} (HTML)", get(f"/tidbops/clusters/{names[7]}")),
            ("/metrics", "/metrics (Prometheus scrape)", get("/tidbops/metrics", {"Authorization": f"Bearer {TOKEN}"})),
        ]
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(lambda: [get(args.profile)() for _ in range(5)])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            return 0
        ok = True
        print(f"\n{'backend':<8} {'request':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  goal")
        for group, label, fn in cases:
            p50, p95, worst = timed(fn, args.rounds)
            goal = GOALS.get(group)
            met = goal is None or p95 < goal
            ok &= met
            verdict = "-" if goal is None else f"p95 < {goal:.0f} ms: {'yes' if met else 'NO'}"
            print(f"{args.backend:<8} {label:<44} {p50:8.1f} {p95:8.1f} {worst:8.1f}  {verdict}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
