"""``tidbops.br.lines``: the lines BR printed, whatever carried them; BR's own lines pass untouched."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.tidbops.br.brtext import CARRIERS, pingcap_line
from tidbops.br.lines import br_lines, strip_prefixes, unwrap

pytestmark = pytest.mark.unit

SUMMARY = pingcap_line("Full Backup success summary", [("total-ranges", 3), ("total-take", "1.2s")])


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("I0917 21:22:22.694198       9 backup.go:306] x y", "x y", id="klog"),
        pytest.param("E1201 02:00:03.118270   48211 restore.go:88] Error: boom", "Error: boom", id="klog-error"),
        pytest.param("2024-09-17T21:22:22.694198123Z stdout F x", "x", id="cri"),
        pytest.param("2024-09-17T21:22:22.694198123+08:00 x", "x", id="kubectl-timestamps"),
        pytest.param("*** x", "x", id="ci-stars"),
        pytest.param("2024-09-17T21:22:22Z stderr F I0917 21:22:22.694198 9 b.go:1] x", "x", id="cri-then-klog"),
        pytest.param(SUMMARY, SUMMARY, id="pingcap-record-untouched"),
        pytest.param("I0917 is not a klog header", "I0917 is not a klog header", id="not-klog"),
        pytest.param("2024-09-17 21:22:22 not RFC 3339", "2024-09-17 21:22:22 not RFC 3339", id="not-a-timestamp"),
        pytest.param("a *** b", "a *** b", id="stars-inside"),
    ],
)
def test_prefixes_are_stripped_only_where_a_collector_puts_them(line: str, expected: str) -> None:
    assert strip_prefixes(line)[0] == expected


def test_a_split_cri_line_is_joined_again() -> None:
    assert strip_prefixes("2024-09-17T21:22:22.694198123Z stdout P abc") == ("abc", True)
    text = CARRIERS["cri-split-lines"](SUMMARY + "\n\x1b[32mFull Backup\x1b[0m <---> 100.00%")
    assert list(br_lines(text)) == [SUMMARY, "Full Backup <---> 100.00%"], "an ANSI sequence split in two, too"


def test_brs_own_json_log_records_are_no_wrapper() -> None:
    record = json.dumps({"level": "INFO", "time": "2024/09/17 21:22:22.693 +00:00", "caller": "collector.go:77",
                         "message": "Full Backup success summary", "total-ranges": 3})  # fmt: skip
    assert unwrap(record) is None and list(br_lines(record)) == [record]
    assert list(br_lines('[{"name":"pitr","status":"NORMAL"}]')) == ['[{"name":"pitr","status":"NORMAL"}]']


def test_a_structured_logger_carrying_br_lines_is_a_wrapper() -> None:
    """Vector/Logstash put the line in ``message`` beside a ``level``: not a BR record (it is console text)."""
    doc = json.dumps({"message": SUMMARY, "level": "info", "host": "airflow-worker-2"})
    assert list(br_lines(doc)) == [SUMMARY]
    doc = json.dumps({"message": "Error: [BR:KV:ErrKVDownloadFailed]download sst failed", "level": "error"})
    assert list(br_lines(doc)) == ["Error: [BR:KV:ErrKVDownloadFailed]download sst failed"]


def test_a_json_string_inside_another_line() -> None:
    line = "msg=" + json.dumps("Detail BR log in /tmp/br.log \nError: [BR:Common:ErrInvalidArgument]bad") + " n=1"
    assert list(br_lines(line)) == [
        "msg= n=1",
        "Detail BR log in /tmp/br.log ",
        "Error: [BR:Common:ErrInvalidArgument]bad",
    ]


def test_a_records_own_quoted_fields_are_not_unwrapped() -> None:
    line = pingcap_line("br failed", [("error", 'a "b"\nError: c')], level="ERROR", caller="main.go:60")
    assert "\\n" in line and list(br_lines(line)) == [line]


def test_broken_wrappers_are_left_as_text() -> None:
    for text in ('{"log": "unterminated', '"half a string', "{}", '{"log": 5}', "[1, 2", '"\\ud800"'):
        assert list(br_lines(text)) == [text] or all(isinstance(x, str) for x in br_lines(text))


def test_nesting_is_bounded() -> None:
    text = SUMMARY
    for _ in range(10):
        text = json.dumps(text)
    assert len(list(br_lines(text))) == 1  # read no deeper than a few wrappers, never recursing without end


_PLAIN = st.text(
    alphabet=st.sampled_from(list("abcXYZ 019[]=:%#<>-._/\t●○µ\\")), max_size=60
)  # no quotes, no prefixes: lines that no step mistakes for a wrapper


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_PLAIN, min_size=1, max_size=8))
def test_every_carrier_gives_back_the_lines(lines: list[str]) -> None:
    """Every carrier but logfmt (whose own words stay, and whose string is read only when it holds BR's
    text: test_shapes) gives back exactly the lines it carried."""
    text = "\n".join(lines)
    bare = list(br_lines(text))
    for name, carry in CARRIERS.items():
        if name != "logfmt":
            assert list(br_lines(carry(text))) == bare, name
