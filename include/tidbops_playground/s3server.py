"""A real S3 endpoint on loopback: moto in server mode, as a separate process.

Objects live in the server's memory, so they last as long as the process does; ``tidbops playground
down`` ends it. Clients use it exactly like MinIO: an endpoint URL, path-style addressing, access keys.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


class S3ServerError(RuntimeError):
    """The local S3 server could not be started."""


@dataclass(frozen=True)
class S3Server:
    base: Path  # holds s3.pid and s3.log
    port: int
    host: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.base / "s3.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "s3.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    @staticmethod
    def _running(pid: int) -> bool:
        """Alive and not a zombie (an exited child we have not reaped still answers kill 0)."""
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/", timeout=1):  # noqa: S310 (loopback, our own)
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the server is up
        except OSError:
            return False

    def start(self, timeout: float = 30.0) -> None:
        if self.pid() is not None and self.answers():
            return
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise S3ServerError(f"moto server exited with {proc.returncode}; see {self.log_file}")
            if self.answers():
                return
            time.sleep(0.2)
        raise S3ServerError(f"S3 server on {self.endpoint} not answering after {timeout}s; see {self.log_file}")

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            # moto's server ignores SIGTERM; SIGINT ends it cleanly, SIGKILL if it lingers
            for sig, wait_s in ((signal.SIGINT, 2.0), (signal.SIGKILL, 5.0)):
                try:
                    os.kill(pid, sig)
                except OSError:
                    break
                deadline = time.monotonic() + wait_s
                while time.monotonic() < deadline and self.pid() is not None and self._running(pid):
                    time.sleep(0.05)
                if not self._running(pid):
                    break
        self.pid_file.unlink(missing_ok=True)
