"""Run one BR process: own process group, timeout, streamed output, secrets kept out of argv.

Pure (no Airflow). ``LocalRunner`` is the ``local`` runner of the BR seam (``tidbops.br.seam``), and the
only code that starts a process (``tests/unit/test_br_seam.py``): the BR hook passes a line callback that
writes into the task log, and the runner keeps the ``RunningBR`` handle so ``on_kill`` can end the whole
process group.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidbops.br.seam import BRRun, BRRunner, LineSink
from tidbops.errors import TiDBOpsError

if TYPE_CHECKING:
    from tidbops.config import ClusterConfig

__all__ = ["BRSession", "BRTimeoutError", "LineSink", "LocalRunner", "ProcessResult", "RunningBR", "pd_session"]
TAIL_LINES = 200


@dataclass(frozen=True)
class BRSession:
    """What one BR run needs besides its argv: the cluster (storage options resolved), the environment
    (credentials), the 0600 crypter key file, the log file, and the secrets to redact from its output.
    ``tidbops_airflow.hooks.br.BRHook.session`` makes one from Airflow connections (with the cluster's BR
    ``runner``, for core code that runs BR itself: ``br debug``); the CLI makes its own (no runner: local)."""

    cluster: ClusterConfig
    env: dict[str, str]
    key_file: str | None
    log_file: str
    secrets: tuple[str, ...]
    runner: BRRunner | None = field(default=None, compare=False, repr=False)


def runner_of(session: object, given: BRRunner | None = None) -> BRRunner:
    """``given``, else the session's runner, else a fresh ``LocalRunner``."""
    if given is not None:
        return given
    found = getattr(session, "runner", None)
    return found if isinstance(found, BRRunner) else LocalRunner()


def as_session(session: Any) -> BRSession:
    """A ``BRSession`` of anything shaped like one (core code takes ``BRSessionLike`` protocols)."""
    if isinstance(session, BRSession):
        return session
    return BRSession(
        cluster=session.cluster,
        env=dict(session.env),
        key_file=session.key_file,
        log_file=session.log_file,
        secrets=tuple(session.secrets),
    )


def pd_session(cluster: ClusterConfig, log_file: str = "") -> BRSession:
    """A session for BR commands that need no storage credentials nor crypter key (``br -V``,
    ``br log status``): nothing in its environment, nothing to redact."""
    return BRSession(cluster=cluster, env={}, key_file=None, log_file=log_file, secrets=())


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


class PrivateDirError(TiDBOpsError):
    """A directory we were asked to write BR's logs (or keys) into is not ours alone."""


def private_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """A directory only this user can enter, for BR's log files.

    ``path`` (or ``$TIDBOPS_BR_LOG_DIR``) is created 0700 when missing; one that exists must be a real
    directory (not a symlink), owned by us and not writable by group or others, or ``PrivateDirError``
    says why. Without either, ``<tmp>/tidbops-br-<uid>`` is used on the same terms, and a fresh
    ``mkdtemp`` directory when somebody else got there first.
    """
    chosen = path or os.environ.get("TIDBOPS_BR_LOG_DIR")
    if chosen:
        return _own_dir(Path(chosen))
    shared = Path(tempfile.gettempdir()) / f"tidbops-br-{os.getuid()}"
    try:
        return _own_dir(shared)
    except PrivateDirError:  # planted by another user: do not use it, do not touch it
        return Path(tempfile.mkdtemp(prefix=f"tidbops-br-{os.getuid()}-"))


def _own_dir(path: Path) -> Path:
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise PrivateDirError(f"{path}: not a directory we can use for BR logs ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if st.st_uid != os.getuid():
        raise PrivateDirError(f"{path}: owned by uid {st.st_uid}, not by us ({os.getuid()}); BR logs go elsewhere")
    if st.st_mode & 0o022:
        raise PrivateDirError(f"{path}: writable by group or others (mode {st.st_mode & 0o777:o}); use chmod 700")
    return path


def log_file(cluster: str, what: str, directory: str | os.PathLike[str] | None = None) -> str:
    """A new, empty 0600 file for one BR run's ``--log-file``, with a name nobody can predict, in
    ``private_dir(directory)``; kept after the run for diagnosis."""
    fd, name = tempfile.mkstemp(prefix=f"br-{cluster}-{what}-", suffix=".log", dir=private_dir(directory))
    os.close(fd)
    return name


@contextlib.contextmanager
def passing_log_file(cluster: str, what: str, directory: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """``log_file`` for a read that runs often (``br log status`` polls): removed when the block ends
    normally, kept when it raises (the log is then the evidence)."""
    name = log_file(cluster, what, directory)
    yield name
    Path(name).unlink(missing_ok=True)


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


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` (Linux) that has the kernel SIGKILL the child when the thread that started it dies.

    BR runs in a session of its own (so a timeout can kill its whole group), which also means nothing ends
    it when the task process running it is killed outright (SIGKILL, the OOM killer, a lost worker): the
    task's retry would then run a second BR on the cluster while the orphan still writes (the fault
    matrix's "worker killed mid BR task", #18). ``prctl`` is looked up here, in the parent, so the child
    only makes the call; if the parent is already gone by then, the child ends itself.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call: nobody would be told
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def start(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None) -> RunningBR:
    """Start BR in its own session (process group); stdin is closed, so BR's prompts answer yes. On Linux BR
    is killed with the thread that started it (``_die_with_parent``): it never outlives a killed task."""
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
        preexec_fn=_die_with_parent(),  # only a prctl call between fork and exec
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


class LocalRunner:
    """The ``local`` runner: BR as a subprocess of this worker, in its own process group, killed with the
    task (``kill``) or on timeout (``BRTimeoutError``). One instance per hook (it holds the running BR)."""

    kind = "local"

    def __init__(self) -> None:
        self._running: RunningBR | None = None

    def run(
        self,
        argv: Sequence[str],
        session: BRSession,
        *,
        timeout: float,
        on_line: LineSink | None = None,
        on_start: Callable[[object], None] | None = None,
    ) -> BRRun:
        def started(running: RunningBR) -> None:
            self._running = running
            if on_start is not None:
                on_start(running)

        began = time.monotonic()
        try:
            proc = run(argv, timeout=timeout, env=session.env, on_line=on_line, on_start=started)
        finally:
            self._running = None
        return BRRun(
            argv=tuple(str(a) for a in argv),
            exit_code=proc.exit_code,
            stdout=proc.stdout,
            stderr_tail=proc.stderr_tail,
            seconds=time.monotonic() - began,
            where="local",
        )

    def kill(self) -> None:
        """End the running BR's process group (a task kill)."""
        running = self._running
        if running is not None:
            running.kill()
