"""`br log status`: the right-aligned table (wrapped values, ANSI, old Go dates) and the --json array."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tidbops import tso
from tidbops.br.output import LogTaskStatus, is_log_status_output, parse_log_status

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).parent / "samples"
CST = timezone(timedelta(hours=8))


def tasks(name: str) -> list[LogTaskStatus]:
    text = (SAMPLES / name).read_text(encoding="utf-8")
    assert is_log_status_output(text)
    return parse_log_status(text)


def at(*parts: int, tz: timezone = UTC) -> int:
    """The TSO BR's table implies for a printed date (millisecond precision, logical 0)."""
    *head, ms = parts
    return tso.from_datetime(datetime(*head, ms * 1000, tzinfo=tz))  # type: ignore[misc]


def test_normal_v8_5() -> None:
    [t] = tasks("log_status_normal_v8_5.txt")
    assert t.name == "pitr" and t.status == "NORMAL" and not t.status_derived
    assert t.start_ts == at(2024, 12, 23, 14, 30, 34, 620, tz=CST)
    assert t.checkpoint_ts == t.start_ts and t.checkpoint_source == "global"
    assert t.checkpoint_time == datetime(2024, 12, 23, 6, 30, 34, 620000, tzinfo=UTC)
    assert t.end_ts is not None and tso.to_datetime(t.end_ts).year == 2090
    assert t.storage == "local:///root/backups/test9/log"
    assert t.gap_seconds == 22.0 and t.estimate_qps == 0.0 and t.errors == ()
    assert t.lag_seconds(datetime(2024, 12, 23, 6, 31, 34, 620000, tzinfo=UTC)) == pytest.approx(60.0)


def test_paused_with_pause_rows_and_a_long_gap() -> None:
    [t] = tasks("log_status_paused_v8_5.txt")
    assert t.status == "PAUSE"
    assert t.gap_seconds == 54 * 3600 + 58 * 60 + 37
    assert t.pause == {
        "pause-time": "2025-03-14 11:20:03.118270339 +0800 CST",
        "pause-operator": "airflow-worker-2",
        "pause-operator-pid": "48211",
        "pause-payload": "paused for storage maintenance",
    }
    assert t.checkpoint_time == datetime(2025, 3, 14, 3, 20, 1, 500000, tzinfo=UTC)


def test_error_with_wrapped_message_and_wrapped_storage() -> None:
    [t] = tasks("log_status_error_wrapped.txt")
    assert t.status == "ERROR" and t.name == "task1"
    assert t.storage == "s3://tmp/br-log-backup0ef49055-5198-4be3-beab-d382a2189efb/Log", "wrapped value re-joined"
    assert t.gap_seconds == 11 * 3600 + 31 * 60 + 29
    assert t.checkpoint_time == datetime(2022, 7, 25, 14, 46, 50, 118000, tzinfo=UTC)
    [err] = t.errors
    assert err.store_id == 1 and err.code == "KV:LogBackup:RaftReq"
    assert err.happen_at == datetime(2022, 7, 25, 14, 54, 44, 467000, tzinfo=UTC)
    assert err.message == (
        "retry time exceeds: and error failed to get initial snapshot: failed to get the snapshot (region_id = 94812): "
        'Error during requesting raftstore: message: "read index not ready, reason can not read index due to merge, '
        'region 94812" read_index_not_ready { reason: "can not read index due to merge" region_id: 94812 }'
    ), "chunks split mid-word (and before a space) join back exactly"


def test_multiple_tasks_ansi_and_store_checkpoints() -> None:
    a, b = tasks("log_status_multi_v8.txt")
    assert (a.name, a.status, a.storage, a.estimate_qps) == ("pitr-a", "NORMAL", "s3://tidbops-backups/dev/log", 12.47)
    assert a.gap_seconds == 122.0 and a.checkpoint_source == "global"
    assert a.start_ts == at(2024, 5, 10, 9, 0, 0, 0, tz=CST), "a date without a fraction"
    assert b.name == "pitr-b" and b.end_ts is None, "no 'end' row when EndTs is 0"
    assert [(c.store_id, c.gap_seconds) for c in b.store_checkpoints] == [(1, 120.0), (4, 50.0)]
    assert b.checkpoint_source == "store-min" and b.checkpoint_ts == at(2024, 5, 10, 9, 58, 0, 500, tz=CST)
    assert b.gap_seconds == 120.0


