"""A real Airflow for the playground: ``airflow standalone`` (LocalExecutor) with our DAGs.

Its metadata DB is the playground's private PostgreSQL (:mod:`tidbops_playground.postgres`, a database per
Airflow home), as in a real deployment; ``metadata_db="sqlite"`` keeps a SQLite file in the Airflow home
for whoever says why it needs one.

Used by ``make up`` (run it in the foreground), ``make demo`` and the e2e tests (start, drive it through
the REST API, stop). Nothing here imports Airflow: it runs the ``airflow`` executable of this venv.

    python -m tidbops_playground.airflow run     # start and wait; Ctrl-C stops it
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tidbops_playground.registry import playground_home

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BR_BIN_DIR = REPO / "include" / "tidbops_playground" / "bin"
DEFAULT_PORT = 28080
ADMIN = "admin"
#: the playground's users and their simple-auth-manager roles: runs a test triggers as ``dba`` (admin) carry
#: ``triggering_user_name == "dba"``; ``viewer`` may read everything and change nothing; ``nobody`` has no
#: role, so it can log in and is refused everything (the UI's access tests)
USERS = {ADMIN: "admin", "dba": "admin", "viewer": "viewer", "nobody": ""}
#: an http connection to this Airflow's own REST API, for tasks that set a run's note (tidb_restore)
API_CONN_ID = "tidbops_airflow_api"
#: in the Airflow home while ``airflow standalone`` runs: its pid (``playground down`` stops it)
PID_FILE = "standalone.pid"
#: seconds each step of :func:`stop_family` waits before the next, harder one
STOP_GRACE = 8.0


class AirflowError(RuntimeError):
    """The playground Airflow did not start, or a run did not do what was asked."""


def _playground_connections(home: Path) -> dict[str, str]:
    """The AIRFLOW_CONN_* and TIDBOPS_* variables the playground wrote for its clusters."""
    try:
        from tidbops_playground.manager import playground_env
    except ImportError:
        return {}
    try:
        return dict(playground_env(home))
    except FileNotFoundError:
        return {}


def _secret_file(path: Path, nbytes: int) -> str:
    """A random secret kept in a 0600 file, so every Airflow process of this home shares it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_env(
    home: Path,
    port: int = DEFAULT_PORT,
    airflow_home: Path | None = None,
    fleet_config: Path | None = None,
    metadata_url: str | None = None,
) -> dict[str, str]:
    """The environment every Airflow process of the playground runs with.

    ``metadata_url``: Airflow's metadata DB (SQLAlchemy URL); None: Airflow's default SQLite file.
    """
    af_home = airflow_home or home / "airflow"
    env = {
        **os.environ,
        **_playground_connections(home),
        "TIDBOPS_PLAYGROUND_HOME": str(home),
        "AIRFLOW_HOME": str(af_home),
        "TIDBOPS_CATALOG_URL": f"sqlite:///{af_home / 'tidbops_catalog.db'}",  # this Airflow's, whatever its home
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(af_home / "passwords.json"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__CORE__PARALLELISM": "8",  # LocalExecutor forks this many workers; 2 cores here
        # plugins load when `airflow` is imported, so the scheduler imports ours (which preloads what the
        # tasks use) before it forks the workers: see plugins/tidbops_plugin.py
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__LOGGING__MIN_LENGTH_MASKED_SECRET": "5",
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret_file(af_home / "jwt_secret", 64),
        "AIRFLOW__API__SECRET_KEY": _secret_file(af_home / "api_secret", 32),
        "GX_ANALYTICS_ENABLED": "false",
        # our venv first (the `airflow` executable), then the br emulator: production code finds `br` on PATH
        "PATH": os.pathsep.join([str(VENV_BIN), str(BR_BIN_DIR), os.environ.get("PATH", "")]),
    }
    if fleet_config is not None:
        env["TIDBOPS_FLEET_CONFIG"] = str(fleet_config)
    if metadata_url is not None:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = metadata_url
    passwords = af_home / "passwords.json"
    if passwords.exists():  # written by AirflowStandalone.start before the processes start
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": port,
            "schema": "http",
            "login": ADMIN,
            "password": json.loads(passwords.read_text())[ADMIN],
        }
        env[f"AIRFLOW_CONN_{API_CONN_ID.upper()}"] = json.dumps(conn)
    return env


def fleet_without_schedules(source: Path, dest: Path) -> Path:
    """A copy of a fleet config with every schedule off: unpausing a DAG then starts no run by itself.

    The e2e tests and the demo trigger runs explicitly, so a scheduled run never races them for the
    cluster's single run slot.
    """
    import yaml

    from tidbops.config import Schedules

    doc = yaml.safe_load(source.read_text())
    keys = tuple(Schedules.model_fields)  # every schedule, those with a default on included
    for section in [doc.get("defaults") or {}, *doc["clusters"]]:
        section["schedules"] = {k: "off" for k in keys}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


