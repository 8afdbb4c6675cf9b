"""The playground daemon: one background process per playground home.

``python -m tidbops_playground.daemon --home HOME`` runs, until SIGTERM or SIGINT:

* a :class:`~tidbops_playground.writer.Writer` per source cluster (``TIDBOPS_PLAYGROUND_WRITER_TPS``
  transactions per second each, default 20; 0 disables the writers);
* the log-backup advancer, ``tidbops_playground.br.log.advance(home, cluster)`` for every cluster every
  ``TIDBOPS_PLAYGROUND_ADVANCE_INTERVAL`` seconds (default 3);
* the GC worker, ``tidbops_playground.br.gc.run_gc(home, cluster)`` for every cluster every
  ``TIDBOPS_PLAYGROUND_GC_INTERVAL`` seconds (default 10).

The br emulator is imported lazily: while it is missing the daemon logs one warning and keeps trying.
A cluster whose MariaDB is down is logged and retried; nothing ends the daemon but a signal or the
playground home losing its registry (``down --purge``).

Files in the home: ``daemon.pid``, ``daemon.lock`` (held with ``flock`` for the daemon's lifetime, so a
second daemon for the same home exits at once and liveness survives pid reuse), ``daemon.status.json``
(heartbeat and per-writer counters, rewritten every second, no secrets) and ``logs/daemon.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pymysql

from tidbops_playground.registry import REGISTRY_FILE, ClusterEntry, Registry, load_registry
from tidbops_playground.writer import DEFAULT_TPS, Writer

PID_FILE = "daemon.pid"
LOCK_FILE = "daemon.lock"
STATUS_FILE = "daemon.status.json"
LOG_FILE = "logs/daemon.log"

ENV_TPS = "TIDBOPS_PLAYGROUND_WRITER_TPS"
ENV_ADVANCE = "TIDBOPS_PLAYGROUND_ADVANCE_INTERVAL"
ENV_GC = "TIDBOPS_PLAYGROUND_GC_INTERVAL"
DEFAULT_ADVANCE_INTERVAL = 3.0
DEFAULT_GC_INTERVAL = 10.0

log = logging.getLogger("tidbops_playground.daemon")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        log.warning("ignoring %s=%r: not a number", name, raw)
        return default
    return max(0.0, value)


def lock_held(home: Path) -> bool:
    """Whether a daemon holds the lock for ``home`` (that is: is alive)."""
    path = home / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def read_status(home: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((home / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data


class _RegistryView:
    """The registry, re-read when the file changes (``up`` may move a cluster to another port)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._mtime: float | None = None
        self._registry = Registry()
        self._lock = threading.Lock()

    def get(self) -> Registry:
        with self._lock:
            try:
                mtime = (self.home / REGISTRY_FILE).stat().st_mtime
            except OSError:
                return self._registry
            if mtime != self._mtime:
                self._registry = load_registry(self.home)
                self._mtime = mtime
            return self._registry

    def exists(self) -> bool:
        return (self.home / REGISTRY_FILE).exists()


def _connector(view: _RegistryView, name: str) -> Callable[[], pymysql.connections.Connection]:  # type: ignore[type-arg]
    def connect() -> pymysql.connections.Connection:  # type: ignore[type-arg]
        entry: ClusterEntry | None = view.get().clusters.get(name)
        if entry is None:
            raise pymysql.err.OperationalError(2003, f"cluster {name} is not in the registry")
        return pymysql.connect(
            host=entry.sql_host,
            port=entry.sql_port,
            user=entry.sql_user,
            password=entry.sql_password,
            connect_timeout=2,
            read_timeout=15,
            write_timeout=15,
            charset="utf8mb4",
            autocommit=True,
            ssl=entry.sql_ssl(),
        )

    return connect


