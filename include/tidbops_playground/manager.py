"""The playground manager: bring a fleet of emulated TiDB clusters up, report on it, take it down.

``up`` is idempotent and crash-tolerant: it reuses what exists (registry, passwords, cluster ids, ports,
datadirs, seeded data), cleans stale pid/socket files, re-initialises a datadir that never finished
initialising, restarts what is dead, seeds only source clusters without a seed marker, (re)creates the
S3 bucket, starts the private PostgreSQL (the metadata DB of the playground's Airflow), writes
``airflow.env`` and starts the daemon. ``down`` stops every Airflow of the home, the daemon, PostgreSQL,
every MariaDB server and the S3 server, leaving data on disk (S3 objects live in the S3 server's memory and are lost);
``down(purge=True)`` also removes the home.

Layout added to the one in :mod:`tidbops_playground.registry`::

    airflow.env                   AIRFLOW_CONN_* and TIDBOPS_* exports (0600; holds passwords)
    daemon.pid daemon.lock        the daemon (see daemon.py); daemon.status.json its heartbeat
    writer.paused                 present while writers are paused (clusters/<name>/writer.paused: one)
    clusters/<name>/.initialised  the datadir finished initialising once
    logs/s3.log logs/s3.pid       the S3 server
    tmp/                          seed load files while seeding
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pymysql

from tidbops_playground import daemon as daemon_mod
from tidbops_playground import seed as seed_mod
from tidbops_playground import tlsgen
from tidbops_playground import writer as writer_mod
from tidbops_playground.mariadb import MariaDBInstance
from tidbops_playground.registry import (
    REGISTRY_FILE,
    ClusterEntry,
    Registry,
    S3Endpoint,
    load_registry,
    playground_home,
    save_registry,
)
from tidbops_playground.s3server import S3Server

log = logging.getLogger("tidbops_playground.manager")

DEFAULT_SQL_PORT_BASE = 14000
DEFAULT_PD_PORT_BASE = 23791
DEFAULT_S3_PORT = 14900
DEFAULT_BUCKET = "tidbops-backups"
DEFAULT_REGION = "us-east-1"
DEFAULT_TIDB_VERSION = "v8.5.1"
DEFAULT_ROWS = seed_mod.DEFAULT_ROWS
DEFAULT_SEED = seed_mod.DEFAULT_SEED
SQL_USER = "root"
ENV_FILE = "airflow.env"
INITIALISED_MARKER = ".initialised"
S3_CONN_ID = "s3_playground"
# the same keys, used to assume a role through STS (moto serves it on the S3 endpoint): the amazon provider
# calls AssumeRole and BR gets the temporary credentials (#14; the e2e fleet's prod uses it)
S3_ROLE_CONN_ID = "s3_playground_role"
S3_ROLE_ARN = "arn:aws:iam::123456789012:role/tidbops-playground-backup"
TLS_CLUSTER = "secure"  # the TLS cluster of the default playground
TLS_DIR = "tls"  # <home>/tls: the CA, server and client PEMs (tlsgen)
PACKAGE_DIR = Path(__file__).resolve().parent
BIN_DIR = PACKAGE_DIR / "bin"
BR_PATH = BIN_DIR / "br"
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys", seed_mod.MARKER_DB})
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class PlaygroundError(RuntimeError):
    """The playground could not be brought up or taken down."""


@dataclass(frozen=True)
class ClusterSpec:
    """What ``up`` should create for one cluster. ``sql_port=None``: any free port."""

    name: str
    kind: Literal["source", "scratch"]
    pd: str
    sql_port: int | None = None
    tidb_version: str = DEFAULT_TIDB_VERSION
    tls: bool = False  # TLS only (a CA made at `up`; BR needs --ca, SQL needs ssl_ca)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"cluster name {self.name!r}: use lowercase letters, digits and _")
        if self.kind not in ("source", "scratch"):
            raise ValueError(f"cluster kind {self.kind!r}: source or scratch")


def default_clusters(
    sql_port_base: int | None = DEFAULT_SQL_PORT_BASE, pd_port_base: int = DEFAULT_PD_PORT_BASE
) -> tuple[ClusterSpec, ...]:
    """dev, uat, prod (source), scratch1, scratch2 (scratch) and secure (a TLS-only source); SQL ports from the
    base or free ones."""
    names: list[tuple[str, Literal["source", "scratch"]]] = [
        ("dev", "source"),
        ("uat", "source"),
        ("prod", "source"),
        ("scratch1", "scratch"),
        ("scratch2", "scratch"),
        (TLS_CLUSTER, "source"),
    ]
    return tuple(
        ClusterSpec(
            name=name,
            kind=kind,
            pd=f"127.0.0.1:{pd_port_base + i}",
            sql_port=None if sql_port_base is None else sql_port_base + i,
            tls=name == TLS_CLUSTER,
        )
        for i, (name, kind) in enumerate(names)
    )


DEFAULT_CLUSTERS: tuple[ClusterSpec, ...] = default_clusters()


# ---- process helpers ---------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own child that was killed) is not alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_matches(pid: int, *needles: str) -> bool:
    cmd = " ".join(_cmdline(pid))
    return _alive(pid) and all(n in cmd for n in needles)


def _instance(home: Path, entry: ClusterEntry) -> MariaDBInstance:
    return MariaDBInstance(
        base=entry.cluster_dir(home),
        port=entry.sql_port,
        password=entry.sql_password,
        user=entry.sql_user,
        version_string=f"8.0.11-TiDB-{entry.tidb_version}",
        buffer_pool="128M" if entry.kind == "source" else "64M",
        tls=tlsgen.make_ca(home / TLS_DIR) if entry.tls_ca else None,
    )


def instance(home: Path | str | None, cluster: str) -> MariaDBInstance:
    """The MariaDB server of one cluster of the playground (for tests and tools)."""
    h = playground_home(home)
    entry = load_registry(h).clusters.get(cluster)
    if entry is None:
        raise PlaygroundError(f"no cluster {cluster!r} in {h / REGISTRY_FILE}")
    return _instance(h, entry)


def _find_process(*needles: str) -> int | None:
    """A live process whose command line contains every needle (a fallback for lost pid files)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _pid_matches(int(entry.name), *needles):
            return int(entry.name)
    return None


