"""The CLI's net: whatever a command does, the user sees redacted text and one line per error, no traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tidbops.cli import run
from tidbops.errors import TiDBOpsError

pytestmark = pytest.mark.unit
SECRET = "hunter2-Zq9x"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    monkeypatch.delenv("TIDBOPS_S3_ENDPOINT", raising=False)
    monkeypatch.delenv("TIDBOPS_DEBUG", raising=False)
    monkeypatch.setenv("TIDBOPS_PLAYGROUND_HOME", str(tmp_path / "pg"))


def toy() -> typer.Typer:
    """A stand-in application whose commands misbehave the ways real ones could."""
    toy_app = typer.Typer()

    @toy_app.command()
    def crash(kind: str) -> None:
        if kind == "value":
            raise ValueError(f"bad thing with mysql://root:{SECRET}@db/x")
        if kind == "ours":
            raise TiDBOpsError(f"refused: s3://b/p?secret-access-key={SECRET}")
        if kind == "os":
            raise FileNotFoundError(2, "No such file or directory", "/nope/x.yaml")
        if kind == "eof":
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        if kind == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        if kind == "terminal":
            raise ValueError("name\x1b]0;owned\x07 from a file\nsecond line")

    @toy_app.command()
    def say(as_json: bool = False) -> None:
        if as_json:
            typer.echo(json.dumps({"url": f"mysql://u:{SECRET}@h/db", "password": SECRET, "n": None}))
        else:
            typer.echo(f"--crypter.key {SECRET} and AWS_SECRET_ACCESS_KEY={SECRET}")
            typer.echo(f"password={SECRET[:4]}", nl=False)  # one secret over two writes of one line
            typer.echo(SECRET[4:], err=False)

    return toy_app


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("value", "error: ValueError: bad thing with mysql://root:***@db/x (TIDBOPS_DEBUG=1 shows where)"),
        ("ours", "error: refused: s3://b/p?secret-access-key=***"),
        ("os", "error: /nope/x.yaml: No such file or directory"),
        ("eof", "error: the input ended early: Compressed file ended before the end-of-stream marker was reached"),
        ("recursion", "error: the input nests too deeply to read (maximum recursion depth exceeded)"),
        ("terminal", "error: ValueError: name\\x1b]0;owned\\x07 from a file second line (TIDBOPS_DEBUG=1 shows where)"),
    ],
)
def test_an_escaping_exception_is_one_redacted_line(
    kind: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["crash", kind], toy()) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.lstrip("\n") == expected + "\n"  # (typer prints an empty line before an EOFError)


def test_debug_shows_the_redacted_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIDBOPS_DEBUG", "1")
    assert run(["crash", "value"], toy()) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and SECRET not in err


def test_everything_printed_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["say"], toy()) == 0
    out = capsys.readouterr().out
    assert SECRET not in out and SECRET[4:] not in out
    assert out.splitlines() == ["--crypter.key *** and AWS_SECRET_ACCESS_KEY=***", "password=***"]
    assert run(["say", "--as-json"], toy()) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"url": "mysql://u:***@h/db", "password": "***", "n": None}


def test_usage_errors_keep_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["config", "chekc"]) == 2
    err = capsys.readouterr().err
    assert "No such command 'chekc'" in err and "Traceback" not in err


# --------------------------------------------------------------------------- what the probes found
def test_catalog_password_in_a_query_parameter_is_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["info", "--catalog", f"mysql+pymysql://u@127.0.0.1:1/db?password={SECRET}"])
    err = capsys.readouterr().err
    assert code == 3 and SECRET not in err and "password=***" in err and len(err.splitlines()) == 1  # UNKNOWN


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        (f"http://ak:{SECRET}@[::1", "is not a URL (Invalid IPv6 URL)"),
        (f"http://ak:{SECRET}@127.0.0.1:9000", "carries a user or password"),
        ("ftp://minio:9000", "is not an endpoint URL"),
        ("http://minio:99999", "is not a URL"),
        ("http://minio:9000/?x=1", "is not an endpoint URL"),
    ],
)
def test_a_bad_s3_endpoint_is_named_and_never_echoed(
    endpoint: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["catalog", "rebuild", "--storage", "s3://bkt/x", "--s3-endpoint", endpoint,
                "--catalog", f"sqlite:///{tmp_path}/c.db"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --s3-endpoint: S3 endpoint") and why in err
    assert SECRET not in err and len(err.splitlines()) == 1


def test_br_parse_redacts_credentials_in_br_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        '[2026/11/22 10:00:00.000 +00:00] [ERROR] [backup.go:51] ["failed to backup"] '
        f'[error="[BR:ExternalStorage:ErrStorageInvalidConfig] s3://b/p?access-key=AKIAIOSFODNN7EXAMPLE'
        f'&secret-access-key={SECRET}: invalid"]\n'
        f"Error: [BR:ExternalStorage:ErrStorageInvalidConfig] s3://b/p?secret-access-key={SECRET}: invalid\n"
    )
    for args in (["br", "parse"], ["br", "parse", "--json"]):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
        assert run(args) == 3
        out, err = capsys.readouterr()
        assert SECRET not in out + err and "IOSFODNN7EXAMPLE" not in out + err
        assert "ErrStorageInvalidConfig" in out


def test_a_catalog_path_whose_directory_cannot_be_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert run(["info", "--catalog", f"sqlite:///{blocker}/sub/catalog.db"]) == 3  # info: UNKNOWN
    err = capsys.readouterr().err
    assert err.startswith(f"error: catalog file {blocker}/sub/catalog.db: cannot create its directory {blocker}/sub")
    assert len(err.splitlines()) == 1


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("tidbops")
    env = {**os.environ, "TIDBOPS_PLAYGROUND_HOME": str(tmp_path)}
    env.pop("TIDBOPS_DEBUG", None)
    proc = subprocess.run(
        [str(exe), "catalog", "rebuild", "--storage", "s3://bkt/x", "--s3-endpoint", f"http://a:{SECRET}@[::1"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr and len(proc.stderr.splitlines()) == 1
