"""The fault matrix's test bed: one playground and one real Airflow shared by every row.

What differs from the e2e tier's bed (tests/e2e/conftest.py, whose fleet tweaks are reused):

* a MariaDB server of its own, ``catdb``, holds the backup catalog (``catalog.conn_id: faults_catalog``), so the
  "catalog database down" row stops a real catalog server, not a SQLite file;
* every S3 request of Airflow and BR goes through an ``S3Proxy`` (the playground's S3 connection points at
  it), which a row switches to refuse (a stopped server), hang (blackhole) or slow;
* every cluster alerts through a ``webhook`` route too, POSTing to a sink in this process: alerts are
  counted per DAG run, exactly as a pager would receive them;
* an ``airflow_local_settings.py`` task policy shortens retries (2 tries, 4 s apart instead of 3 tries
  with a 1-minute exponential backoff) so a row that exhausts its retries takes seconds, not minutes;
* ``LANES``: more emulated source clusters, unencrypted copies of dev with their own PD, SQL server, log
  task and S3 connection (``s3_<lane>``, through an ``S3Proxy`` of its own), so that rows whose fault
  stays inside one cluster run at the same time, each lane's rows one after the other on its cluster
  (test_fault_matrix.py). dev keeps the shared proxy and the rows whose fault reaches every cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml

from tests.e2e.conftest import E2E_RESTORE, E2E_RETENTION, REPO
from tests.helpers.servers import free_port
from tidbops.catalog.store import Catalog
from tidbops_playground import manager
from tidbops_playground.airflow import AirflowAPI, AirflowError, AirflowStandalone, fleet_without_schedules
from tidbops_playground.registry import Registry, load_registry
from tidbops_playground.s3server import S3Proxy

CATALOG_CLUSTER = "catdb"
CATALOG_SCHEMA = "tidbops_catalog"
WEBHOOK_ROUTE = "faults-pager"
BR_TIMEOUT = "30s"  # every cluster's: a hanging BR (S3 blackholed) is killed within the row's budget
RETRY_DELAY_S = 4
LANES = ("lane1", "lane2", "lane3", "lane4", "lane5")

LOCAL_SETTINGS = f'''"""The fault matrix's cluster policy: 2 tries, {RETRY_DELAY_S} s apart (production: 3 tries, 1 min backoff)."""
from datetime import timedelta


def task_policy(task):
    if task.retries == 2:
        task.retries = 1
        task.retry_delay = timedelta(seconds={RETRY_DELAY_S})
        task.retry_exponential_backoff = 0
