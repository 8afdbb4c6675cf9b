"""tidbops.cli.render: plain, whole tables off a terminal; a progress bar only on one."""

from __future__ import annotations

import io
import sys

import pytest

from tidbops.cli.render import progress, table
from tidbops.redact import RedactingWriter, redacted_output

pytestmark = pytest.mark.unit
SECRET = "hunter2-Zq9x"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_table_off_a_terminal_is_plain_aligned_and_whole(capsys: pytest.CaptureFixture[str]) -> None:
    long_note = "x" * 700 + " end"
    table(
        ["NAME", "SIZE", "NOTE"],
        [["alpha", 12345, long_note], ["b", 7, None], ["[bold]c[/bold]", 1_000_000, "last"]],
        title="3 rows",
        right=(1,),
    )
    out = capsys.readouterr().out
    assert "\x1b" not in out  # no colour codes in a pipe
    lines = out.splitlines()
    assert lines == [
        "3 rows",
        "NAME               SIZE  NOTE",
        f"alpha             12345  {long_note}",
        "b                     7  -",
        "[bold]c[/bold]  1000000  last",
    ]
    assert all(line == line.rstrip() for line in lines)


def test_a_table_passes_the_redacting_writer(capsys: pytest.CaptureFixture[str]) -> None:
    with redacted_output():
        assert isinstance(sys.stdout, RedactingWriter)
        table(["URL"], [[f"mysql://root:{SECRET}@db/x"]])
    out = capsys.readouterr().out
    assert SECRET not in out and out.splitlines() == ["URL", "mysql://root:***@db/x"]


def test_no_bar_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress(3, "digesting") as advance:
        advance()
        advance(2)
    assert capsys.readouterr() == ("", "")


def test_a_bar_on_a_terminal_redacts_its_description(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", RedactingWriter(terminal))  # the bar goes around the writer
    with progress(4, f"reading s3://b/p?secret-access-key={SECRET}") as advance:
        advance()
        advance(3)
    drawn = terminal.getvalue()
    assert "4/4" in drawn and "secret-access-key=***" in drawn
    assert SECRET not in drawn


def test_a_bar_without_a_total(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress(None, "walking") as advance:
        advance(5)
    assert "walking" in terminal.getvalue() and "5 done" in terminal.getvalue()
