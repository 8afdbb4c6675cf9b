"""Fuzzing what reads BR's output: real-shaped samples (every BR version we keep, log status in both forms),
cut, spliced, garbled and with numbers pushed past their types. Whatever comes in, the parsers give a result
(never an exception), ``br parse`` gives an exit code and one line per problem, and it all ends in bounded time.
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.unit.tidbops.br.brtext import CARRIERS
from tidbops.br.output import is_log_status_output, parse_br_output, parse_log_metadata, parse_log_status
from tidbops.cli import run

pytestmark = pytest.mark.unit

SAMPLES = sorted((Path(__file__).parent / "samples").glob("*.txt"))
TEXTS = [p.read_text(encoding="utf-8") for p in SAMPLES]
FUZZ = settings(max_examples=150, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces BR prints, to splice into the samples: log fields with extreme values, errors, bars, JSON lines.
_PIECES = [
    "[BackupTS=18446744073709551616]", "[BackupTS=-1]", "[total-kv=99999999999999999999999999]",
    "[Size=1e400]", "[total-take=9223372036854775807h]", "[total-take=-5s]", "[average-speed=NaNkB/s]",
    '["Full Backup success summary"] [total-ranges=1', "Error: [BR:Common:ErrInvalidArgument] ",
    "[error=\"[BR:Backup:ErrBackupGCSafepointExceeded]", "Full Backup <------------> 100.00%\r",
    '{"level":"INFO","caller":"collector.go:77","msg":"Full Backup success summary","total-ranges":1e999}',
    '{"level":"ERROR","msg":', "checkpoint[global]: 9999-99-99 99:99:99.999 +9999; gap=999999999h",
    "● Total 1 Tasks.\n> #1 <\n name: x\n status: ● NORMAL\n", "[\x00\x1b[31m]", "\ufffd\ufffd",
    '[{"name":"t","status":"NORMAL","start":-1,"end":1e308,"checkpoint":18446744073709551616}]',
    "[" * 5000, '"' * 3000, "=" * 3000,
    # the carriers BR's output comes in (tidbops.br.lines) and the shapes read since #19
    "I0917 21:22:22.694198       9 backup.go:306] ", "2024-09-17T21:22:22.694198123Z stdout P ", "*** ",
    '{"log":"[2024/09/17 21:22:22.693 +00:00] [INFO] [x] [\\"Full Backup success summary\\"]\\n","stream":"stdout"}',
    '"Error: [BR:restore:ErrRestoreNotFreshCluster]\\n', 'msg="\\n\\"' * 50, '{"log":' * 500, "\\" * 3000,
    "name: a status: ● PAUSE start: end: storage: speed(est.): checkpoint[global]: ", "> #1 <" * 200,
    '["Restore database summary"] ["total restore tables: 2, total success: 1, total failed: 1, failed tables"="[',
    "panic: ", "fatal error: ", "the target cluster is not fresh, cannot restore.", "ingest file failed",
]  # fmt: skip


@st.composite
def br_like(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["cut", "splice", "junk", "dup", "crlf"]))
        if action == "cut":
            text = text[:at]
        elif action == "splice":
            text = text[:at] + draw(st.sampled_from(_PIECES)) + text[at:]
        elif action == "junk":
            text = text[:at] + draw(st.text(max_size=30)) + text[at:]
        elif action == "dup":
            text = text[:at] + text[at // 2 : at] + text[at:]
        else:
            text = text.replace("\n", "\r\n")
    return text


@st.composite
def carried(draw: st.DrawFn) -> str:
    """A sample (maybe garbled), then carried as collectors carry BR's output."""
    text = draw(br_like())
    return draw(st.sampled_from(list(CARRIERS.values())))(text)


def _json_ok(value: object) -> None:
    json.dumps(value, allow_nan=False)  # no NaN or infinity: they would be lies in a report


@FUZZ
@given(br_like() | carried())
def test_parse_br_output_always_gives_an_outcome(text: str) -> None:
    outcome = parse_br_output(text)
    _json_ok(outcome.to_dict())
    for value in (outcome.size_bytes, outcome.total_kv, outcome.backup_ts):
        assert value is None or 0 <= value < 2**64
    assert outcome.total_take_seconds is None or math.isfinite(outcome.total_take_seconds)


@FUZZ
@given(br_like() | carried())
@example(  # found by this test: a C0 separator inside a number field (the regex's \s took it, int() does not)
    '[2021/09/02 14:05:16.871 +08:00] [INFO] [collector.go:66] ["Full backup success summary"] '
    "[backup-total-regions=\x1f80] [BackupTS=427442231082483712]\n"
)
def test_log_status_and_metadata_never_raise(text: str) -> None:
    is_log_status_output(text)
    for task in parse_log_status(text):
        _json_ok(task.to_dict())
    parse_log_metadata(text)


@FUZZ
@given(st.binary(max_size=2000) | br_like().map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_br_parse_command_gives_an_exit_code_and_no_traceback(data: bytes) -> None:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.TextIOWrapper(io.BytesIO(data)), out, err
    try:
        code = run(["br", "parse", "--json"])
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    assert code in (0, 1, 3), err.getvalue()
    assert "Traceback" not in err.getvalue() and "unexpected" not in err.getvalue()
    if out.getvalue().strip():
        json.loads(out.getvalue())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("piece", _PIECES, ids=range(len(_PIECES)))
def test_adversarial_repetition_ends_in_bounded_time(piece: str) -> None:
    text = (piece + "\n") * (200_000 // (len(piece) + 1)) + piece * (100_000 // len(piece))  # long lines too
    parse_br_output(text)
    parse_log_status(text)
    parse_log_metadata(text)
