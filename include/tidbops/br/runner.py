"""Run one BR process: own process group, timeout, streamed output, secrets kept out of argv.

Pure (no Airflow): the BR hook passes a line callback that writes into the task log, and keeps the
``RunningBR`` handle so ``on_kill`` can end the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tidbops.errors import TiDBOpsError

LineSink = Callable[[str, str], None]  # (stream "stdout"|"stderr", line without newline)
TAIL_LINES = 200


class BRTimeoutError(TiDBOpsError):
    """BR ran longer than its timeout; its process group was killed."""

    def __init__(self, seconds: float, stderr_tail: str) -> None:
        self.seconds = seconds
        self.stderr_tail = stderr_tail
        super().__init__(f"br did not finish within {seconds:.0f}s; its process group was killed")


@dataclass(frozen=True)
class ProcessResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr_tail: str
    seconds: float


@dataclass
class RunningBR:
    """A started BR process. ``kill()`` ends its whole process group (BR, and anything it started)."""

    process: subprocess.Popen[bytes]
    killed: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self, grace: float = 10.0) -> None:
        """SIGTERM to the group (BR cancels gracefully), then SIGKILL after ``grace`` seconds."""
        if self.process.poll() is not None:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextlib.contextmanager
def secret_file(content: str, directory: str | None = None) -> Iterator[Path]:
    """A 0600 file holding ``content`` (e.g. a crypter key) for the duration of the block, then removed."""
    fd, name = tempfile.mkstemp(prefix="tidbops-key-", dir=directory)
    path = Path(name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        yield path
    finally:
        path.unlink(missing_ok=True)


def start(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> RunningBR:
    """Start BR in its own session (process group); stdin is closed, so BR's prompts answer yes."""
    if not argv or isinstance(argv, str):
        raise TypeError("argv must be a non-empty list of arguments, never a shell string")
    full_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    return RunningBR(process)


def wait(running: RunningBR, *, timeout: float, on_line: LineSink | None = None) -> ProcessResult:
    """Stream BR's output line by line to ``on_line`` until it exits or ``timeout`` passes."""
    proc = running.process
    assert proc.stdout is not None and proc.stderr is not None
    started = time.monotonic()
    deadline = started + timeout
    stdout_lines: list[str] = []
    stderr_tail: deque[str] = deque(maxlen=TAIL_LINES)
    buffers = {"stdout": b"", "stderr": b""}
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
    selector.register(proc.stderr, selectors.EVENT_READ, "stderr")

    def emit(stream: str, raw: bytes) -> None:
        # BR redraws progress bars with \r; each redraw is a line for our purposes
        for part in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
            line = part.decode("utf-8", errors="replace")
            if not line:
                continue
            (stdout_lines.append if stream == "stdout" else stderr_tail.append)(line)
            if on_line is not None:
                on_line(stream, line)

    open_streams = 2
    while open_streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            running.kill()
            for stream, rest in buffers.items():
                emit(stream, rest)
            raise BRTimeoutError(timeout, "\n".join(stderr_tail))
        for key, _ in selector.select(timeout=min(remaining, 1.0)):
            stream = str(key.data)
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                open_streams -= 1
                emit(stream, buffers[stream])
                buffers[stream] = b""
                continue
            data = buffers[stream] + chunk
            cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
            if cut >= 0:
                emit(stream, data[: cut + 1])
                buffers[stream] = data[cut + 1 :]
            else:
                buffers[stream] = data
    selector.close()
    try:
        exit_code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        running.kill()
        raise BRTimeoutError(timeout, "\n".join(stderr_tail)) from None
    return ProcessResult(
        argv=tuple(str(a) for a in proc.args) if isinstance(proc.args, list | tuple) else (str(proc.args),),
        exit_code=exit_code,
        stdout="\n".join(stdout_lines),
        stderr_tail="\n".join(stderr_tail),
        seconds=time.monotonic() - started,
    )


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_line: LineSink | None = None,
    on_start: Callable[[RunningBR], None] | None = None,
) -> ProcessResult:
    """``start`` + ``wait``; ``on_start`` receives the handle (the operator keeps it for ``on_kill``)."""
    running = start(argv, env=env)
    if on_start is not None:
        on_start(running)
    try:
        return wait(running, timeout=timeout, on_line=on_line)
    finally:
        if running.process.poll() is None:
            running.kill()