'''


class WebhookSink:
    """A pager on loopback: every alert POSTed to it is kept, with its arrival time."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparsed": body.decode(errors="replace")}
                with lock:
                    received.append(payload)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def mark(self) -> int:
        return len(self.received)

    def since(self, mark: int) -> list[dict[str, Any]]:
        return list(self.received[mark:])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PatientAPI(AirflowAPI):
    """The REST client with a 120 s timeout (not 30 s) and reads retried: with 2 CPUs shared by several Airflows
    and CI, the API server sometimes takes longer than 30 s to answer."""

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(3):
            headers = {"Content-Type": "application/json", "Accept": "application/json"}
            if auth:
                headers["Authorization"] = f"Bearer {self.token()}"
            req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    raw = resp.read()
                break
            except urllib.error.HTTPError as exc:
                raise AirflowError(
                    f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}"
                ) from exc
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                if method != "GET" or attempt == 2:
                    raise
                time.sleep(2)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")


@dataclass
class Bed:
    home: Path
    registry: Registry
    api: AirflowAPI
    standalone: AirflowStandalone
    catalog: Catalog
    catalog_url: str
    bucket: manager.Bucket
    proxy: S3Proxy
    sink: WebhookSink
    lane_proxies: dict[str, S3Proxy] = field(default_factory=dict)  # each lane's own S3 endpoint
    own_processes: list[int] = field(default_factory=list)  # Airflow components a row started itself

    def proxy_of(self, cluster: str) -> S3Proxy:
        """The S3 proxy a cluster's connection goes through (dev: the shared one)."""
        return self.lane_proxies.get(cluster, self.proxy)


def _catalog_url(registry: Registry) -> str:
    entry = registry.clusters[CATALOG_CLUSTER]
    from sqlalchemy.engine import URL

    return URL.create(
        "mysql+pymysql",
        username=entry.sql_user,
        password=entry.sql_password,
        host=entry.sql_host,
        port=entry.sql_port,
        database=CATALOG_SCHEMA,
    ).render_as_string(hide_password=False)


def _lane_conn_id(lane: str) -> str:
    return f"s3_{lane}"


def _s3_conn(s3: Any, endpoint: str) -> str:
    """An S3 connection to ``endpoint`` (a proxy); it bounds the S3 client's waits (config_kwargs: 3 s to
    connect, 6 s per read, 2 attempts), as the README's Reliability section advises: with botocore's defaults
    (60 s reads, 5 attempts) a blackholed S3 holds a task ~5 min."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": s3.access_key,
            "password": s3.secret_key,
            "extra": {
                "endpoint_url": endpoint,
                "region_name": s3.region,
                "config_kwargs": {
                    "s3": {"addressing_style": "path"},
                    "connect_timeout": 3,
                    "read_timeout": 6,
                    "retries": {"max_attempts": 2, "mode": "standard"},
                },
            },
        }
    )


def _fleet(path: Path, registry: Registry) -> Path:
    fleet = fleet_without_schedules(REPO / "include/config/clusters.yaml", path)
    doc = yaml.safe_load(fleet.read_text())
    dev = next(c for c in doc["clusters"] if c["name"] == "dev")
    for lane in LANES:  # dev's settings, its own cluster, log task and S3 endpoint; no drill or restore
        doc["clusters"].append(
            {
                **{k: v for k, v in dev.items() if k not in ("drill", "restore", "log_backup", "storage")},
                "name": lane,
                "pd": [registry.clusters[lane].pd],
                "tidb_conn_id": manager.conn_id(lane),
                "storage": {"conn_id": _lane_conn_id(lane)},
                "log_backup": {**dev["log_backup"], "task_name": f"pitr-{lane}"},
            }
        )
    doc["alert_routes"][WEBHOOK_ROUTE] = {"kind": "webhook", "conn_id": "faults_pager"}
    doc["catalog"] = {"conn_id": "faults_catalog"}
    doc["defaults"]["alerts"] = [*doc["defaults"].get("alerts", []), WEBHOOK_ROUTE]
    for cluster in doc["clusters"]:
        cluster.setdefault("br", {})["timeout"] = BR_TIMEOUT
        if "alerts" in cluster:
            cluster["alerts"] = [*cluster["alerts"], WEBHOOK_ROUTE]
        if cluster["name"] in E2E_RESTORE:
            cluster["restore"] = E2E_RESTORE[cluster["name"]]
        if cluster["name"] in E2E_RETENTION:
            cluster["retention"] = {**cluster.get("retention", {}), **E2E_RETENTION[cluster["name"]]}
    fleet.write_text(yaml.safe_dump(doc, sort_keys=False))
    return fleet


def _stop_group(pid: int) -> None:
    """Stop a process group a row started (a replacement scheduler), SIGKILL after 30 s."""
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
                os.kill(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                return
            time.sleep(0.2)


@pytest.fixture(scope="package")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    home = tmp_path_factory.mktemp("playground")
    clusters = (
        *manager.default_clusters(sql_port_base=None),
        manager.ClusterSpec(name=CATALOG_CLUSTER, kind="scratch", pd=f"127.0.0.1:{free_port()}"),
        *(manager.ClusterSpec(name=lane, kind="source", pd=f"127.0.0.1:{free_port()}") for lane in LANES),
    )
    manager.up(home, rows=2000, clusters=clusters, s3_port=None)
    proxy = sink = standalone = None
    own: list[int] = []
    lane_proxies: dict[str, S3Proxy] = {}
    try:
        registry = load_registry(home)
        assert registry.s3 is not None
        entry = registry.clusters[CATALOG_CLUSTER]
        with (
            pymysql.connect(
                host=entry.sql_host, port=entry.sql_port, user=entry.sql_user, password=entry.sql_password
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {CATALOG_SCHEMA}")
        s3_port = int(registry.s3.endpoint.rsplit(":", 1)[1])
        proxy = S3Proxy(s3_port)
        lane_proxies.update({lane: S3Proxy(s3_port) for lane in LANES})
        sink = WebhookSink()
        s3 = registry.s3
        extra_env = {
            "AIRFLOW_CONN_FAULTS_CATALOG": json.dumps(
                {
                    "conn_type": "mysql",
                    "host": entry.sql_host,
                    "port": entry.sql_port,
                    "login": entry.sql_user,
                    "password": entry.sql_password,
                    "schema": CATALOG_SCHEMA,
                }
            ),
            "AIRFLOW_CONN_FAULTS_PAGER": json.dumps(
                {"conn_type": "http", "host": f"http://127.0.0.1:{sink.port}/alerts"}
            ),
            # Airflow's and BR's S3 traffic goes through the proxy (a lane's through its own)
            "AIRFLOW_CONN_S3_PLAYGROUND": _s3_conn(s3, proxy.endpoint),
            **{
                f"AIRFLOW_CONN_{_lane_conn_id(lane).upper()}": _s3_conn(s3, p.endpoint)
                for lane, p in lane_proxies.items()
            },
            "TIDBOPS_CATALOG_URL": _catalog_url(registry),
            # a task's calls to the API server's execution API wait 30 s, not 5: on a 2-CPU machine shared
            # with other test runs, the default failed tasks before they started ("Workload execution failed":
            # httpcore.ReadTimeout), each such failure a retry and an alert the fault did not cause
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        }
        af_home = home / "airflow"
        (af_home / "config").mkdir(parents=True, exist_ok=True)
        (af_home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        standalone = AirflowStandalone(
            home=home,
            port=free_port(),
            fleet_config=_fleet(tmp_path_factory.mktemp("fleet") / "clusters.yaml", registry),
            extra_env=extra_env,
        )
        started = standalone.start(timeout=600)  # a loaded CI machine migrates a fresh metadata DB slowly
        api = PatientAPI(started.url, started.username, started.password)
        catalog = Catalog.from_url(_catalog_url(registry))
        catalog.migrate()
        bed = Bed(
            home=home,
            registry=registry,
            api=api,
            standalone=standalone,
            catalog=catalog,
            catalog_url=_catalog_url(registry),
            bucket=manager.Bucket.of(s3),
            proxy=proxy,
            sink=sink,
            lane_proxies=lane_proxies,
            own_processes=own,
        )
        try:
            yield bed
        except BaseException:
            print(standalone.log_file.read_text()[-5000:])
            raise
        finally:
            catalog.close()
    finally:
        for pid in own:
            _stop_group(pid)
        if standalone is not None:
            standalone.stop()
        for p in (proxy, *lane_proxies.values()):
            if p is not None:
                p.close()
        if sink is not None:
            sink.close()
        manager.down(home)
        try:  # Airflow's PostgreSQL, where the playground runs one (#18)
            from tidbops_playground import postgres
        except ImportError:
            pass
        else:
            postgres.stop(home)
