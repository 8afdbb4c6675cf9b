"""A private PostgreSQL server for the playground's Airflow metadata DB (not the machine's).

Uses Debian's ``postgresql`` binaries (``initdb``, ``postgres``; the newest major version found under
``/usr/lib/postgresql``). Layout in the playground home::

    postgres/data/            the cluster (initdb)
    postgres/.s.PGSQL.<port>  its unix socket (and TCP on 127.0.0.1:<port>)
    postgres/conn.json        port and password of the ``airflow`` role (0600)
    postgres/postgres.log     the server's log

PostgreSQL refuses to run as root. When we are root, ``initdb`` and ``postgres`` run in a user namespace
(``unshare --map-user``) that maps our uid to an unprivileged one: the server sees a non-root uid that owns
its data dir, the files stay root's on disk, and the playground home stays 0700 (a dedicated system user
could not even reach a data dir below a 0700 home such as pytest's temp dirs).

Each Airflow home gets its own database (``airflow`` for the playground's own, ``airflow_<hash>`` for
others such as the benchmarks'), so two Airflows of one playground never share metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_DIR = "postgres"
CONN_FILE = "conn.json"
DEFAULT_PORT = 14950
ROLE = "airflow"
#: the uid/gid the server sees when we are root (``nobody``: it exists on every Debian system)
_UNPRIVILEGED = 65534


class PostgresError(RuntimeError):
    """The private PostgreSQL server could not be set up, started or stopped."""


def bin_dir() -> Path:
    """Debian's newest PostgreSQL ``bin`` directory (``/usr/lib/postgresql/<major>/bin``)."""
    override = os.environ.get("TIDBOPS_PG_BIN")
    if override:
        return Path(override)
    found = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    which = shutil.which("postgres")
    if which:
        return Path(which).parent
    raise PostgresError(
        "PostgreSQL not found: install Debian's postgresql (apt-get install postgresql); "
        "`make system-deps` does this when run as root"
    )


def _as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` as the server must run it: through a user namespace when we are root."""
    if os.geteuid() != 0:
        return cmd
    with contextlib.suppress(KeyError):
        pwd.getpwuid(_UNPRIVILEGED)  # initdb looks its own uid up
        return ["unshare", f"--map-user={_UNPRIVILEGED}", f"--map-group={_UNPRIVILEGED}", *cmd]
    raise PostgresError(f"no user with uid {_UNPRIVILEGED} (nobody) to run PostgreSQL as")


def database_for(airflow_home: Path, default_home: Path) -> str:
    """The database of one Airflow home: ``airflow`` for the playground's own, else ``airflow_<hash>``."""
    if airflow_home.resolve() == default_home.resolve():
        return "airflow"
    return "airflow_" + hashlib.sha256(str(airflow_home.resolve()).encode()).hexdigest()[:12]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PostgresInstance:
    base: Path
    port: int
    password: str
    user: str = ROLE

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.base

    def url(self, database: str = "airflow") -> str:
        """The SQLAlchemy URL (psycopg2, TCP on loopback). Holds the password: env only, never argv."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def pid(self) -> int | None:
        """The postmaster's pid (from ``postmaster.pid``, checked against the process's command line)."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if not any(part.endswith(b"postgres") for part in cmd[:4]) or str(self.datadir).encode() not in cmd:
            return None
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        return None if state == "Z" else pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def initialise(self) -> None:
        """initdb once (a data dir without ``PG_VERSION`` is a crashed initdb: made again)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o700)
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        pwfile = self.base / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        try:
            cmd = [
                str(bin_dir() / "initdb"), "-D", str(self.datadir), "-U", self.user, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions",
            ]  # fmt: skip
            proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, check=False)
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise PostgresError(f"initdb failed for {self.datadir}: {(proc.stderr or proc.stdout)[-2000:]}")

    def start(self, timeout: float = 60.0) -> None:
        """Start the server unless it runs, and wait until it accepts connections."""
        if self.is_running():
            self.wait_ready(timeout)
            return
        self.initialise()
        (self.datadir / "postmaster.pid").unlink(missing_ok=True)  # a stale one (checked above)
        cmd = [
            str(bin_dir() / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", "max_connections=300", "-c", "shared_buffers=64MB", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        with open(self.log_file, "ab") as log, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(
                _as_server_user(cmd), stdin=devnull, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready(timeout, proc)

    def connect(self, database: str = "postgres") -> object:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname=database, connect_timeout=2
        )

    def wait_ready(self, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                break
            try:
                conn = self.connect()
                conn.close()  # type: ignore[attr-defined]
                return
            except psycopg2.OperationalError as exc:
                last = exc
            time.sleep(0.2)
        tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise PostgresError(f"PostgreSQL on port {self.port} not ready after {timeout}s: {last}\n{tail}")

    def ensure_database(self, name: str) -> None:
        """Create database ``name`` owned by our role unless it exists."""
        conn = self.connect()
        try:
            conn.autocommit = True  # type: ignore[attr-defined]
            with conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()  # type: ignore[attr-defined]

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected; SIGTERM would wait for them), then SIGKILL."""
        pid = self.pid()
        if pid is None:
            return
        for sig, grace in ((signal.SIGINT, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if self.pid() is None:
                    return
                time.sleep(0.1)


def instance(home: Path, port: int | None = DEFAULT_PORT) -> PostgresInstance:
    """The playground's PostgreSQL (its port and password made once and kept in ``postgres/conn.json``)."""
    base = home / PG_DIR
    path = base / CONN_FILE
    try:
        saved = json.loads(path.read_text())
        return PostgresInstance(base=base, port=int(saved["port"]), password=str(saved["password"]))
    except (OSError, ValueError, KeyError):
        pass
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    chosen = port if port and _port_free(port) else _free_port()
    inst = PostgresInstance(base=base, port=chosen, password=secrets.token_urlsafe(18))
    tmp = path.with_name(f".{CONN_FILE}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"port": inst.port, "password": inst.password}, fh)
    os.replace(tmp, path)
    return inst


def configured(home: Path) -> PostgresInstance | None:
    """The playground's PostgreSQL if ``up`` made one (without creating anything)."""
    if not (home / PG_DIR / CONN_FILE).exists():
        return None
    return instance(home)


def ensure(home: Path, port: int | None = DEFAULT_PORT) -> PostgresInstance:
    """Start the playground's PostgreSQL unless it runs (a port taken since is swapped for a free one)."""
    inst = instance(home, port)
    if not inst.is_running() and not _port_free(inst.port):
        moved = PostgresInstance(base=inst.base, port=_free_port(), password=inst.password)
        (inst.base / CONN_FILE).write_text(json.dumps({"port": moved.port, "password": moved.password}))
        inst = moved
    inst.start()
    return inst


def stop(home: Path) -> None:
    inst = configured(home)
    if inst is not None:
        inst.stop()