def ensure_pools(api: AirflowAPI, fleet: Path | None = None) -> list[str]:
    """Create the pool ``br_<cluster>`` (1 slot) of every cluster of the fleet config; existing ones stay;
    with ``fleet.br_concurrency: N``, the pool ``br_fleet`` of N slots too (set to N when it exists).

    Tasks that run BR against a cluster run in its pool, and Airflow does not schedule tasks of a pool
    that does not exist. Production deployments create them with ``airflow pools set br_<cluster> 1 "…"``.
    """
    from tidbops.config import load_fleet

    created: list[str] = []
    loaded = load_fleet(fleet)
    for name in loaded.clusters:
        body = {"name": f"br_{name}", "slots": 1, "description": f"one BR job at a time on cluster {name}"}
        if _post_pool(api, body):
            created.append(f"br_{name}")
    cap = loaded.settings.br_concurrency
    if cap is not None:  # fleet.br_concurrency (#18): every BR task runs in br_fleet; a cluster's lease keeps it 1
        body = {"name": "br_fleet", "slots": cap, "description": f"at most {cap} BR jobs at once fleet-wide"}
        if _post_pool(api, body):
            created.append("br_fleet")
        else:
            set_pool_slots(api, "br_fleet", cap)
    return created


def set_pool_slots(api: AirflowAPI, pool: str, slots: int) -> None:
    """Set an existing pool's slots, keeping its description and ``include_deferred``.

    Airflow 3's ``PATCH /api/v2/pools/{pool}`` validates the body as a whole pool (``pool``, ``slots`` and
    ``include_deferred`` required, whatever the update mask): a body of the slots alone is an HTTP 422."""
    current = api._request("GET", f"/api/v2/pools/{pool}")
    body = {
        "pool": pool,
        "slots": slots,
        "description": current.get("description"),
        "include_deferred": bool(current.get("include_deferred")),
    }
    api._request("PATCH", f"/api/v2/pools/{pool}", body)


def _post_pool(api: AirflowAPI, body: dict[str, Any], attempts: int = 10) -> bool:
    """Create one pool; False when it exists. An HTTP 5xx (a metadata DB busy at start) is retried."""
    for attempt in range(attempts):
        try:
            api._request("POST", "/api/v2/pools", body)
            return True
        except AirflowError as exc:
            if "HTTP 409" in str(exc):
                return False
            if " HTTP 5" not in str(exc) or attempt == attempts - 1:
                raise
        time.sleep(1)
    return False


