"""`tidbops slowlog digest`: an offline pt-query-digest grouped by TiDB's Digest."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import unicodedata
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tidbops.cli import app
from tidbops.slowlog.aggregate import DigestKey, aggregate_files
from tidbops.slowlog.parser import parse_slow_log_time
from tidbops_playground.slowlog_gen import GenerationResult, generate

pytestmark = pytest.mark.unit
runner = CliRunner()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    path = tmp_path_factory.mktemp("cli") / "tidb-9" / "tidb-slow.log"
    return path, generate(path, entries=1500, days=2, start=date(2026, 11, 1), seed=21, truncated_tail=True)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationResult]:
    directory = tmp_path_factory.mktemp("cli-rot") / "tidb-8"
    result = generate(
        directory, entries=900, days=3, seed=22, split_daily=True, gzip_rotated=True, truncated_tail=False
    )
    return directory, result


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["slowlog", "digest", *args])
    return result.exit_code, result.output


def by_digest(path: Path, **options: object) -> list[tuple[str, int, int]]:
    table = aggregate_files([path], **options)
    merged = table.rollup(lambda k: DigestKey("", k.digest, "", "", ""))
    return sorted(((k.digest, s.count, s.query_time_ns) for k, s in merged.items()), key=lambda r: (-r[2], r[0]))


def test_text_report(log: tuple[Path, GenerationResult]) -> None:
    path, result = log
    code, out = invoke(str(path), "--top", "5")
    assert code == 0, out
    expected = by_digest(path)
    total = sum(r[1] for r in expected)
    assert f"# Overall: {total} total, {len(expected)} unique digests" in out
    assert "1 incomplete, 0 malformed" in out
    assert "# Profile" in out
    for rank, (digest, count, _ns) in enumerate(expected[:5], 1):
        assert f"# Query {rank}: digest {digest}" in out
        assert f"# Calls {count}," in out
    assert "# Query 6:" not in out
    assert result.entries == total + sum(t.count for t in result.digests.values() if t.kind == "internal")


def test_the_profile_is_a_table(log: tuple[Path, GenerationResult]) -> None:
    path, _ = log
    code, out = invoke(str(path), "--top", "3")
    assert code == 0, out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("# Profile"))
    expected = by_digest(path)
    assert lines[at] == f"# Profile: the top 3 of {len(expected)} digests by response time"
    header = ["RANK", "DIGEST", "RESPONSE", "TIME", "SHARE", "CALLS", "R/CALL", "P95", "MAX", "ITEM"]
    assert lines[at + 1].split() == header
    for rank, (digest, count, _ns) in enumerate(expected[:3], 1):
        cells = lines[at + 1 + rank].split()
        assert cells[:2] == [str(rank), digest[:16]] and cells[4] == str(count), lines[at + 1 + rank]
        assert lines[at + 1 + rank] == lines[at + 1 + rank].rstrip()  # no trailing blanks: plain text off a tty
    assert lines[at + 5] == "" and lines[at + 6].startswith("# Query 1: digest ")


@pytest.mark.parametrize("flags", [["--json"], ["--format", "json"], ["--json", "--format", "json"]])
def test_json_report(log: tuple[Path, GenerationResult], flags: list[str]) -> None:
    path, _ = log
    code, out = invoke(str(path), *flags, "--top", "3", "--include-internal")
    assert code == 0, out
    data = json.loads(out)
    expected = by_digest(path, include_internal=True)
    assert [(d["digest"], d["count"], d["query_time_ns"]) for d in data["digests"]] == expected[:3]
    assert data["overall"]["count"] == sum(r[1] for r in expected)
    assert data["overall"]["digests"] == len(expected)
    assert data["parse"]["incomplete"] == 1 and data["parse"]["skipped_internal"] == 0
    first = data["digests"][0]
    assert first["p95_query_time"] <= first["max_query_time_ns"] / 1e9
    assert first["first_seen"].endswith("Z") and first["plans"] and first["users"]


def test_since_until_window(log: tuple[Path, GenerationResult]) -> None:
    path, _ = log
    code, out = invoke(str(path), "--format", "json", "--since", "2026-11-01T12:00:00Z", "--until", "2026-11-02")
    assert code == 0, out
    data = json.loads(out)
    table = aggregate_files(
        [path], since=parse_slow_log_time("2026-11-01T12:00:00Z"), until=parse_slow_log_time("2026-11-02T00:00:00Z")
    )
    assert data["overall"]["count"] == sum(s.count for _, s in table.rows()) > 0
    assert data["parse"]["skipped_by_time"] == table.skipped_by_time > 0
    assert "2026-11-01T12:00:00" <= data["overall"]["first_seen"] <= data["overall"]["last_seen"] < "2026-11-02"


def test_redact(log: tuple[Path, GenerationResult]) -> None:
    path, _ = log
    code, out = invoke(str(path), "--format", "json", "--redact", "--top", "50")
    assert code == 0
    samples = [d["sample_sql"] for d in json.loads(out)["digests"]]
    assert samples and all("'" not in s and "[arguments:" not in s for s in samples)


def test_directory_with_rotated_gzip_files(rotated: tuple[Path, GenerationResult]) -> None:
    directory, result = rotated
    code, out = invoke(str(directory), "--format", "json", "--include-internal", "--jobs", "2")
    assert code == 0, out
    data = json.loads(out)
    assert len(data["files"]) == 3 and data["files"][-1].endswith("tidb-slow.log")
    assert data["overall"]["count"] == result.entries
    assert data["digests"][0]["instances"] == ["tidb-8"]
    code, out = invoke(str(directory), "--instance", "tidb-a", "--format", "json")
    assert json.loads(out)["digests"][0]["instances"] == ["tidb-a"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/tidb-slow.log"], "no such file or directory"),
        (["{log}", "--since", "last tuesday"], "is not an ISO 8601 date"),
        (["{log}", "--since", "2026-11-02", "--until", "2026-11-01"], "--until must be after --since"),
        (["{log}", "--top", "0"], "Invalid value"),
        (["{log}", "--format", "xml"], "Invalid value"),
        (["{empty}"], "no slow-log files in this directory (tidb-slow.log, tidb_slow_query.log, slowlog"),
    ],
    ids=["missing-file", "bad-since", "until-before-since", "top-zero", "bad-format", "empty-directory"],
)
def test_usage_errors(tmp_path: Path, log: tuple[Path, GenerationResult], args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    filled = [a.format(log=log[0], empty=tmp_path / "empty") for a in args]
    code, out = invoke(*filled)
    assert code == 2
    squeeze = re.compile(r"[\s│╭╮╰╯─]+")  # rich draws the error in a box that wraps long lines
    assert squeeze.sub("", message) in squeeze.sub("", out)


def test_registered_under_the_main_app() -> None:
    result = runner.invoke(app, ["slowlog", "--help"])
    assert result.exit_code == 0 and "digest" in result.output


@pytest.mark.parametrize("name", ["tidb_slow_query.log", "slowlog"], ids=["tiup", "tidb-operator"])
def test_directory_of_a_tiup_or_operator_deployment(
    tmp_path: Path, log: tuple[Path, GenerationResult], name: str
) -> None:
    directory = tmp_path / "tidb-7"
    directory.mkdir()
    (directory / name).write_bytes(log[0].read_bytes())
    code, out = invoke(str(directory), "--format", "json")
    assert code == 0, out
    data = json.loads(out)
    assert data["files"] == [str(directory / name)] and data["overall"]["count"] == by_digest_total(log[0])


def by_digest_total(path: Path) -> int:
    return sum(r[1] for r in by_digest(path))


# ------------------------------------------------------------------------------------ hostile input
DIGEST = "50a2e32d2abbd6c1764b1b7f2058d428ef2712b029282b776beb9506a365c0f1"
ENTRY = (
    "# Time: 2026-11-01T10:00:0{n}Z\n# User@Host: {user}[u] @ 10.0.0.1 [10.0.0.1]\n# Query_time: 1.5\n"
    "# DB: {db}\n# Is_internal: false\n# Digest: {digest}\n# Succ: true\n{sql};\n"
)
NASTY = "\x1b[2J\x1b[31m red \r over \x07 bell \x00 nul \x9b1m \u202e gnp.exe \u2066 \u200b \u2028 \x7f"


def entry_text(n: int = 1, *, sql: str = "SELECT 1", db: str = "shop", user: str = "app", digest: str = DIGEST) -> str:
    return ENTRY.format(n=n, sql=sql, db=db, user=user, digest=digest)


def raw_controls(text: str) -> list[str]:
    """Characters a terminal acts on (or hides): C0/C1 controls but the newline, format, bidi, separators."""
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


def run_digest(*args: str) -> Result:
    return runner.invoke(app, ["slowlog", "digest", *args])


def test_control_characters_never_reach_the_terminal(tmp_path: Path) -> None:
    directory = tmp_path / "tidb\x1b[1m-1"
    directory.mkdir()
    path = directory / "tidb-slow.log"
    path.write_text(entry_text(sql=f"SELECT '{NASTY}'", db="sh\x1bop", user="a\rpp"), encoding="utf-8")
    result = run_digest(str(path))
    assert result.exit_code == 0, result.output
    assert raw_controls(result.output) == []
    for visible in ("\\x1b[2J", "\\r", "\\x07", "\\x00", "\\x9b", "\\u202e", "\\u2066", "\\u200b", "\\u2028"):
        assert visible in result.stdout, visible
    assert "sh\\x1bop" in result.stdout and "a\\rpp" in result.stdout and "tidb\\x1b[1m-1" in result.stdout
    data = run_digest(str(path), "--format", "json")
    assert data.exit_code == 0 and raw_controls(data.output) == [] and data.stdout.isascii()
    (row,) = json.loads(data.stdout)["digests"]
    assert row["sample_sql"] == f"SELECT '{NASTY}';" and row["dbs"] == ["sh\x1bop"] and row["users"] == ["a\rpp"]


@pytest.mark.parametrize(
    ("files", "code", "warnings"),
    [
        (["good.log", "corrupt.log.gz"], 0, ["{corrupt}: corrupt gzip file: "]),
        (["corrupt.log.gz"], 1, ["{corrupt}: corrupt gzip file: "]),
        (["truncated.log.gz"], 0, ["{truncated}: truncated gzip file: "]),
        (["good.log", "rejected.log"], 0, ["{rejected}:1: entry at ", "{rejected}:9: entry at "]),
        (["rejected.log"], 1, ["{rejected}:1: entry at ", "{rejected}:9: entry at "]),
        (["empty.log"], 0, []),
    ],
    ids=["good-and-corrupt", "corrupt-alone", "truncated", "good-and-rejected", "rejected-alone", "empty"],
)
def test_bad_input_is_one_line_each_and_fails_only_when_nothing_is_usable(
    tmp_path: Path, files: list[str], code: int, warnings: list[str]
) -> None:
    good = "".join(entry_text(n) for n in range(5))
    names = {
        "good.log": good.encode(),
        "corrupt.log.gz": gzip.compress(good.encode())[:-8] + b"\x00" * 8,
        "truncated.log.gz": gzip.compress((good * 300).encode())[:800],
        "rejected.log": (entry_text(digest="x' RESOURCE GROUP `default") + entry_text(2, sql="SELECT 2").replace(
            "# Query_time: 1.5", "# Query_time: -1")).encode(),
        "empty.log": b"",
    }  # fmt: skip
    paths = {name.split(".")[0]: tmp_path / name for name in names}
    for name, data in names.items():
        (tmp_path / name).write_bytes(data)
    for output in ("text", "json"):
        result = run_digest(*(str(tmp_path / f) for f in files), "--format", output)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output and "Aborted" not in result.output
        lines = result.stderr.splitlines()
        expected = [w.format(**paths) for w in warnings]
        assert [line.split(": ", 1)[1] for line in lines if line.startswith("warning: ")][: len(expected)] == [
            ANY_REST(e) for e in expected
        ]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == (1 if code else 0), lines
        if output == "json":
            json.loads(result.stdout)  # stdout stays machine-readable


class ANY_REST(str):  # a matcher: equal to any text that starts with it
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(str(self))

    __hash__ = str.__hash__


def test_the_real_command_prints_no_traceback(tmp_path: Path) -> None:
    """Through the installed entry point (``tidbops``), as a user runs it."""
    corrupt = tmp_path / "tidb-slow-2026-11-19T00-00-00.000.log.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
    result = subprocess.run(
        [sys.executable, "-c", "from tidbops.cli import main; main()", "slowlog", "digest", str(corrupt)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr
    assert result.stderr.splitlines()[0].startswith(f"warning: {corrupt}: corrupt gzip file: ")


@pytest.mark.parametrize(
    "when",
    ["2026-11-01T10:00:00+25:00", "2026-13-01", "2026-11-01T10:00:00\x1b[2J"],
    ids=["offset-25", "month-13", "escape"],
)
def test_since_out_of_range_is_a_usage_error(log: tuple[Path, GenerationResult], when: str) -> None:
    result = run_digest(str(log[0]), "--since", when)
    assert result.exit_code == 2 and "Traceback" not in result.output and "\x1b" not in result.output


def test_the_help_states_the_exit_codes() -> None:
    result = runner.invoke(app, ["slowlog", "digest", "--help"])
    squeeze = " ".join(result.output.replace("│", " ").split())
    assert "Exit status: 0" in squeeze and "1 when nothing usable was read" in squeeze


def test_a_file_that_is_not_a_slow_log_is_said_so(tmp_path: Path, log: tuple[Path, GenerationResult]) -> None:
    general = tmp_path / "tidb.log"
    general.write_text('[2026/11/01 10:00:00.000 +00:00] [INFO] [printer.go:47] ["Welcome to TiDB."]\n' * 100)
    alone = run_digest(str(general))
    assert alone.exit_code == 1
    assert alone.stderr.splitlines()[0].startswith(f"warning: {general}: not a slow log: no '# Time: ' line in ")
    mixed = run_digest(str(general), str(log[0]), "--format", "json")
    assert mixed.exit_code == 0 and json.loads(mixed.stdout)["parse"]["bad_files"] == 1


@pytest.mark.parametrize("target", ["/dev/null", "fifo"], ids=["device", "fifo"])
def test_something_that_is_not_a_regular_file(tmp_path: Path, target: str) -> None:
    import os

    path = Path(target)
    if target == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    result = run_digest(str(path))
    squeeze = re.compile(r"[\s│╭╮╰╯─]+")  # rich draws the error in a box that wraps long lines
    assert result.exit_code == 2 and "notaregularfileoradirectory" in squeeze.sub("", result.output)


def run_with_stderr_on_a_terminal(*args: str) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, what reached the terminal on stderr) of the real command."""
    pty = pytest.importorskip("pty")
    import os

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tidbops.cli import main; main()", *args], stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    assert proc.stdout is not None
    out = proc.stdout.read()
    seen = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed (Linux says EIO)
            break
        if not chunk:
            break
        seen.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), out, b"".join(seen)


def test_many_files_show_a_progress_bar_on_a_terminal_only(rotated: tuple[Path, GenerationResult]) -> None:
    directory, _ = rotated
    code, out, terminal = run_with_stderr_on_a_terminal("slowlog", "digest", str(directory), "--json")
    assert code == 0 and json.loads(out)["overall"]["count"] > 0
    assert b"reading 3 slow-log files" in terminal and b"3/3" in terminal
    piped = run_digest(str(directory), "--json")  # stderr not a terminal: no bar
    assert piped.exit_code == 0 and "reading" not in piped.stderr
    code, out, terminal = run_with_stderr_on_a_terminal("slowlog", "digest", str(next(directory.glob("*.gz"))))
    assert code == 0 and b"reading" not in terminal  # one file: no bar
