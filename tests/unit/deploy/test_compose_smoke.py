"""scripts/compose-smoke.sh against a fake of Airflow's REST API on loopback and a fake `docker` on PATH
(there is no Docker engine here): the token flow, the unpause-then-trigger order, polling to the end, the
outcome printed and returned, and the admin password in no argv and no output."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

PASSWORD = "Adm1nSecretPw"
TOKEN = "jwt-token-123"
DAGS = ["tidb_backup_full__demo", "tidb_log_backup_check__demo", "tidb_restore_drill__demo"]


@dataclass
class FakeAirflow:
    """What the fake API saw, and the final state each DAG's run reaches."""

    outcome: dict[str, str] = field(default_factory=lambda: dict.fromkeys(DAGS, "success"))
    calls: list[tuple[str, str]] = field(default_factory=list)
    looks: dict[str, int] = field(default_factory=dict)
    unauthorized: int = 0


def _handler(fake: FakeAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def _route(self, method: str) -> None:
            path = self.path
            fake.calls.append((method, path))
            if path == "/api/v2/version":
                return self._reply(200, {"version": "3.3.2"})
            if path == "/auth/token" and method == "POST":
                ok = self._body() == {"username": "admin", "password": PASSWORD}
                return self._reply(201, {"access_token": TOKEN}) if ok else self._reply(401, {"detail": "no"})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                fake.unauthorized += 1
                return self._reply(401, {"detail": "Not authenticated"})
            parts = path.split("/")  # ['', 'api', 'v2', 'dags', dag, ...]
            dag = parts[4]
            if len(parts) == 5:
                if method == "PATCH":
                    assert self._body() == {"is_paused": False}
                return self._reply(200, {"dag_id": dag, "is_paused": method != "PATCH"})
            if parts[5] == "dagRuns" and method == "POST":
                assert self._body() == {"logical_date": None, "conf": {}}
                return self._reply(200, {"dag_run_id": "manual__2026-12-07T01:00:00+00:00", "state": "queued"})
            if parts[5] == "dagRuns" and len(parts) == 7:
                assert parts[6] == "manual__2026-12-07T01%3A00%3A00%2B00%3A00"
                fake.looks[dag] = fake.looks.get(dag, 0) + 1
                state = "running" if fake.looks[dag] < 2 else fake.outcome[dag]
                return self._reply(200, {"dag_run_id": "x", "state": state})
            if parts[-1] == "taskInstances":
                return self._reply(200, {"task_instances": [{"task_id": "run_br_backup", "state": fake.outcome[dag]}]})
            return self._reply(404, {"detail": path})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@pytest.fixture
def airflow() -> Iterator[tuple[FakeAirflow, str]]:
    fake = FakeAirflow()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run(tmp_path: Path, api: str) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_log = tmp_path / "docker-argv.log"
    docker = bin_dir / "docker"  # the Docker CLI is not here: a stand-in that records its argv
    docker.write_text(f'#!/bin/sh\necho "$@" >> {argv_log}\n[ "$2" = ps ] && echo "all services healthy"\nexit 0\n')
    docker.chmod(0o755)
    env_file = tmp_path / "smoke.env"
    env_file.write_text((REPO / ".env.example").read_text().replace("change-me", "x1") + "")
    env_file.write_text(env_file.read_text().replace("AIRFLOW_ADMIN_PASSWORD=x1", f"AIRFLOW_ADMIN_PASSWORD={PASSWORD}"))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TIDBOPS_SMOKE_API": api,
        "TIDBOPS_SMOKE_ENV_FILE": str(env_file),
        "TIDBOPS_SMOKE_POLL": "0.1",
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts/compose-smoke.sh")], capture_output=True, text=True, env=env, timeout=120
    )
    return done, argv_log.read_text()


def test_three_runs_that_succeed_pass(tmp_path: Path, airflow: tuple[FakeAirflow, str]) -> None:
    fake, api = airflow
    done, docker_argv = _run(tmp_path, api)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test passed" in done.stdout
    for dag in DAGS:
        assert f"== {dag}\n   run manual__2026-12-07T01:00:00+00:00: success" in done.stdout
    triggered = [path.split("/")[4] for method, path in fake.calls if method == "POST" and path.endswith("/dagRuns")]
    assert triggered == DAGS
    for dag in DAGS:  # unpaused before it is triggered
        unpause = fake.calls.index(("PATCH", f"/api/v2/dags/{dag}"))
        assert unpause < fake.calls.index(("POST", f"/api/v2/dags/{dag}/dagRuns"))
    assert fake.unauthorized == 0 and all(n == 2 for n in fake.looks.values())
    assert docker_argv.splitlines()[:2] == [
        "compose version",
        f"compose --env-file {tmp_path}/smoke.env up -d --build --wait --wait-timeout 1200",
    ]
    assert PASSWORD not in docker_argv + done.stdout + done.stderr


def test_a_failed_run_fails_the_smoke_test(tmp_path: Path, airflow: tuple[FakeAirflow, str]) -> None:
    fake, api = airflow
    fake.outcome["tidb_restore_drill__demo"] = "failed"
    done, _ = _run(tmp_path, api)
    assert done.returncode == 1
    assert "tidb_restore_drill__demo\n   run manual__2026-12-07T01:00:00+00:00: failed" in done.stdout
    assert "run_br_backup: failed" in done.stdout and "smoke test FAILED" in done.stderr


def test_placeholders_left_in_the_env_file_stop_it_before_anything_runs(tmp_path: Path) -> None:
    env_file = tmp_path / "smoke.env"
    env_file.write_text((REPO / ".env.example").read_text())
    env = {**os.environ, "TIDBOPS_SMOKE_ENV_FILE": str(env_file), "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(REPO / "scripts/compose-smoke.sh")], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2 and "still holds change-me placeholders" in done.stderr
