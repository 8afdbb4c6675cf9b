"""The BR process runner, against small stand-in programs (what it runs is not BR's business here)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tidbops.br import runner

pytestmark = pytest.mark.unit


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake_br.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_streams_lines_and_exit_code(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "import sys\n"
        "sys.stderr.write('Detail BR log in /tmp/br.log \\n'); sys.stderr.flush()\n"
        "sys.stdout.write('Full Backup <--->  10.00%\\rFull Backup <--->  50.00%\\r')\n"
        "print('[INFO] [\"Full Backup success summary\"] [total-ranges=1]')\n"
        "sys.exit(0)\n",
    )
    seen: list[tuple[str, str]] = []
    result = runner.run(argv, timeout=30, on_line=lambda s, line: seen.append((s, line)))
    assert result.exit_code == 0
    assert ("stderr", "Detail BR log in /tmp/br.log ") in seen
    assert ("stdout", "Full Backup <--->  50.00%") in seen, "progress redraws become lines"
    assert result.stdout.endswith('["Full Backup success summary"] [total-ranges=1]')


def test_failure_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        "import sys\nprint('Error: boom [BR:Common:ErrInvalidArgument]invalid argument', file=sys.stderr)\nsys.exit(1)\n",
    )
    result = runner.run(argv, timeout=30)
    assert result.exit_code == 1
    assert "[BR:Common:ErrInvalidArgument]" in result.stderr_tail


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    argv = script(
        tmp_path,
        "import subprocess, sys, time\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(child_pid_file)!r}, 'w').write(str(c.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n",
    )
    started = time.monotonic()
    with pytest.raises(runner.BRTimeoutError, match="within 2s"):
        runner.run(argv, timeout=2)
    assert time.monotonic() - started < 20
    child = int(child_pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # a zombie still answers kill(0); check its state
        if Path(f"/proc/{child}/stat").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail("BR's child process survived the timeout")


def test_kill_handle_for_on_kill(tmp_path: Path) -> None:
    argv = script(tmp_path, "import time\nprint('x', flush=True)\ntime.sleep(600)\n")
    running = runner.start(argv)
    time.sleep(0.3)
    running.kill(grace=2)
    assert running.process.poll() is not None and running.killed


def test_argv_must_be_a_list() -> None:
    with pytest.raises(TypeError, match="never a shell string"):
        runner.start("br backup full")  # type: ignore[arg-type]


def test_secret_file_is_private_and_removed(tmp_path: Path) -> None:
    with runner.secret_file("00ff" * 8, directory=str(tmp_path)) as path:
        assert path.read_text() == "00ff" * 8
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.exists()


def test_secret_file_removed_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), runner.secret_file("k", directory=str(tmp_path)) as path:
        raise RuntimeError
    assert not path.exists()


def test_stdin_is_closed_so_prompts_answer_yes(tmp_path: Path) -> None:
    argv = script(tmp_path, "import sys\nprint(repr(sys.stdin.read()))\n")
    assert runner.run(argv, timeout=30).stdout == "''"


# ------------------------------------------------------------------------------ where BR's logs go
def test_log_files_are_private_and_unpredictable(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first, second = runner.log_file("dev", "backup", logs), runner.log_file("dev", "backup", logs)
    assert first != second and Path(first).parent == logs
    assert Path(first).name.startswith("br-dev-backup-") and Path(first).name != f"br-dev-backup-{os.getpid()}.log"
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o600 and stat.S_IMODE(os.stat(logs).st_mode) == 0o700


@pytest.mark.parametrize("problem", ["world-writable", "symlink", "foreign-owner", "a-file"])
def test_a_log_directory_that_is_not_ours_alone_is_refused(tmp_path: Path, problem: str) -> None:
    target = tmp_path / "logs"
    if problem == "world-writable":
        target.mkdir(mode=0o777)
        target.chmod(0o777)
    elif problem == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        target.symlink_to(tmp_path / "elsewhere")
    elif problem == "foreign-owner":
        if os.getuid() != 0:
            pytest.skip("needs root to give a directory away")
        target.mkdir(mode=0o700)
        os.chown(target, 54321, -1)
    else:
        target.write_text("")
    with pytest.raises(runner.PrivateDirError) as info:
        runner.log_file("dev", "backup", target)
    assert str(target) in str(info.value)
    if problem == "symlink":
        assert not list((tmp_path / "elsewhere").iterdir())


def test_the_shared_default_directory_is_skipped_when_somebody_planted_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDBOPS_BR_LOG_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = tmp_path / f"tidbops-br-{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    name = runner.log_file("dev", "log-status")
    assert Path(name).parent != planted and not list(planted.iterdir())
    assert stat.S_IMODE(os.stat(Path(name).parent).st_mode) == 0o700


def test_a_passing_status_read_leaves_no_log_and_a_failing_one_keeps_it(tmp_path: Path) -> None:
    with runner.passing_log_file("dev", "log-status", tmp_path / "l") as ok:
        Path(ok).write_text("fine")
    assert not Path(ok).exists()
    with pytest.raises(RuntimeError), runner.passing_log_file("dev", "log-status", tmp_path / "l") as bad:
        raise RuntimeError("br failed")
    assert Path(bad).exists()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_br_dies_with_a_task_process_killed_outright(tmp_path: Path) -> None:
    """A task process SIGKILLed mid-run (a lost worker) takes its BR with it: no orphan BR beside the retry's (#18)."""
    parent = tmp_path / "task.py"
    parent.write_text(
        "import sys, time\n"
        "from tidbops.br import runner\n"
        "br = runner.start([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(br.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    import subprocess

    task = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert task.stdout is not None
        br_pid = int(task.stdout.readline())
        assert not _gone(br_pid)
        task.kill()
        task.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _gone(br_pid):
            time.sleep(0.05)
        assert _gone(br_pid), "BR outlived the task process that started it"
    finally:
        task.kill()
