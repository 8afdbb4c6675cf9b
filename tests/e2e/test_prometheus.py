"""A real Prometheus (Debian's server) scrapes the playground Airflow's ``/tidbops/metrics`` and runs our alerts.

The scrape job is ``include/prometheus/prometheus.example.yml`` with its target, token file and intervals
replaced (1 s scrapes and rule evaluations), loading ``include/prometheus/alerts.yml``; its token is the
password of the Airflow connection ``tidbops_metrics``, created through Airflow's REST API (so the API
server reads it from its metadata database, as ``airflow connections add`` would leave it).

* over HTTP: no credentials or a wrong token → 401; the token (bearer) and basic auth → 200;
* after a full backup of dev through Airflow, Prometheus' query API has dev's backup-age series, equal to
  the catalog's time of that backup;
* uat's log backup checkpoint frozen (the emulator's ``log_checkpoint_frozen``) plus log backup checks →
  ``TidbopsLogCheckpointFrozen`` firing for uat in Prometheus' ``/api/v1/alerts``; healed plus a check →
  resolved. The fault is lifted and uat's log task stopped afterwards, as the module found them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidbops.br.output import parse_log_status
from tidbops.catalog.store import Catalog
from tidbops_playground import faults, manager
from tidbops_playground.airflow import AirflowAPI, AirflowError
from tidbops_playground.registry import Registry

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "include" / "prometheus"
CONN_ID = "tidbops_metrics"
SCRAPER = "prometheus"
LOG_CHECK = "tidb_log_backup_check__uat"
LOG_TASK = "pitr-uat"
CHECK_CONF = {"frozen_after": "5s"}  # the playground's advancer moves the checkpoint every 3 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"not {what} after {timeout}s")


class Prometheus:
    """Debian's Prometheus server on a free port, with a temp config and data dir."""

    def __init__(self, workdir: Path, target: str, token: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        doc = yaml.safe_load((PROMETHEUS_DIR / "prometheus.example.yml").read_text())
        doc["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        [job] = doc["scrape_configs"]
        token_file = workdir / "tidbops_metrics_token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        job["authorization"]["credentials_file"] = str(token_file)
        job["static_configs"] = [{"targets": [target]}]
        shutil.copy(PROMETHEUS_DIR / "alerts.yml", workdir / "alerts.yml")
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(doc))
        self.log = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                return http(f"{self.url}/-/ready")[0] == 200
            except urllib.error.URLError:  # not listening yet
                return False

        wait_for("Prometheus ready", ready, timeout=60)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def api(self, path: str, **params: str) -> Any:
        status, body = http(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        alerts = self.api("alerts")["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]

    def target_health(self) -> str:
        targets = self.api("targets")["activeTargets"]
        assert len(targets) <= 1, targets
        return " ".join(f"{t['health']} {t.get('lastError', '')}" for t in targets)  # "" until discovered


def set_metrics_connection(api: AirflowAPI, token: str) -> None:
    body = {"connection_id": CONN_ID, "conn_type": "http", "login": SCRAPER, "password": token}
    try:
        api._request("POST", "/api/v2/connections", body)
    except AirflowError as exc:
        if "HTTP 409" not in str(exc):
            raise
        api._request("PATCH", f"/api/v2/connections/{CONN_ID}", body)


def br(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **manager.playground_env(home), "TIDBOPS_PLAYGROUND_HOME": str(home)}
    argv = [str(manager.BR_PATH), *args, "--log-file", str(home / "logs" / "e2e-prometheus-br.log")]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def checkpoint(home: Path, registry: Registry) -> int | None:
    out = br(home, "log", "status", "--json", "--pd", registry.clusters["uat"].pd)
    assert out.returncode == 0, out.stderr
    task = next((t for t in parse_log_status(out.stdout) if t.name == LOG_TASK), None)
    return None if task is None else task.checkpoint_ts


def stop_log_task(home: Path, registry: Registry) -> None:
    if checkpoint(home, registry) is not None:
        br(home, "log", "stop", "--task-name", LOG_TASK, "--pd", registry.clusters["uat"].pd)


def log_check(api: AirflowAPI) -> tuple[str, dict[str, Any]]:
    run_id = api.trigger(LOG_CHECK, conf=CHECK_CONF, note="e2e prometheus")
    state = api.wait_run(LOG_CHECK, run_id, timeout=180)
    return state, dict(api.xcom(LOG_CHECK, run_id, "check_log_backup"))


@pytest.fixture
def uat_log_clean(playground_home: Path, registry: Registry) -> Iterator[None]:
    faults.clear_faults(playground_home, "uat")
    stop_log_task(playground_home, registry)
    try:
        yield
    finally:
        faults.clear_faults(playground_home, "uat")
        stop_log_task(playground_home, registry)


def test_prometheus_scrapes_the_catalog_and_fires_the_frozen_checkpoint_alert(
    airflow: AirflowAPI,
    playground_home: Path,
    registry: Registry,
    catalog: Catalog,
    tmp_path: Path,
    uat_log_clean: None,
) -> None:
    home = playground_home
    token = secrets.token_urlsafe(24)
    set_metrics_connection(airflow, token)
    metrics_url = f"{airflow.url}/tidbops/metrics"

    # ----------------------------------------------------------------------- the endpoint's own door
    status, body = http(metrics_url)
    assert status == 401 and CONN_ID in body and token not in body, body
    assert http(metrics_url, {"Authorization": "Bearer not-the-token"})[0] == 401
    assert http(metrics_url, {"Authorization": f"Bearer {airflow.token()}"})[0] == 401, "an Airflow login is not it"
    status, body = http(metrics_url, {"Authorization": f"Bearer {token}"})
    assert status == 200 and "tidbops_metrics_scrape_error 0.0" in body, body[:3000]
    basic = base64.b64encode(f"{SCRAPER}:{token}".encode()).decode()
    assert http(metrics_url, {"Authorization": f"Basic {basic}"})[0] == 200

    prometheus = Prometheus(tmp_path, target=airflow.url.removeprefix("http://"), token=token)
    prometheus.start()
    try:
        wait_for("the scrape target up", lambda: prometheus.target_health().startswith("up"), timeout=60)
        assert prometheus.query("tidbops_metrics_scrape_error") and not prometheus.query(
            "tidbops_metrics_scrape_error == 1"
        )

        # ------------------------------------------------------- a full backup → its age series in Prometheus
        airflow.wait_for_dag("tidb_backup_full__dev")
        airflow.unpause("tidb_backup_full__dev")
        run_id = airflow.trigger("tidb_backup_full__dev", note="e2e prometheus")
        assert airflow.wait_run("tidb_backup_full__dev", run_id, timeout=300) == "success"
        [backup] = [b for b in catalog.list_backups("dev") if b.run_id == run_id]
        assert backup.finished_at is not None
        series = 'tidbops_backup_last_success_timestamp_seconds{cluster="dev", env="dev", kind="full"}'

        def backup_seen() -> list[dict[str, Any]]:
            found = prometheus.query(series)
            return found if found and float(found[0]["value"][1]) >= backup.finished_at.timestamp() - 1 else []

        [sample] = wait_for("dev's new full backup in Prometheus", backup_seen, timeout=60)
        assert abs(float(sample["value"][1]) - backup.finished_at.timestamp()) < 1.0, sample
        [age] = prometheus.query(f"time() - {series}")
        assert 0 <= float(age["value"][1]) < 600, age
        assert prometheus.query('tidbops_backup_last_verified_timestamp_seconds{cluster="dev"}')
        assert not prometheus.firing("TidbopsNoVerifiedBackup")

        # ------------------------------------------- uat's checkpoint frozen + log checks → the alert fires
        airflow.wait_for_dag(LOG_CHECK)
        airflow.unpause(LOG_CHECK)
        state, check = log_check(airflow)  # no task yet: the check starts it
        assert state == "success" and [a["kind"] for a in check["actions"]] == ["start"], check
        wait_for("uat's log task running", lambda: checkpoint(home, registry), timeout=30)
        faults.set_fault(home, "uat", "log_checkpoint_frozen")

        def frozen() -> bool:
            before = checkpoint(home, registry)
            time.sleep(3.5)  # one advancer round
            return before == checkpoint(home, registry)

        wait_for("uat's checkpoint frozen", frozen, timeout=30, every=0)
        state, first = log_check(airflow)  # sees the checkpoint (the baseline)
        assert state == "success" and not first["findings"], first
        assert not prometheus.firing("TidbopsLogCheckpointFrozen")
        seen_at = datetime.fromisoformat(first["checked_at"].replace("Z", "+00:00"))
        time.sleep(max(0.0, (seen_at + timedelta(seconds=6) - datetime.now(UTC)).total_seconds()))
        state, second = log_check(airflow)
        assert state == "failed" and [f["key"] for f in second["findings"]] == ["checkpoint_frozen"], second

        [alert] = wait_for("TidbopsLogCheckpointFrozen firing", lambda: prometheus.firing("TidbopsLogCheckpointFrozen"))
        assert alert["labels"]["cluster"] == "uat" and alert["labels"]["env"] == "uat", alert
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["dag"] == LOG_CHECK
        assert alert["annotations"]["runbook_url"] == "README.md#log-backup-pitr-health-and-tidbops-window"
        assert prometheus.query('tidbops_log_checkpoint_frozen{cluster="uat"} == 1')

        # ------------------------------------------------------------------ healed + a check → resolved
        faults.clear_faults(home, "uat")
        frozen_at = int(second["checkpoint_ts"])
        wait_for("uat's checkpoint moving", lambda: (checkpoint(home, registry) or 0) > frozen_at, timeout=30)
        state, healed = log_check(airflow)
        assert state == "success" and not healed["findings"], healed
        wait_for("the alert resolved", lambda: not prometheus.firing("TidbopsLogCheckpointFrozen"), timeout=30)
        assert prometheus.query('tidbops_log_checkpoint_frozen{cluster="uat"} == 0')
        assert "up" in prometheus.target_health()
    except BaseException:
        print(prometheus.log.read_text()[-3000:])
        raise
    finally:
        prometheus.stop()
