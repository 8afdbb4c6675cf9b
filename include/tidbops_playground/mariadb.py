"""Private MariaDB servers: one per emulated cluster, own datadir, own loopback port, never the machine's.

Uses Debian's ``mariadb-server`` binaries (``mariadbd``, ``mariadb-install-db``). The server reports
``VERSION() = 8.0.11-TiDB-<version>`` (``--version=``) so that code reading the version sees what TiDB
returns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from tidbops_playground.tlsgen import TLSFiles


class MariaDBError(RuntimeError):
    """A private MariaDB server could not be set up, started or stopped."""


def find_binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if not found:
        raise MariaDBError(
            f"{name} not found: install Debian's mariadb-server (apt-get install mariadb-server); "
            "`make test` does this when run as root"
        )
    return found


@dataclass(frozen=True)
class MariaDBInstance:
    """One private server. ``base`` holds ``data/``, ``mariadb.sock``, ``mariadb.pid``, ``mariadb.err``."""

    base: Path
    port: int
    password: str
    user: str = "root"
    version_string: str = "8.0.11-TiDB-v8.5.1"
    buffer_pool: str = "128M"
    tls: TLSFiles | None = None  # serve TLS with these PEMs and refuse plain TCP (require_secure_transport)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "mariadb.sock"

    @property
    def pid_file(self) -> Path:
        return self.base / "mariadb.pid"

    @property
    def error_log(self) -> Path:
        return self.base / "mariadb.err"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def initialise(self) -> None:
        """Create the datadir (idempotent: an existing datadir with a mysql schema is kept)."""
        if (self.datadir / "mysql").is_dir():
            return
        self.base.mkdir(parents=True, exist_ok=True)
        if self.datadir.exists():
            shutil.rmtree(self.datadir)  # a half-initialised datadir from a crash
        cmd = [
            find_binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise MariaDBError(f"mariadb-install-db failed for {self.datadir}: {proc.stderr[-2000:]}")

    def start(self, timeout: float = 60.0) -> None:
        """Start the server if it is not running and wait until it answers; set the root password once."""
        if self.is_running():
            self.wait_ready(timeout)
            return
        self.initialise()
        for stale in (self.socket, self.pid_file):
            stale.unlink(missing_ok=True)
        cmd = [
            find_binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--version={self.version_string}",
            f"--innodb-buffer-pool-size={self.buffer_pool}",
            "--innodb-log-file-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-log-bin",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_bin",
            "--default-time-zone=+00:00",
            "--max-connections=300",
            "--local-infile=1",
            "--explicit-defaults-for-timestamp=1",
        ]
        if self.tls is not None:
            cmd += [
                f"--ssl-ca={self.tls.ca}",
                f"--ssl-cert={self.tls.server_cert}",
                f"--ssl-key={self.tls.server_key}",
                "--require-secure-transport=ON",  # the unix socket still counts as secure (first-start setup)
            ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        with open(os.devnull, "wb") as devnull:
            subprocess.Popen(cmd, stdout=devnull, stderr=devnull, start_new_session=True)
        self.wait_ready(timeout)

    def _root_over_socket(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(unix_socket=str(self.socket), user="root", password="", connect_timeout=2)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                conn = self.connect(database=None)
                conn.close()
                return
            except pymysql.err.OperationalError as exc:
                last = exc
                if exc.args and exc.args[0] == 1045 and self.socket.exists():
                    self._set_password()
            except OSError as exc:
                last = exc
            time.sleep(0.2)
        tail = self.error_log.read_text(errors="replace")[-2000:] if self.error_log.exists() else ""
        raise MariaDBError(f"MariaDB on port {self.port} not ready after {timeout}s: {last}\n{tail}")

    def _set_password(self) -> None:
        """First start: root has no password over the socket; create the TCP account with ours."""
        try:
            conn = self._root_over_socket()
        except pymysql.err.OperationalError:
            return
        with conn, conn.cursor() as cur:
            for host in ("127.0.0.1", "localhost"):
                account = f"'{self.user}'@'{host}'"
                cur.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY %s", (self.password,))
                cur.execute(f"ALTER USER {account} IDENTIFIED BY %s", (self.password,))
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION")
            cur.execute("FLUSH PRIVILEGES")

    def connect(self, database: str | None = None, **kwargs: object) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            connect_timeout=2,
            charset="utf8mb4",
            autocommit=True,
            ssl={"ca": str(self.tls.ca)} if self.tls is not None else None,
            **kwargs,  # type: ignore[arg-type]
        )

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
