"""A real S3 endpoint on loopback: moto in server mode, as a separate process.

Objects live in the server's memory, so they last as long as the process does; ``tidbops playground
down`` ends it. Clients use it exactly like MinIO: an endpoint URL, path-style addressing, access keys.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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


class S3Proxy:
    """A TCP proxy in front of the S3 server whose behaviour a test switches (the fault matrix's S3 faults).

    Modes: ``pass`` (forward), ``hang`` (a blackhole: connections are accepted and never answered, the way a
    cut-off network looks to a client whose SYN reached a middlebox; nothing is refused), ``slow`` (each
    answer of the server is held ``delay`` seconds before it is forwarded), ``refuse`` (a stopped server:
    the listening socket is closed, so a connection is refused, and open connections are cut; leaving it
    listens on the same port again). Leaving ``hang`` closes the connections it held. Runs in threads of the
    caller's process; ``close`` stops it.
    """

    MODES = ("pass", "hang", "slow", "refuse")

    def __init__(self, upstream_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket
        import threading

        self.upstream = (host, upstream_port)
        self._mode = "pass"
        self.delay = 0.0
        self._lock = threading.Lock()
        self._held: list[socket.socket] = []
        self._active: set[socket.socket] = set()
        self._closed = False
        self.host, self.port = host, port
        self._listen()

    def _listen(self) -> None:
        import socket
        import threading

        self._listener = socket.create_server((self.host, self.port), reuse_port=False)
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, args=(self._listener,), name="s3-proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode {mode!r}: one of {', '.join(self.MODES)}")
        with self._lock:
            was, self._mode, self.delay = self._mode, mode, delay
            held, self._held = (self._held, []) if mode != "hang" else ([], self._held)
            if mode == "refuse":
                held += list(self._active)
        if mode == "refuse" and was != "refuse":
            with contextlib.suppress(OSError):  # shutdown wakes the accept() in flight; close alone would not
                self._listener.shutdown(2)
            with contextlib.suppress(OSError):
                self._listener.close()
        for sock in held:
            with contextlib.suppress(OSError):
                sock.shutdown(2)  # SHUT_RDWR: the peer sees the connection end, as when a server stops
            with contextlib.suppress(OSError):
                sock.close()
        if was == "refuse" and mode != "refuse" and not self._closed:
            self._listen()

    def close(self) -> None:
        self._closed = True
        self.set_mode("pass")
        with contextlib.suppress(OSError):
            self._listener.shutdown(2)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self, listener: Any) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._mode == "hang":
                    self._held.append(client)
                    continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: Any) -> None:
        import socket
        import threading

        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        with self._lock:
            self._active.add(client)
        upstream.settimeout(None)
        pending = threading.Event()  # the client sent something the server has not answered yet

        def pump(src: socket.socket, dst: socket.socket, answers: bool) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    while self._mode == "hang" and not self._closed:  # open connections stall too
                        time.sleep(0.1)
                    if answers:
                        if pending.is_set() and self._mode == "slow" and self.delay > 0:
                            time.sleep(self.delay)
                        pending.clear()
                    else:
                        pending.set()
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        up = threading.Thread(target=pump, args=(client, upstream, False), daemon=True)
        up.start()
        pump(upstream, client, True)
        up.join(timeout=5)
        with self._lock:
            self._active.discard(client)
        client.close()
        upstream.close()