def test_no_task() -> None:
    assert tasks("log_status_no_task.txt") == []


def test_v6_go_time_strings_with_zone_abbreviation() -> None:
    [t] = tasks("log_status_v6_2_gostring.txt")
    assert t.start_ts == 434582449885806593 >> 18 << 18, "the printed date rebuilds the TSO to the millisecond"
    assert t.checkpoint_time == datetime(2022, 7, 25, 14, 52, 15, 518000, tzinfo=UTC)
    assert t.gap_seconds == 172.0 and t.checkpoint_source == "global"
    assert [c.store_id for c in t.store_checkpoints] == [1]


def test_json_released_build_has_no_status() -> None:
    ok, broken = tasks("log_status_json_released.txt")
    assert ok.status is None and not ok.status_derived, "nothing tells: unknown, not NORMAL"
    assert ok.checkpoint_ts == 454802990000000000 and ok.start_ts == 454802914573025282
    assert ok.end_ts == 999999999999999999 and ok.table_filter == ("*.*",) and ok.estimate_qps == 0.82
    assert [(c.store_id, c.checkpoint_ts) for c in ok.store_checkpoints] == [
        (1, 454803000000000000),
        (4, 454803010000000000),
    ]
    assert broken.status == "ERROR" and broken.status_derived
    [err] = broken.errors
    assert (err.store_id, err.code) == (1664032, "KV:LogBackup:Etcd")
    assert err.happen_at == datetime.fromtimestamp(1739390374840 / 1000, tz=UTC)
    assert err.message == "Etcd meet error grpc request error: status: Unavailable"


def test_json_with_status_field() -> None:
    normal, paused = tasks("log_status_json_with_status.txt")
    assert normal.status == "NORMAL" and not normal.status_derived
    assert paused.status == "PAUSE" and paused.checkpoint_ts is None, "checkpoint 0 means none yet"
    assert paused.end_ts is None and paused.table_filter == ("db1.*",)


def test_json_empty() -> None:
    assert tasks("log_status_json_empty.txt") == []


@pytest.mark.parametrize(
    ("word", "expected"),
    [("● NORMAL", "NORMAL"), ("● PAUSE", "PAUSE"), ("● PAUSED", "PAUSE"), ("○ ERROR", "ERROR"), ("? WEIRD", None)],
)
def test_status_words(word: str, expected: str | None) -> None:
    text = f"● Total 1 Tasks.\n> #1 <\n  name: t\nstatus: {word}\n"
    [t] = parse_log_status(text)
    assert t.status == expected


def test_narrow_terminal_two_line_rows() -> None:
    text = (
        "● Total 1 Tasks.\n> #1 <\nname: \npitr\nstatus: \n● NORMAL\nerror-message[store=7]: \n"
        "a long message split at the ter\nminal width\n"
    )
    [t] = parse_log_status(text)
    assert t.name == "pitr" and t.status == "NORMAL"
    assert t.errors[0].store_id == 7 and t.errors[0].message == "a long message split at the terminal width"


def test_lines_after_the_table_do_not_leak_into_values() -> None:
    text = (SAMPLES / "log_status_normal_v8_5.txt").read_text() + "\nsome trailing shell prompt $\n"
    [t] = parse_log_status(text)
    assert t.gap_seconds == 22.0 and t.storage == "local:///root/backups/test9/log"


def test_not_log_status() -> None:
    for text in ("", "hello", "[1, 2]", '[{"no_name": 1}]', "[" * 10000 + "{"):
        assert not is_log_status_output(text)
        assert parse_log_status(text) == []


def test_fuzz_never_raises() -> None:
    rng = random.Random(57959)
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SAMPLES.glob("log_status_*.txt"))]
    alphabet = '[]{}":,\\\n ●○#<>=-.0123456789abcdefgh:[]store=global\x1b'
    for _ in range(3000):
        text = rng.choice(seeds)
        if rng.random() < 0.5:
            i = rng.randrange(len(text) + 1)
            text = text[:i] + "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30))) + text[i:]
        else:
            text = text[: rng.randrange(len(text) + 1)]
        is_log_status_output(text)
        for t in parse_log_status(text):
            t.to_dict()