class _BrTask:
    """Calls ``tidbops_playground.br.<module>.<function>(home, cluster)`` for every cluster periodically."""

    def __init__(self, view: _RegistryView, module: str, function: str, interval: float) -> None:
        self.view = view
        self.module = module
        self.function = function
        self.interval = interval
        self.missing_logged = False
        self.last_run: float | None = None
        self.runs = 0
        self.errors = 0
        self.available = False
        self.results: dict[str, Any] = {}
        self._last_logged: dict[str, float] = {}

    def _resolve(self) -> Callable[..., Any] | None:
        try:
            mod: ModuleType = importlib.import_module(self.module)
            fn: Callable[..., Any] = getattr(mod, self.function)
        except (ImportError, AttributeError) as exc:
            if not self.missing_logged:
                log.warning("%s.%s not available (%s); skipping until it appears", self.module, self.function, exc)
                self.missing_logged = True
            self.available = False
            return None
        if not self.available:
            log.info("%s.%s available", self.module, self.function)
        self.available = True
        return fn

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            fn = self._resolve()
            if fn is not None:
                for name in sorted(self.view.get().clusters):
                    if stop.is_set():
                        break
                    try:
                        self.results[name] = fn(self.view.home, name)
                    except Exception as exc:
                        self.errors += 1
                        self.results[name] = f"error: {type(exc).__name__}"
                        now = time.monotonic()
                        key = f"{name}:{type(exc).__name__}"
                        if now - self._last_logged.get(key, -1e9) > 30:
                            self._last_logged[key] = now
                            log.warning("%s(%s) failed: %s: %s", self.function, name, type(exc).__name__, exc)
                self.runs += 1
                self.last_run = time.time()
            stop.wait(max(0.1, self.interval - (time.monotonic() - started)))

    def to_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "interval": self.interval,
            "runs": self.runs,
            "errors": self.errors,
            "last_run": self.last_run,
            "results": {k: v if isinstance(v, int | str | None) else str(v) for k, v in self.results.items()},
        }


def _write_status(home: Path, payload: dict[str, Any]) -> None:
    path = home / STATUS_FILE
    tmp = path.with_name(f".{STATUS_FILE}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def run(home: Path) -> int:
    """The daemon's main loop; returns the exit code."""
    home.mkdir(parents=True, exist_ok=True)
    lock_fh = open(home / LOCK_FILE, "a+")
    try:
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another daemon holds %s; exiting", home / LOCK_FILE)
        return 0
    (home / PID_FILE).write_text(str(os.getpid()))

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    view = _RegistryView(home)
    registry = view.get()
    tps = env_float(ENV_TPS, DEFAULT_TPS)
    advance_interval = env_float(ENV_ADVANCE, DEFAULT_ADVANCE_INTERVAL) or DEFAULT_ADVANCE_INTERVAL
    gc_interval = env_float(ENV_GC, DEFAULT_GC_INTERVAL) or DEFAULT_GC_INTERVAL
    started_at = time.time()
    log.info(
        "daemon %s started for %s: clusters=%s writer_tps=%s advance=%ss gc=%ss",
        os.getpid(), home, sorted(registry.clusters), tps, advance_interval, gc_interval,
    )  # fmt: skip

    writers = [
        Writer(home, name, _connector(view, name), tps=tps, log=log.warning)
        for name, entry in sorted(registry.clusters.items())
        if entry.kind == "source"
    ]
    tasks = {
        "advancer": _BrTask(view, "tidbops_playground.br.log", "advance", advance_interval),
        "gc": _BrTask(view, "tidbops_playground.br.gc", "run_gc", gc_interval),
    }
    threads = [threading.Thread(target=w.run, args=(stop,), name=f"writer-{w.cluster}", daemon=True) for w in writers]
    threads += [threading.Thread(target=t.run, args=(stop,), name=n, daemon=True) for n, t in tasks.items()]
    for t in threads:
        t.start()

    def status() -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started_at": started_at,
            "heartbeat": time.time(),
            "writer_tps": tps,
            "writers": {w.cluster: w.stats.to_json() for w in writers},
            "threads_alive": {t.name: t.is_alive() for t in threads},
            **{name: task.to_json() for name, task in tasks.items()},
        }

    while not stop.is_set():
        try:
            _write_status(home, status())
        except OSError as exc:
            log.warning("cannot write status: %s", exc)
        if not view.exists():
            log.warning("registry %s is gone; exiting", home / REGISTRY_FILE)
            stop.set()
            break
        stop.wait(1.0)

    for t in threads:
        t.join(timeout=5)
    with contextlib.suppress(OSError):
        _write_status(home, {**status(), "stopped": True})
    with contextlib.suppress(OSError):
        if (home / PID_FILE).read_text().strip() == str(os.getpid()):
            (home / PID_FILE).unlink()
    log.info("daemon %s stopped", os.getpid())
    fcntl.flock(lock_fh, fcntl.LOCK_UN)
    lock_fh.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tidbops_playground.daemon", description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, help="the playground home")
    args = parser.parse_args(argv)
    home = Path(args.home).expanduser().resolve()
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(threadName)s %(message)s",
        stream=sys.stderr,
    )
    return run(home)


if __name__ == "__main__":
    sys.exit(main())