@dataclass
class AirflowStandalone:
    home: Path
    port: int = DEFAULT_PORT
    airflow_home: Path | None = None
    fleet_config: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. benchmarks comparing settings
    #: "postgres": the playground's private PostgreSQL (started if needed), a database per Airflow home;
    #: "sqlite": a SQLite file in the Airflow home (only for a caller that says why)
    metadata_db: Literal["postgres", "sqlite"] = "postgres"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def af_home(self) -> Path:
        return self.airflow_home or self.home / "airflow"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.af_home / "standalone.log"

    def password(self, user: str = ADMIN) -> str:
        return str(json.loads((self.af_home / "passwords.json").read_text())[user])

    def api_as(self, user: str) -> AirflowAPI:
        """The REST API as another playground user (``USERS``)."""
        return AirflowAPI(self.url, user, self.password(user))

    def start(self, timeout: float = 420.0) -> AirflowAPI:
        self.af_home.mkdir(parents=True, exist_ok=True)
        pw_file = self.af_home / "passwords.json"
        known = json.loads(pw_file.read_text()) if pw_file.exists() else {}
        if any(user not in known for user in USERS):
            pw_file.write_text(json.dumps({user: known.get(user) or secrets.token_urlsafe(12) for user in USERS}))
            pw_file.chmod(0o600)
        env = airflow_env(self.home, self.port, self.af_home, self.fleet_config, self.metadata_url())
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "airflow"), "standalone"],
                env={**env, **self.extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.af_home / PID_FILE).write_text(f"{self.process.pid}\n")
        try:
            api = AirflowAPI(self.url, ADMIN, self.password())
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AirflowError(f"airflow standalone exited with {self.process.returncode}; see {self.log_file}")
                if api.healthy():
                    ensure_pools(api, self.fleet_config)
                    return api
                time.sleep(1)
            raise AirflowError(f"Airflow API on {self.url} not healthy after {timeout}s; see {self.log_file}")
        except BaseException:
            self.stop()  # never leave a half-started Airflow behind (a failed start, Ctrl-C while waiting)
            raise

    def metadata_url(self) -> str | None:
        """Airflow's metadata DB: this Airflow home's database on the playground's PostgreSQL, or None (SQLite)."""
        if self.metadata_db == "sqlite":
            return None
        from tidbops_playground import postgres

        pg = postgres.ensure(self.home)
        database = postgres.database_for(self.af_home, self.home / "airflow")
        pg.ensure_database(database)
        return pg.url(database)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop standalone and everything it started, within seconds (see :func:`stop_family`)."""
        if self.process is None:
            return
        stop_family(self.process.pid, grace)
        self.process.poll()
        pid_file = self.af_home / PID_FILE
        with contextlib.suppress(OSError):
            if pid_file.read_text().strip() == str(self.process.pid):
                pid_file.unlink()


def stop_family(pid: int, grace: float = STOP_GRACE, extra: Iterable[int] = ()) -> float:
    """Stop ``airflow standalone`` (``pid``) and every process below it (plus ``extra``); return the seconds taken.

    Why not just SIGTERM to everything: standalone has no SIGTERM handler, so it dies at once and the
    pipe its components log to breaks; they then spin at 100% CPU in their shutdown logging and never
    exit. The scheduler's LocalExecutor workers are forked after the scheduler installed its SIGTERM
    handler, which does nothing outside the scheduler's own process (``_is_parent_process()``), so
    they ignore SIGTERM for good (they exit on the scheduler's poison pill, or SIGKILL).

    So: SIGINT to standalone first (its own shutdown: SIGTERM to each component while it keeps reading
    their output; the scheduler stops its workers), then SIGTERM, then SIGKILL to whatever is left,
    each step after ``grace`` seconds at most.
    """
    started = time.monotonic()
    family = {pid, *_descendants(pid), *extra}
    for p in list(extra):
        family.update(_descendants(p))
    steps: tuple[tuple[signal.Signals | None, float], ...] = (
        (signal.SIGINT, grace), (signal.SIGTERM, grace), (signal.SIGKILL, 5.0)
    )  # fmt: skip
    for sig, wait in steps:
        family.update(d for p in list(family) if _alive(p) for d in _descendants(p))  # tasks started since
        alive = [p for p in family if _alive(p)]
        targets = [p for p in alive if _is_standalone(p)] if sig == signal.SIGINT else alive
        for target in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, sig)  # type: ignore[arg-type]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            _reap(pid)
            time.sleep(0.1)
        if not any(_alive(p) for p in family):
            break
    _reap(pid)
    return time.monotonic() - started


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (so it is no zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def airflow_processes(home: Path) -> list[int]:
    """Airflow processes of this playground home (any Airflow home below it), by their environment.

    For ``playground down``: it finds an Airflow even when standalone is gone and its components live on.
    """
    found: list[int] = []
    me = {os.getpid(), os.getppid()}
    want = f"TIDBOPS_PLAYGROUND_HOME={home}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in me:
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        is_airflow = cmd[0].startswith(b"airflow ") or any(c.endswith(b"/airflow") for c in cmd[:2])
        if is_airflow and want in environ and _alive(int(entry)):
            found.append(int(entry))
    return found


def stop_airflow(home: Path, grace: float = STOP_GRACE) -> list[int]:
    """Stop every Airflow process of this playground home (``playground down``); return the pids found."""
    pids = airflow_processes(home)
    if not pids:
        return []
    roots = [p for p in pids if _is_standalone(p)]
    lead = roots[0] if roots else pids[0]
    stop_family(lead, grace, extra=[p for p in pids if p != lead])
    return pids


def _is_standalone(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"standalone" in cmd[1:3] and any(c.endswith(b"/airflow") for c in cmd[:2])


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children_map(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class AirflowAPI:
    """A small client of Airflow's REST API v2 (what a DBA's script would use)."""

    url: str
    username: str
    password: str
    _token: str | None = field(default=None, init=False, repr=False)

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (loopback)
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AirflowError(
                f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:2000]}"
            ) from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def token(self) -> str:
        if self._token is None:
            answer = self._request(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = str(answer["access_token"])
        return self._token

    def healthy(self) -> bool:
        try:
            health = self._request("GET", "/api/v2/monitor/health", auth=False)
        except (AirflowError, OSError, http.client.HTTPException):  # not up yet, or not (yet) Airflow on the port
            return False
        return bool(health) and health.get("scheduler", {}).get("status") == "healthy"

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return dict(self._request("GET", f"/api/v2/dags/{dag_id}"))
            except AirflowError as exc:
                if "HTTP 404" not in str(exc):
                    raise
            time.sleep(2)
        errors = self._request("GET", "/api/v2/importErrors")
        raise AirflowError(f"DAG {dag_id} not parsed after {timeout}s; import errors: {errors}")

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, note: str | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if note:
            body["note"] = note
        run = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        return str(run["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"))

    def run_dag(
        self, dag_id: str, conf: dict[str, Any] | None = None, note: str | None = None, timeout: float = 300.0
    ) -> tuple[str, str]:
        """Wait until ``dag_id`` is parsed, unpause it, trigger one run and wait for it: ``(run_id, state)``.

        A trigger answered with an HTTP 5xx (the metadata DB busy, or restarting) is tried again, 4 times at most.
        """
        self.wait_for_dag(dag_id)
        self.unpause(dag_id)
        for attempt in range(4):
            try:
                run_id = self.trigger(dag_id, conf=conf, note=note)
                break
            except AirflowError as exc:
                if not re.search(r"HTTP 5\d\d", str(exc)) or attempt == 3:
                    raise
                time.sleep(2.0)
        return run_id, self.wait_run(dag_id, run_id, timeout=timeout)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        deadline = time.monotonic() + timeout
        state = "queued"
        while time.monotonic() < deadline:
            state = str(self.run(dag_id, run_id)["state"])
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        raise AirflowError(f"run {run_id} of {dag_id} still {state} after {timeout}s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        rid = urllib.parse.quote(run_id, safe="")
        return list(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances")["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        rid = urllib.parse.quote(run_id, safe="")
        return dict(self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}"))

    def wait_task(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 180.0
    ) -> dict[str, Any]:
        """Poll one task instance until its state is one of ``states``; its last answer is returned."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        ti: dict[str, Any] = {}
        while time.monotonic() < deadline:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti.get("state") in wanted:
                return ti
            time.sleep(1)
        raise AirflowError(f"{dag_id} {run_id} {task_id} still {ti.get('state')} after {timeout}s")

    def clear_task(self, dag_id: str, run_id: str, task_id: str, downstream: bool = True) -> None:
        """Clear a task (and, by default, everything after it) in one run: the UI's "Clear → downstream"."""
        self._request(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "include_downstream": downstream,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    def wait_cleared_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """``wait_run`` after ``clear_task``: first wait for the run to leave its old final state."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.run(dag_id, run_id)["state"] in ("success", "failed"):
            time.sleep(0.5)
        return self.wait_run(dag_id, run_id, timeout=timeout)

    def run_logs(self, dag_id: str, run_id: str) -> str:
        """Every try's log of every task of one run, concatenated (for assertion messages)."""
        return "\n".join(
            self.task_log(dag_id, run_id, ti["task_id"], n)
            for ti in self.task_instances(dag_id, run_id)
            for n in range(1, int(ti["try_number"] or 0) + 1)
        )

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        rid = urllib.parse.quote(run_id, safe="")
        entry = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}/xcomEntries/{key}")
        return entry["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        rid = urllib.parse.quote(run_id, safe="")
        answer = self._request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        )
        content = answer.get("content", answer) if isinstance(answer, dict) else answer
        if isinstance(content, list):
            return "\n".join(json.dumps(c) if not isinstance(c, str) else c for c in content)
        return str(content)

    def task_log_text(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task log as a person reads it: each structured line's message (multi-line ones intact)."""
        rid = urllib.parse.quote(run_id, safe="")
        answer = self._request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{rid}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        )
        content = answer.get("content", answer) if isinstance(answer, dict) else answer
        if not isinstance(content, list):
            return str(content)
        lines: list[str] = []
        for c in content:
            if not isinstance(c, dict):
                lines.append(str(c))
                continue
            lines.append(str(c.get("event", "")))
            for detail in c.get("error_detail") or ():  # a failure: the exception's type and message
                if isinstance(detail, dict):
                    lines.append(f"{detail.get('exc_type')}: {detail.get('exc_value')}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] != ["run"]:
        print("usage: python -m tidbops_playground.airflow run", file=sys.stderr)
        return 2
    home = playground_home()
    port = int(os.environ.get("TIDBOPS_AIRFLOW_PORT", DEFAULT_PORT))
    standalone = AirflowStandalone(home=home, port=port)

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (kill, a supervisor) stops Airflow like Ctrl-C does

    signal.signal(signal.SIGTERM, on_term)
    running = [p for p in airflow_processes(home) if _is_standalone(p)]
    if running:  # `make up` twice: one Airflow per playground, the first keeps running
        print(f"Airflow already runs for {home} (pid {running[0]}); `make playground-down` stops it")
        return 0
    print(f"starting Airflow (standalone) in {standalone.af_home}; log: {standalone.log_file}", flush=True)
    try:
        # stops what it started when it fails or is interrupted; a busy machine needs minutes
        standalone.start(timeout=float(os.environ.get("TIDBOPS_AIRFLOW_START_TIMEOUT", "600")))
        print(f"Airflow is up: {standalone.url}  user {ADMIN}, password in {standalone.af_home / 'passwords.json'}")
        print("DAGs start paused; unpause them in the UI. Ctrl-C stops Airflow (the playground keeps running).")
        while standalone.process is not None and standalone.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        print("stopping Airflow", flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the stop short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        standalone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
