"""The playground starts and stops cleanly (#18): ``make up`` twice is safe, Ctrl-C (SIGINT) and
``playground down`` stop every process it started, Airflow and its PostgreSQL included, within seconds.

What ``make up`` runs: ``tidbops playground up`` (``manager.up``) then ``python -m tidbops_playground.airflow run``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.servers import free_port
from tidbops_playground import airflow, manager, postgres
from tidbops_playground.registry import load_registry

pytestmark = pytest.mark.playground

#: seconds a stop may take: SIGINT to standalone, then SIGTERM, then SIGKILL, 8 s apart at most
STOP_WITHIN = 30.0
START_TIMEOUT = 420.0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _everything(home: Path) -> dict[str, int]:
    """Every process the playground and its Airflow run, by name."""
    reg = load_registry(home)
    found: dict[str, int | None] = {n: manager._mariadb_pid(e.cluster_dir(home)) for n, e in reg.clusters.items()}
    assert reg.s3 is not None
    found["s3"] = manager._s3_pid(home, manager._port_of(reg.s3))
    found["daemon"] = manager.daemon_pid(home)
    pg = postgres.configured(home)
    found["postgres"] = pg.pid() if pg else None
    for pid in airflow.airflow_processes(home):
        found[f"airflow:{pid}"] = pid
    return {k: v for k, v in found.items() if v is not None}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    h = tmp_path_factory.mktemp("startstop")
    clusters = [manager.ClusterSpec(name="dev", kind="source", pd="127.0.0.1:23791")]
    manager.up(h, rows=2000, clusters=clusters, s3_port=None)
    try:
        yield h
    finally:
        manager.down(h)


def _run_airflow(home: Path, port: int) -> subprocess.Popen[str]:
    """``make up``'s second step, as make runs it."""
    env = {
        **os.environ,
        "TIDBOPS_PLAYGROUND_HOME": str(home),
        "TIDBOPS_AIRFLOW_PORT": str(port),
        "TIDBOPS_AIRFLOW_START_TIMEOUT": str(START_TIMEOUT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tidbops_playground.airflow", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_up(proc: subprocess.Popen[str], home: Path) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if line.startswith("Airflow is up"):
            return
    log = (home / "airflow" / "standalone.log").read_text(errors="replace")[-3000:]
    pytest.fail(f"Airflow did not come up: {''.join(seen)[-2000:]}\n{log}")


def _stopped_within(pids: dict[str, int], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [name for name, pid in pids.items() if _alive(pid)]
        if not left:
            return []
        time.sleep(0.2)
    return [f"{name} (pid {pid})" for name, pid in pids.items() if _alive(pid)]


def test_up_twice_is_safe_and_keeps_every_process(home: Path) -> None:
    before = _everything(home)
    assert {"dev", "s3", "daemon", "postgres"} <= set(before)
    manager.up(home, rows=2000, clusters=[manager.ClusterSpec(name="dev", kind="source", pd="127.0.0.1:23791")])
    assert _everything(home) == before


def test_ctrl_c_stops_a_running_airflow_within_seconds_and_make_up_twice_starts_one(home: Path) -> None:
    port = free_port()
    first = _run_airflow(home, port)
    try:
        _wait_up(first, home)
        ours = {f"airflow:{p}": p for p in airflow.airflow_processes(home)}
        names = {" ".join(Path(f"/proc/{p}/cmdline").read_text().split("\0")[:3]) for p in ours.values()}
        assert any("scheduler" in n for n in names) and any("standalone" in n for n in names), names
        # `make up` again: the second run finds this home's Airflow and leaves it be
        second = _run_airflow(home, free_port())
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0 and "already runs" in out, out
        assert set(airflow.airflow_processes(home)) >= set(ours.values())
        assert _listening(port)

        started = time.monotonic()
        first.send_signal(signal.SIGINT)  # Ctrl-C in make's terminal
        first.wait(timeout=STOP_WITHIN + 30)
        left = _stopped_within(ours, STOP_WITHIN - (time.monotonic() - started))
        assert not left, f"still running {time.monotonic() - started:.0f}s after Ctrl-C: {left}"
        assert not _listening(port)
        # the playground itself keeps running (Ctrl-C stops only Airflow)
        assert {"dev", "s3", "daemon", "postgres"} <= set(_everything(home))
    finally:
        if first.poll() is None:
            first.kill()
        airflow.stop_airflow(home)


def _start_components(home: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """``make up``'s Airflow, until its scheduler runs (not yet healthy): its processes by name."""
    proc = _run_airflow(home, free_port())
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        family = {f"airflow:{p}": p for p in airflow.airflow_processes(home)}
        if any("scheduler" in Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in family.values()):
            return proc, family
        time.sleep(0.5)
    proc.kill()
    pytest.fail("Airflow never started its scheduler")


def test_ctrl_c_while_airflow_starts_leaves_nothing_behind(home: Path) -> None:
    proc, family = _start_components(home)
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=STOP_WITHIN + 30)
        assert not _stopped_within(family, STOP_WITHIN)
        assert airflow.airflow_processes(home) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        airflow.stop_airflow(home)


def test_playground_down_stops_everything_airflow_included(home: Path) -> None:
    """The first `make up` of #18: its wrapper died while Airflow started (a crash creating pools, a closed
    terminal, kill -9), leaving Airflow running with nothing to stop it; `playground down` stops it."""
    proc, _ = _start_components(home)
    try:
        proc.kill()
        proc.wait()
        everything = _everything(home)
        assert any(k.startswith("airflow:") for k in everything)
        ports = [postgres.instance(home).port, *[e.sql_port for e in load_registry(home).clusters.values()]]

        started = time.monotonic()
        manager.down(home)
        took = time.monotonic() - started
        left = _stopped_within(everything, 5)
        assert not left, f"still running after down: {left}"
        assert took < STOP_WITHIN + 15, f"down took {took:.0f}s"
        assert not [p for p in ports if _listening(p)]
        assert airflow.airflow_processes(home) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        airflow.stop_airflow(home)