def _mariadb_pid(base: Path) -> int | None:
    """The pid of the MariaDB server of ``base`` if it runs.

    The pid file is checked against the process's command line (a stale file naming a reused pid is
    removed); without a valid pid file the process table is searched for this exact datadir.
    """
    pid_file = base / "mariadb.pid"
    needles = ("mariadbd", f"--datadir={base / 'data'} ")
    pid = _read_pid(pid_file)
    if pid is not None:
        if _pid_matches(pid, *needles):
            return pid
        pid_file.unlink(missing_ok=True)
    return _find_process(*needles)


def _clean_stale_mariadb(base: Path) -> None:
    if _mariadb_pid(base) is None:
        for name in ("mariadb.pid", "mariadb.sock", "mariadb.sock.lock"):
            (base / name).unlink(missing_ok=True)


def _s3_server(home: Path, port: int) -> S3Server:
    return S3Server(base=home / "logs", port=port)


def s3_server(home: Path | str | None = None) -> S3Server:
    """The playground's S3 server process (to stop and start it: an S3 outage in tests)."""
    h = playground_home(home)
    s3 = load_registry(h).s3
    if s3 is None:
        raise PlaygroundError(f"no S3 endpoint in the playground at {h}; run: tidbops playground up")
    return _s3_server(h, _port_of(s3))


def _s3_pid(home: Path, port: int | None = None) -> int | None:
    """The S3 server's pid: from its pid file, else (given the port) from the process table."""
    pid_file = home / "logs" / "s3.pid"
    pid = _read_pid(pid_file)
    if pid is not None:
        if _pid_matches(pid, "moto.server"):
            return pid
        pid_file.unlink(missing_ok=True)
    if port is None:
        return None
    found = _find_process("moto.server", f"-p {port}")
    if found is not None:
        pid_file.write_text(str(found))
    return found


