"""The br emulator's journal: every invocation, its command words and --pd, never the rest of argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tidbops_playground import journal
from tidbops_playground.br.cli import main
from tidbops_playground.registry import ClusterEntry, Registry, save_registry

pytestmark = pytest.mark.playground


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TIDBOPS_PLAYGROUND_HOME", str(tmp_path))
    entry = ClusterEntry(
        name="dev",
        kind="source",
        pd="127.0.0.1:23791",
        sql_host="127.0.0.1",
        sql_port=1,
        sql_user="root",
        sql_password="x",
        cluster_id=1,
        tidb_version="v8.5.1",
    )
    save_registry(Registry(clusters={"dev": entry}), tmp_path)
    return tmp_path


def test_every_call_is_journaled_even_one_that_fails_to_parse(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = journal.size(home)
    assert main(["--version"]) == 0
    assert main(["restore", "point", "--pd", "127.0.0.1:23791", "--no-such-flag"]) != 0
    assert main(["log", "metadata", "--storage", "s3://b/log?access-key=AKIAXX&secret-access-key=SECRET"]) != 0
    capsys.readouterr()
    entries = journal.read(home, start)
    assert [e["command"] for e in entries] == [[], ["restore", "point"], ["log", "metadata"]]
    assert [e["cluster"] for e in entries] == [None, "dev", None]
    raw = (home / journal.JOURNAL).read_text()
    assert "SECRET" not in raw and "s3://" not in raw and "no-such-flag" not in raw
    assert all(set(json.loads(line)) == {"at", "pid", "command", "pd"} for line in raw.splitlines())
    assert journal.read(home, journal.size(home)) == []
    assert not (home / journal.ARGV_FILE).exists()  # full argv only while a secret scan asks for it


def test_full_argv_is_captured_only_while_the_marker_exists(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    (home / journal.ARGV_MARKER).touch()
    assert main(["debug", "decode", "--storage", "local:///nowhere", "--crypter.key-file", "/run/k"]) != 0
    (home / journal.ARGV_MARKER).unlink()
    assert main(["--version"]) == 0
    capsys.readouterr()
    assert journal.captured_argv(home) == [
        ["debug", "decode", "--storage", "local:///nowhere", "--crypter.key-file", "/run/k"]
    ]
    assert (home / journal.ARGV_FILE).stat().st_mode & 0o777 == 0o600


def test_no_home_no_journal(tmp_path: Path) -> None:
    journal.record(["backup", "full"], home=tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