def _port_of(s3: S3Endpoint) -> int:
    return int(s3.endpoint.rsplit(":", 1)[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # like the servers themselves: connections in TIME_WAIT do not make a port busy
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _free_port(avoid: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise PlaygroundError("no free loopback port")


def _pick_port(preferred: int | None, avoid: set[int]) -> int:
    if preferred and preferred not in avoid and _port_free(preferred):
        return preferred
    return _free_port(avoid)


@contextlib.contextmanager
def _manager_lock(home: Path) -> Iterator[None]:
    """Serialise ``up``/``down`` on one home."""
    with open(home / ".manager.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _new_cluster_id() -> int:
    # uint64 like TiDB's; kept below 2**63 so that signed 64-bit readers see the same number
    return (1 << 62) + secrets.randbelow(1 << 62)


def _new_password() -> str:
    return secrets.token_urlsafe(18)


# ---- daemon ------------------------------------------------------------------------------------


def daemon_pid(home: Path) -> int | None:
    """The daemon's pid when it is alive (holds its lock), else None."""
    if not daemon_mod.lock_held(home):
        return None
    pid = _read_pid(home / daemon_mod.PID_FILE)
    if pid is not None and _pid_matches(pid, "tidbops_playground.daemon"):
        return pid
    return None


def ensure_daemon(home: Path, timeout: float = 15.0) -> int:
    """Start the daemon unless it runs; wait for its first heartbeat; return its pid."""
    pid = daemon_pid(home)
    if pid is not None:
        return pid
    (home / "logs").mkdir(parents=True, exist_ok=True)
    before = time.time()
    with open(home / daemon_mod.LOG_FILE, "ab") as logfh, open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidbops_playground.daemon", "--home", str(home)],
            stdin=devnull,
            stdout=logfh,
            stderr=logfh,
            start_new_session=True,
            close_fds=True,
            cwd=str(home),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = daemon_mod.read_status(home)
        if (
            status
            and status.get("pid") == proc.pid
            and float(status.get("heartbeat", 0)) >= before
            and daemon_pid(home) == proc.pid
        ):
            return proc.pid
        if proc.poll() is not None:
            raise PlaygroundError(f"daemon exited with {proc.returncode}: {_tail(home / daemon_mod.LOG_FILE)}")
        time.sleep(0.05)
    raise PlaygroundError(f"daemon did not report within {timeout}s: {_tail(home / daemon_mod.LOG_FILE)}")


def stop_daemon(home: Path, timeout: float = 15.0) -> None:
    pid = daemon_pid(home)
    if pid is None:
        (home / daemon_mod.PID_FILE).unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            break
        time.sleep(0.05)
    else:
        log.warning("daemon %s ignored SIGTERM; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    (home / daemon_mod.PID_FILE).unlink(missing_ok=True)


def _tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


# ---- writer control ----------------------------------------------------------------------------


def _active_writers(home: Path) -> list[str]:
    if daemon_pid(home) is None:
        return []
    status = daemon_mod.read_status(home) or {}
    alive = status.get("threads_alive", {})
    return [name for name in status.get("writers", {}) if alive.get(f"writer-{name}", False)]


def pause_writer(home: Path | str | None = None, cluster: str | None = None, *, timeout: float = 15.0) -> None:
    """Freeze the writer (every cluster, or one): when this returns no writer transaction commits."""
    h = playground_home(home)
    writer_mod.pause_writer(h, cluster, timeout=timeout, active=lambda: _active_writers(h))


def resume_writer(home: Path | str | None = None, cluster: str | None = None) -> None:
    writer_mod.resume_writer(playground_home(home), cluster)


# ---- S3 ----------------------------------------------------------------------------------------


def s3_client(endpoint: S3Endpoint) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint.endpoint,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


@dataclass
class Bucket:
    """The playground's bucket, for tests and the demo: list, read, and snapshot/restore its objects."""

    client: Any
    name: str

    @classmethod
    def of(cls, endpoint: S3Endpoint) -> Bucket:
        return cls(s3_client(endpoint), endpoint.bucket)

    def key(self, uri: str) -> str:
        """The key of an ``s3://<bucket>/<key>`` URI of this bucket."""
        head = f"s3://{self.name}/"
        if not uri.startswith(head):
            raise ValueError(f"{uri!r} is not in bucket {self.name!r}")
        return uri[len(head) :]

    def objects(self, prefix: str = "") -> dict[str, str]:
        """key → ETag of every object below ``prefix``."""
        found: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            for o in page.get("Contents", []):
                found[o["Key"]] = o["ETag"]
        return found

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def snapshot(self) -> dict[str, bytes]:
        """Every object's content (the playground's S3 keeps objects in memory only)."""
        return {key: self.get(key) for key in self.objects()}

    def restore(self, snapshot: dict[str, bytes]) -> None:
        """Create the bucket if needed and put every object of ``snapshot`` back."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.name)
        except ClientError:
            self.client.create_bucket(Bucket=self.name)
        for key, body in snapshot.items():
            self.client.put_object(Bucket=self.name, Key=key, Body=body)


def _ensure_bucket(endpoint: S3Endpoint) -> None:
    from botocore.exceptions import ClientError

    client = s3_client(endpoint)
    try:
        client.head_bucket(Bucket=endpoint.bucket)
    except ClientError:
        client.create_bucket(Bucket=endpoint.bucket)


# ---- env file ----------------------------------------------------------------------------------


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def conn_id(cluster: str) -> str:
    return f"tidb_{cluster}"


CRYPTER_KEYS_FILE = "crypter_keys.json"


def crypter_keys(home: Path, clusters: Sequence[str]) -> dict[str, str]:
    """A BR crypter key (AES-256, 64 hex digits) per cluster, made once and kept in a 0600 file of the home."""
    path = home / CRYPTER_KEYS_FILE
    try:
        keys = {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        keys = {}
    missing = [c for c in clusters if c not in keys]
    if missing:
        keys.update({c: secrets.token_hex(32) for c in missing})
        _write_private(path, json.dumps(keys, indent=2, sort_keys=True) + "\n")
    return {c: keys[c] for c in clusters}


def _env_items(home: Path, registry: Registry) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    sources = sorted(n for n, e in registry.clusters.items() if e.kind == "source")
    for name, key in crypter_keys(home, sources).items():
        # the fleet config's br.encryption.key_conn_id of the encrypted clusters (br_crypter_uat, br_crypter_prod)
        conn_crypter = {"conn_type": "generic", "password": key}
        items.append((f"AIRFLOW_CONN_BR_CRYPTER_{name.upper()}", json.dumps(conn_crypter, sort_keys=True)))
    for name, entry in sorted(registry.clusters.items()):
        conn = {
            "conn_type": "mysql",
            "host": entry.sql_host,
            "port": entry.sql_port,
            "login": entry.sql_user,
            "password": entry.sql_password,
        }
        if entry.tls_ca:
            # SQL over TLS (tidbops.connections.sql_tls); BR's --ca/--cert/--key from the PEMs of tls_<name>
            conn["extra"] = {"ssl_ca": entry.tls_ca}
            pems = tlsgen.make_ca(home / TLS_DIR)
            files = {"ca": pems.ca, "cert": pems.client_cert, "key": pems.client_key}
            extra = {n: path.read_text() for n, path in files.items()}
            conn_tls = {"conn_type": "generic", "extra": extra}
            items.append((f"AIRFLOW_CONN_TLS_{name.upper()}", json.dumps(conn_tls, sort_keys=True)))
        items.append((f"AIRFLOW_CONN_{conn_id(name).upper()}", json.dumps(conn, sort_keys=True)))
    if registry.s3 is not None:
        s3 = registry.s3
        conn_s3 = {
            "conn_type": "aws",
            "login": s3.access_key,
            "password": s3.secret_key,
            "extra": {
                "endpoint_url": s3.endpoint,
                "region_name": s3.region,
                "config_kwargs": {"s3": {"addressing_style": "path"}},
            },
        }
        items.append((f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", json.dumps(conn_s3, sort_keys=True)))
        role_extra = {"role_arn": S3_ROLE_ARN, "service_config": {"sts": {"endpoint_url": s3.endpoint}}}
        conn_role = {**conn_s3, "extra": {**conn_s3["extra"], **role_extra}}
        items.append((f"AIRFLOW_CONN_{S3_ROLE_CONN_ID.upper()}", json.dumps(conn_role, sort_keys=True)))
    items.append(("TIDBOPS_PLAYGROUND_HOME", str(home)))
    # the catalog the playground's Airflow writes (SQLite in its AIRFLOW_HOME): where `tidbops info` finds it
    items.append(("TIDBOPS_CATALOG_URL", f"sqlite:///{home / 'airflow' / 'tidbops_catalog.db'}"))
    items.append(("TIDBOPS_BR_PATH", str(BR_PATH)))
    items.append(("TIDBOPS_PLAYGROUND_BIN", str(BIN_DIR)))
    return items


def playground_env(home: Path | str | None = None) -> dict[str, str]:
    """The variables of ``airflow.env`` as a dict; ``PATH`` is the current one with the bin dir in front."""
    h = playground_home(home)
    env = dict(_env_items(h, load_registry(h)))
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def env_file_text(home: Path, registry: Registry) -> str:
    lines = [
        "# Written by `tidbops playground up`; source it: . " + str(home / ENV_FILE),
        "# Holds the playground's generated passwords: keep it 0600, never commit it.",
    ]
    lines += [f"export {k}={_sh_quote(v)}" for k, v in _env_items(home, registry)]
    lines.append(f'export PATH={_sh_quote(str(BIN_DIR))}":$PATH"')
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> bool:
    """Write ``text`` with mode 0600 unless the file already holds it; return whether it was written."""
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == 0o600:
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True


# ---- up ----------------------------------------------------------------------------------------


def _forget_cluster(home: Path, name: str) -> None:
    """A cluster dir without a registry entry: its password is unknown, so start it afresh."""
    base = home / "clusters" / name
    if not base.exists():
        return
    pid = _mariadb_pid(base)
    if pid is not None:
        log.warning("cluster %s runs without a registry entry; stopping it and wiping its datadir", name)
        _kill_wait(pid)
    shutil.rmtree(base)


def _kill_wait(pid: int, timeout: float = 30.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _prepare_datadirs(home: Path, entries: Sequence[ClusterEntry]) -> None:
    """Clean up after crashes and give every stopped cluster without a datadir a fresh one.

    ``mariadb-install-db`` runs cannot overlap (their bootstrap servers share temporary file names), and
    one run costs about a second, so one template datadir is made and copied (sparse) to each cluster.
    """
    needing: list[MariaDBInstance] = []
    for entry in entries:
        inst = _instance(home, entry)
        if _mariadb_pid(inst.base) is not None:
            continue
        _clean_stale_mariadb(inst.base)
        if inst.datadir.exists() and not (inst.base / INITIALISED_MARKER).exists():
            log.info("%s: datadir never finished initialising; recreating it", entry.name)
            shutil.rmtree(inst.datadir)
        if not inst.datadir.exists():
            needing.append(inst)
    if not needing:
        return
    template = MariaDBInstance(base=home / "tmp" / "template", port=0, password="")
    shutil.rmtree(template.base, ignore_errors=True)
    try:
        template.initialise()
        for inst in needing:
            inst.base.mkdir(parents=True, exist_ok=True)
            tmp = inst.base / "data.copying"
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run(["cp", "-a", "--sparse=always", str(template.datadir), str(tmp)], check=True)
            tmp.rename(inst.datadir)
    finally:
        shutil.rmtree(template.base, ignore_errors=True)


def _start_cluster(home: Path, entry: ClusterEntry) -> None:
    inst = _instance(home, entry)
    pid = _mariadb_pid(inst.base)
    if pid is None:
        log.info("%s: starting MariaDB on 127.0.0.1:%s", entry.name, entry.sql_port)
    elif inst.pid() != pid:
        inst.pid_file.write_text(f"{pid}\n")  # found without its pid file: never start a second server
    inst.start()
    (inst.base / INITIALISED_MARKER).touch()


def _seed_one(home: Path, entry: ClusterEntry, rows: int, seed: int) -> seed_mod.SeedResult:
    conn = _instance(home, entry).connect(local_infile=True)
    try:
        (home / "tmp").mkdir(exist_ok=True)
        return seed_mod.seed_cluster(conn, entry.name, rows=rows, seed=seed, tmp_dir=home / "tmp")
    finally:
        conn.close()


def _is_seeded(home: Path, entry: ClusterEntry) -> bool:
    conn = _instance(home, entry).connect()
    try:
        return seed_mod.seed_marker(conn) is not None
    finally:
        conn.close()


def _seed_sources(home: Path, sources: Sequence[ClusterEntry], rows: int, seed: int) -> None:
    """Seed the source clusters that have no seed marker.

    Data generation is CPU-bound Python, so with several clusters to seed each one is seeded by its own
    ``python -m tidbops_playground.seed`` process (at most one per CPU at a time).
    """
    todo = [e for e in sources if not _is_seeded(home, e)]
    if not todo:
        return
    log.info("seeding %s with %s rows each", ", ".join(e.name for e in todo), rows)
    if len(todo) == 1:
        result = _seed_one(home, todo[0], rows, seed)
        log.info("%s: seeded %s rows in %.1fs", result.cluster, result.rows, result.seconds)
        return
    (home / "logs").mkdir(exist_ok=True)
    pending = list(todo)
    running: list[tuple[ClusterEntry, subprocess.Popen[bytes]]] = []
    failed: list[str] = []
    parallel = max(1, os.cpu_count() or 1)
    while pending or running:
        while pending and len(running) < parallel:
            entry = pending.pop(0)
            with open(home / "logs" / f"seed-{entry.name}.log", "wb") as logfh:
                cmd = [
                    sys.executable, "-m", "tidbops_playground.seed", "--home", str(home),
                    "--cluster", entry.name, "--rows", str(rows), "--seed", str(seed),
                ]  # fmt: skip
                running.append((entry, subprocess.Popen(cmd, stdout=logfh, stderr=subprocess.STDOUT)))
        time.sleep(0.05)
        for item in list(running):
            entry, proc = item
            if proc.poll() is None:
                continue
            running.remove(item)
            text = _tail(home / "logs" / f"seed-{entry.name}.log")
            if proc.returncode != 0:
                failed.append(f"{entry.name}: exit {proc.returncode}: {text}")
            else:
                log.info("%s: %s", entry.name, text.strip().splitlines()[-1] if text.strip() else "seeded")
    if failed:
        raise PlaygroundError("seeding failed: " + "; ".join(failed))


def _plan_registry(
    home: Path, current: Registry, clusters: Sequence[ClusterSpec], s3_port: int | None, bucket: str
) -> Registry:
    entries = dict(current.clusters)
    specs = {s.name: s for s in clusters}
    pds = {e.pd for e in entries.values()}
    for spec in clusters:
        if spec.name in entries:
            continue
        if spec.pd in pds:
            raise PlaygroundError(f"PD address {spec.pd} of {spec.name} is used by another cluster")
        _forget_cluster(home, spec.name)
        entries[spec.name] = ClusterEntry(
            name=spec.name,
            kind=spec.kind,
            pd=spec.pd,
            sql_host="127.0.0.1",
            sql_port=0,
            sql_user=SQL_USER,
            sql_password=_new_password(),
            cluster_id=_new_cluster_id(),
            tidb_version=spec.tidb_version,
            tls_ca=str(tlsgen.make_ca(home / TLS_DIR).ca) if spec.tls else "",
        )
        pds.add(spec.pd)

    taken: set[int] = set()
    running: set[str] = set()
    for name, entry in entries.items():
        if _mariadb_pid(entry.cluster_dir(home)) is not None:
            running.add(name)
            taken.add(entry.sql_port)
    s3 = current.s3
    s3_running = s3 is not None and _s3_pid(home, _port_of(s3)) is not None
    if s3 is not None and s3_running:
        taken.add(_port_of(s3))
    for name, entry in sorted(entries.items()):
        if name in running:
            continue
        preferred = entry.sql_port or (specs[name].sql_port if name in specs else None)
        port = _pick_port(preferred, taken)
        if entry.sql_port and port != entry.sql_port:
            log.warning("%s: port %s is taken; using %s", name, entry.sql_port, port)
        entries[name] = replace(entry, sql_port=port)
        taken.add(port)

    if s3 is None:
        port = _pick_port(s3_port, taken)
        s3 = S3Endpoint(
            endpoint=f"http://127.0.0.1:{port}",
            bucket=bucket,
            access_key="PG" + secrets.token_hex(9).upper(),
            secret_key=secrets.token_urlsafe(30),
            region=DEFAULT_REGION,
        )
    elif not s3_running:
        old = _port_of(s3)
        port = _pick_port(old, taken)
        s3 = replace(s3, endpoint=f"http://127.0.0.1:{port}")
    return Registry(clusters=entries, s3=s3)


def up(
    home: Path | str | None = None,
    *,
    rows: int = DEFAULT_ROWS,
    clusters: Sequence[ClusterSpec] = DEFAULT_CLUSTERS,
    seed: int = DEFAULT_SEED,
    start_daemon: bool = True,
    s3_port: int | None = DEFAULT_S3_PORT,
    bucket: str = DEFAULT_BUCKET,
) -> Registry:
    """Bring the playground up (idempotent); return its registry.

    ``start_daemon=False`` leaves the clusters quiet: no writer, advancer or GC (a running daemon is
    stopped). ``s3_port=None`` and ``ClusterSpec.sql_port=None`` pick free ports.
    """
    seed_mod.table_counts(rows)  # validates rows
    h = playground_home(home)
    h.mkdir(parents=True, exist_ok=True)
    os.chmod(h, 0o700)
    for sub in ("clusters", "logs"):
        (h / sub).mkdir(exist_ok=True)
    started = time.monotonic()
    with _manager_lock(h):
        current = load_registry(h)
        registry = _plan_registry(h, current, clusters, s3_port, bucket)
        if registry != current:
            save_registry(registry, h)

        entries = sorted(registry.clusters.values(), key=lambda e: e.name)
        s3 = registry.s3
        assert s3 is not None
        with ThreadPoolExecutor(max_workers=len(entries) + 1) as pool:
            s3_started = pool.submit(_s3_server(h, _port_of(s3)).start)
            _prepare_datadirs(h, entries)
            list(pool.map(lambda e: _start_cluster(h, e), entries))
            s3_started.result()
        _ensure_bucket(s3)
        from tidbops_playground import postgres

        postgres.ensure(h)  # the metadata DB of the playground's Airflow (make up, demo, e2e)

        sources = [e for e in entries if e.kind == "source"]
        _seed_sources(h, sources, rows, seed)
        from tidbops_playground import slowlogs

        slowlogs.ensure(h, registry)  # slow queries for the harvest DAG (once; a no-op afterwards)

        _write_private(h / ENV_FILE, env_file_text(h, registry))

        if start_daemon:
            status = daemon_mod.read_status(h) or {}
            wanted = sorted(e.name for e in sources)
            if daemon_pid(h) is not None and sorted(status.get("writers", {})) != wanted:
                log.info("daemon runs for another set of clusters; restarting it")
                stop_daemon(h)
            ensure_daemon(h)
        else:
            stop_daemon(h)
    log.info("playground up in %.1fs (home %s)", time.monotonic() - started, h)
    return registry


# ---- down --------------------------------------------------------------------------------------


def _looks_like_playground(home: Path) -> bool:
    if not home.exists():
        return False
    known = {REGISTRY_FILE, "clusters", "logs", ENV_FILE, "tmp", ".manager.lock", "faults.json", "postgres"}
    names = {p.name for p in home.iterdir()}
    return (home / REGISTRY_FILE).exists() or (home / "clusters").is_dir() or names <= known


def down(home: Path | str | None = None, *, purge: bool = False) -> None:
    """Stop Airflow, the daemon, PostgreSQL, every MariaDB server and the S3 server; ``purge`` removes the home."""
    h = playground_home(home)
    if not h.exists():
        return
    if purge and not _looks_like_playground(h):
        raise PlaygroundError(f"{h} does not look like a playground home; not removing it")
    with _manager_lock(h):
        from tidbops_playground import airflow, postgres

        stopped = airflow.stop_airflow(h)  # every Airflow of this home first: it uses what follows
        if stopped:
            log.info("stopped Airflow (%s processes)", len(stopped))
        stop_daemon(h)
        postgres.stop(h)
        bases = sorted(p for p in (h / "clusters").glob("*") if p.is_dir())

        def stop(base: Path) -> None:
            pid = _mariadb_pid(base)
            if pid is not None:
                log.info("%s: stopping MariaDB (pid %s)", base.name, pid)
                _kill_wait(pid)
            _clean_stale_mariadb(base)

        with ThreadPoolExecutor(max_workers=max(1, len(bases))) as pool:
            list(pool.map(stop, bases))
        s3 = load_registry(h).s3
        pid = _s3_pid(h, _port_of(s3) if s3 else None)
        if pid is not None:
            _kill_wait(pid, timeout=10)
        (h / "logs" / "s3.pid").unlink(missing_ok=True)
    if purge:
        shutil.rmtree(h)


# ---- status ------------------------------------------------------------------------------------


def row_counts(conn: pymysql.connections.Connection) -> dict[str, int]:  # type: ignore[type-arg]
    """Exact row counts of every user table (system schemas and the playground's own ``tidbops_*`` excluded)."""
    counts: dict[str, int] = {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 1, 2"
        )
        tables = [(s, t) for s, t in cur.fetchall() if s not in SYSTEM_SCHEMAS and not s.startswith("tidbops_")]
        for schema, table in tables:
            cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`{table}`")
            row = cur.fetchone()
            counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def status(home: Path | str | None = None, *, counts: bool = True) -> dict[str, Any]:
    """What runs, per cluster and for S3 and the daemon. Holds no secrets."""
    h = playground_home(home)
    registry = load_registry(h)
    dpid = daemon_pid(h)
    dstatus = daemon_mod.read_status(h) if dpid is not None else None
    heartbeat_age = time.time() - float(dstatus["heartbeat"]) if dstatus else None
    daemon_fresh = dpid is not None and heartbeat_age is not None and heartbeat_age < 10
    writers = (dstatus or {}).get("writers", {})
    threads = (dstatus or {}).get("threads_alive", {})

    clusters: dict[str, Any] = {}
    for name, entry in sorted(registry.clusters.items()):
        running = _mariadb_pid(entry.cluster_dir(h)) is not None
        info: dict[str, Any] = {
            "kind": entry.kind,
            "pd": entry.pd,
            "sql": f"{entry.sql_host}:{entry.sql_port}",
            "sql_user": entry.sql_user,
            "cluster_id": entry.cluster_id,
            "tidb_version": entry.tidb_version,
            "running": running,
            "seeded": None,
            "row_counts": None,
            "total_rows": None,
            "error": None,
        }
        if running:
            try:
                conn = _instance(h, entry).connect()
                try:
                    marker = seed_mod.seed_marker(conn)
                    info["seeded"] = marker is not None
                    if counts:
                        info["row_counts"] = row_counts(conn)
                        info["total_rows"] = sum(info["row_counts"].values())
                finally:
                    conn.close()
            except pymysql.err.MySQLError as exc:
                info["error"] = f"{type(exc).__name__}: {exc.args[0] if exc.args else ''}"
        if entry.kind == "source":
            w = writers.get(name, {})
            alive = bool(daemon_fresh and threads.get(f"writer-{name}") and w.get("connected"))
            paused = writer_mod.writer_paused(h, name)
            if not (daemon_fresh and threads.get(f"writer-{name}")):
                state = "stopped"
            elif paused:
                state = "paused"
            elif alive:
                state = "alive"
            else:
                state = "failing" if w.get("errors") else "connecting"
            info["writer"] = {
                "state": state,
                "alive": alive,
                "paused": paused,
                **{k: w.get(k) for k in ("tps", "transactions", "inserts", "updates", "deletes", "errors")},
                "last_error": w.get("last_error"),
            }
        clusters[name] = info

    s3: dict[str, Any] | None = None
    if registry.s3 is not None:
        s3 = {
            "endpoint": registry.s3.endpoint,
            "bucket": registry.s3.bucket,
            "region": registry.s3.region,
            "running": _s3_pid(h, _port_of(registry.s3)) is not None,
        }
    return {
        "home": str(h),
        "exists": (h / REGISTRY_FILE).exists(),
        "env_file": str(h / ENV_FILE),
        "daemon": {
            "running": dpid is not None,
            "pid": dpid,
            "heartbeat_age": None if heartbeat_age is None else round(heartbeat_age, 1),
            "writer_tps": (dstatus or {}).get("writer_tps"),
            "advancer": (dstatus or {}).get("advancer"),
            "gc": (dstatus or {}).get("gc"),
        },
        "writers_paused": (h / writer_mod.PAUSE_FILE).exists(),
        "s3": s3,
        "clusters": clusters,
    }
