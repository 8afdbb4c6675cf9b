"""Parsing what BR printed, v4 to v9: summaries, errors, progress, warnings — and never crashing."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tidbops.br.errors import BRError
from tidbops.br.output import (
    BROutcome,
    classify_field,
    parse_br_output,
    parse_go_duration,
    parse_log_metadata,
    parse_size,
)

pytestmark = pytest.mark.unit

SAMPLES = Path(__file__).parent / "samples"
MIB = 1024 * 1024


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def test_every_sample_names_its_source() -> None:
    for path in SAMPLES.glob("*.txt"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# BR "), f"{path.name}: the first line says which BR version/source it is"


# sample -> expected attributes of the outcome (only what is listed is checked)
EXPECTED: list[Any] = [
    pytest.param(
        "v4_0_rc_full_backup_success.txt",
        {
            "command": "Full backup",
            "success": True,
            "ranges_total": 6,
            "ranges_failed": 0,
            "total_take_seconds": 11.75,
            "total_kv": 20000,
            "total_kv_size_bytes": round(10.98 * MIB),
            "average_speed_bytes_per_s": round(0.93 * MIB),
            "checksum_seconds": 0.000842938,
            "fast_checksum_seconds": 0.01909283,
            "backup_total_regions": 6,
            "backup_ts": None,
            "log_path": "/tmp/br.log.2020-04-20T10.12.01+0800",
        },
        id="v4.0-rc-message-figures-and-Detial-typo",
    ),
    pytest.param(
        "v4_0_full_backup_success.txt",
        {
            "command": "Full backup",
            "success": True,
            "backup_ts": 422618409346269185,
            "backup_time": datetime(2021, 2, 1, 6, 34, 50, 536000, tzinfo=UTC),
            "size_bytes": 826765915,
            "total_kv": 120000000,
            "total_kv_size_bytes": round(5997.49 * MIB),
            "total_take_seconds": 49.799662427,
            "checksum_seconds": 17.907153678,
            "fast_checksum_seconds": 0.000349333,
            "ranges_total": 2,
            "ranges_succeeded": 2,
        },
        id="v4.0-Success-summary-real-time",
    ),
    pytest.param(
        "v4_0_full_backup_failed.txt",
        {"command": "Full backup", "success": False, "ranges_failed": 1, "primary_code": "BR:KV:ErrKVDownloadFailed"},
        id="v4.0-Failed-summary",
    ),
    pytest.param(
        "v5_full_backup_success.txt",
        {
            "command": "Full backup",
            "success": True,
            "backup_ts": 427442231082483712,
            "data_size_after_compressed_bytes": 4960000,
            "total_kv_size_bytes": 23540000,
            "average_speed_bytes_per_s": 4611000,
            "checksum_seconds": 0.027583429,
            "backup_total_ranges": 80,
        },
        id="v5-quoted-backup-data-size-key",
    ),
    pytest.param(
        "v5_0_database_restore.txt",
        {"command": "Database restore", "success": True, "total_kv_size_bytes": 199, "checksum_seconds": 0.009317583},
        id="v5.0-data-size",
    ),
    pytest.param(
        "v6_5_full_backup_tty.txt",
        {
            "command": "Full Backup",
            "success": True,
            "backup_ts": 439330705621123078,
            "size_bytes": 74346,
            "total_kv_size_bytes": 269800,
            "progress_step": "Checksum",
            "progress_percent": 100.0,
        },
        id="v6.5-summary-glued-to-bar",
    ),
    pytest.param(
        "v8_full_backup_success.txt",
        {
            "command": "Full Backup",
            "success": True,
            "backup_ts": 435844546560000000,
            "backup_time": datetime(2022, 9, 8, 5, 30, tzinfo=UTC),
            "size_bytes": 71330,
            "total_kv": 1131,
            "total_kv_size_bytes": 250000,
            "total_take_seconds": 4.715509333,
            "average_speed_bytes_per_s": 53020,
            "data_size_after_compressed_bytes": 71330,
            "ranges_total": 20,
            "ranges_succeeded": 20,
            "ranges_failed": 0,
            "backup_total_regions": 80,
            "checksum_seconds": 0.003597416,
            "fast_checksum_seconds": 0.00236975,
            "errors": (),
            "log_path": "/tmp/br.log.2022-09-08T13.30.57+0800",
        },
        id="v8-Full-Backup",
    ),
    pytest.param(
        "v8_5_full_backup_no_checksum.txt",
        {"command": "Full Backup", "success": True, "checksum_seconds": None, "size_bytes": 3759864831},
        id="v8.5-checksum-off-operator-prefix",
    ),
    pytest.param(
        "v8_database_restore.txt",
        {"command": "DataBase Restore", "success": True, "backup_ts": 449656337203200000, "total_kv": 1200},
        id="v8-DataBase-Restore",
    ),
    pytest.param(
        "v8_5_pitr_restore_point.txt",
        {
            "command": "restore log",
            "success": True,
            "summaries": ["Full Restore", "restore log"],
            "backup_ts": 456118101615575040,
            "restore_start_ts": 456118101615575040,
            "restore_end_ts": 456136975983575040,
            "target_end_ts": 456319617602420736,
            "total_kv_count": 660055326,
            "total_size_bytes": 261_400_000_000,
            "skipped_kv_count": 0,
            "skipped_size_bytes": 0,
            "total_take_seconds": 16.994211834 + 22 * 60 + 42.6293174,
            "average_speed_bytes_per_s": 300_200_000,
        },
        id="v8.5-pitr-both-summaries",
    ),
    pytest.param(
        "v6_2_pitr_restore_point.txt",
        {
            "command": "restore log",
            "success": True,
            "restore_start_ts": 434693681289625602,
            "restore_end_ts": 434693753549881345,
            "total_kv_count": 33,
            "total_size_bytes": 21551,
            "progress_step": "Restore KV Files",
        },
        id="v6.2-pitr-restore-from-to",
    ),
    pytest.param(
        "v8_log_pause_failed.txt",
        {
            "command": "log pause",
            "success": False,
            "primary_code": "BR:Backup:ErrBackupGCSafepointExceeded",
            "primary_source": "stderr",
            "error_count": 1,
        },
        id="v8-failed-summary-error-deduplicated",
    ),
    pytest.param(
        "v8_incremental_gc_safepoint.txt",
        {"command": None, "success": False, "primary_code": "BR:Backup:ErrBackupGCSafepointExceeded"},
        id="v8-gc-safepoint-stderr-only",
    ),
    pytest.param(
        "v8_backup_meta_exists.txt",
        {"success": False, "primary_code": "BR:Common:ErrInvalidArgument", "primary_source": "stderr"},
        id="v8-backup-meta-exists",
    ),
    pytest.param(
        "v8_restore_not_fresh.txt",
        {"success": False, "not_fresh": True, "primary_code": "BR:Restore:ErrRestoreNotFreshCluster"},
        id="v8-not-fresh-banner",
    ),
    pytest.param(
        "v8_ratelimit_warning_progress.txt",
        {
            "success": True,
            "warning_contains": "`--ratelimit` forces sequential",
            "progress_step": "Full Backup",
            "progress_percent": 37.5,
            "progress_source": "log",
            "total_take_seconds": 638.812194,
        },
        id="v8-ratelimit-warning-and-log-progress",
    ),
    pytest.param(
        "v8_killed_mid_backup.txt",
        {"command": None, "success": None, "progress_percent": 25.0, "warning_contains": "will retry"},
        id="v8-killed-no-summary-unknown",
    ),
    pytest.param(
        "v8_tty_error_glued.txt",
        {
            "success": False,
            "primary_code": "BR:KV:ErrKVDownloadFailed",
            "progress_step": "Full Backup",
            "progress_percent": 37.5,
            "progress_source": "tty",
            "log_path": "/tmp/br.log.2024-06-06T02.00.00+0800",
        },
        id="v8-tty-ansi-crlf-error-glued",
    ),
    pytest.param(
        "v8_json_log_format.txt",
        {"command": "Full Backup", "success": True, "backup_ts": 435844546560000000, "total_kv_size_bytes": 250000},
        id="v8-json-log-format",
    ),
    pytest.param(
        "v8_log_start_success.txt",
        {"command": "log start", "success": True, "total_take_seconds": 3.60572121},
        id="v8-log-start",
    ),
    pytest.param(
        "v8_log_metadata.txt",
        {"log_min_ts": 434582449885806593, "log_max_ts": 434834300106964993, "success": None},
        id="v8-log-metadata",
    ),
]


def check(outcome: BROutcome, expected: dict[str, Any]) -> None:
    assert outcome.recognised
    for key, want in expected.items():
        if key == "primary_code":
            assert outcome.primary_error is not None and outcome.primary_error.code == want
        elif key == "primary_source":
            assert outcome.primary_error is not None and outcome.primary_error.source == want
        elif key == "error_count":
            assert len(outcome.errors) == want, outcome.errors
        elif key == "summaries":
            assert [s.command for s in outcome.summaries] == want
        elif key == "warning_contains":
            assert any(want in w for w in outcome.warnings), outcome.warnings
        elif key.startswith("progress_"):
            assert outcome.progress is not None and getattr(outcome.progress, key[9:]) == want
        elif isinstance(want, float):
            assert getattr(outcome, key) == pytest.approx(want, rel=1e-9), key
        else:
            assert getattr(outcome, key) == want, key


@pytest.mark.parametrize(("name", "expected"), EXPECTED)
def test_samples(name: str, expected: dict[str, Any]) -> None:
    check(parse_br_output(sample(name)), expected)


def test_every_br_output_sample_is_covered() -> None:
    covered = {p.values[0] for p in EXPECTED}
    br_samples = {p.name for p in SAMPLES.glob("*.txt") if not p.name.startswith("log_status")}
    assert br_samples == covered


def test_field_order_does_not_matter() -> None:
    line = sample("v8_full_backup_success.txt").splitlines()[2]
    head, _, rest = line.partition('["Full Backup success summary"] ')
    fields = rest.split(" ")
    for seed in range(5):
        random.Random(seed).shuffle(fields)
        shuffled = parse_br_output(f'{head}["Full Backup success summary"] {" ".join(fields)}')
        assert shuffled.backup_ts == 435844546560000000 and shuffled.total_kv_size_bytes == 250000
        assert shuffled.fields == parse_br_output(line).fields  # dict equality ignores order


def test_stdout_plus_log_file_counts_each_summary_once() -> None:
    text = sample("v8_5_pitr_restore_point.txt")
    both = parse_br_output(text + "\n" + text)  # the hook may read stdout and the log file together
    assert [s.command for s in both.summaries] == ["Full Restore", "restore log"]
    assert both.total_take_seconds == pytest.approx(parse_br_output(text).total_take_seconds)


def test_a_big_log_file_is_read_quickly_and_the_summary_at_its_end_found() -> None:
    noise = (
        '[2024/06/05 02:02:01.310 +08:00] [INFO] [client.go:1002] ["backup streaming finish"] [store-id=1] '
        '[range="[7480000000000000FF6F5F72, 7480000000000000FF6F5F73)"] [take=1.234ms]\n'
    )
    text = noise * 100_000 + sample("v8_full_backup_success.txt")
    started = time.monotonic()
    out = parse_br_output(text)
    assert time.monotonic() - started < 3.0
    assert out.success is True and out.backup_ts == 435844546560000000


def test_quoted_values_keep_escapes_brackets_and_equals() -> None:
    out = parse_br_output(
        '[2024/01/01 00:00:00.000 +00:00] [INFO] [collector.go:77] ["Full Backup failed summary"] '
        '[total-ranges=2] [unit-name="range [a=b]"] [error="boom: \\"quoted\\" [x]=y\\nsecond line \\u00e9"] '
        '[unit-name=r2] [error="[BR:KV:ErrKVEpochNotMatch]epoch not match"]'
    )
    assert out.success is False and out.command == "Full Backup"
    assert [(e.unit, e.message) for e in out.errors] == [
        ("range [a=b]", 'boom: "quoted" [x]=y\nsecond line é'),
        ("r2", "[BR:KV:ErrKVEpochNotMatch]epoch not match"),
    ]
    assert out.errors[1].code == "BR:KV:ErrKVEpochNotMatch" and out.errors[1].error_class == "KV"
    assert out.errors[1].message_without_code == "epoch not match"


def test_br_failed_log_record_without_console() -> None:
    out = parse_br_output(
        '[2024/06/02 01:00:02.811 +08:00] [ERROR] [main.go:60] ["br failed"] '
        '[error="context canceled"] [errorVerbose="context canceled\\ngithub.com/pingcap/errors.AddStack"]'
    )
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.message == "context canceled" and out.primary_error.code is None
    assert out.primary_error.source == "log"


def test_an_ordinary_error_log_line_is_not_a_failure() -> None:
    out = parse_br_output(
        '[2024/06/02 01:00:02.811 +08:00] [ERROR] [client.go:1] ["failed to get region, will retry"] [error=x]\n'
        '[2024/06/02 01:00:09.000 +08:00] [INFO] [collector.go:77] ["Full Backup success summary"] [total-ranges=1]'
    )
    assert out.success is True and out.errors == ()


def test_panic_is_a_failure() -> None:
    out = parse_br_output("panic: cannot pass gc safe point check, aborting\n\ngoroutine 1 [running]:\n")
    assert out.success is False and out.primary_error is not None and out.primary_error.source == "panic"


def test_restore_log_failure_after_a_good_snapshot_phase_fails_the_run() -> None:
    out = parse_br_output(
        '[2025/01/01 00:00:01.000 +00:00] [INFO] [collector.go:77] ["Full Restore success summary"] [total-take=1s]\n'
        '[2025/01/01 00:00:02.000 +00:00] [INFO] [collector.go:77] ["restore log failed summary"] '
        '[error="restore log from 1(x) to 2(y),  but the current existed log from 3(z) to 4(w): '
        '[BR:Common:ErrInvalidArgument]invalid argument"]'
    )
    assert out.success is False and out.command == "restore log"
    assert out.primary_error is not None and out.primary_error.code == "BR:Common:ErrInvalidArgument"


def test_nothing_to_backup_result() -> None:
    out = parse_br_output(
        '[2024/01/01 00:00:00.000 +00:00] [INFO] [collector.go:77] ["Full Backup success summary"] '
        '[total-ranges=0] [ranges-succeed=0] [ranges-failed=0] [total-take=1.2s] [Result="Nothing to bakcup"] '
        "[BackupTS=435844546560000000] [total-kv=0] [total-kv-size=0B] [average-speed=0B/s] [Size=0]"
    )
    assert out.success is True and out.result_note == "Nothing to bakcup" and out.total_kv_size_bytes == 0


def test_nan_and_inf_values_are_unknown_not_errors() -> None:
    out = parse_br_output(
        '[2024/01/01 00:00:00.000 +00:00] [INFO] [collector.go:77] ["Full Backup success summary"] '
        "[total-take=0s] [total-kv-size=NaNB] [average-speed=+InfYB/s] [backup-data-size(after-compressed)=NaNB]"
    )
    assert out.success is True
    assert out.total_kv_size_bytes is None and out.average_speed_bytes_per_s is None
    assert out.normalised_fields()["average-speed"] is None
    assert out.to_dict()["average_speed_bytes_per_s"] is None


def test_windows_line_endings_and_ansi() -> None:
    text = sample("v8_full_backup_success.txt").replace("\n", "\r\n")
    coloured = text.replace("Full Backup success summary", "\x1b[1mFull Backup success summary\x1b[0m")
    for variant in (text, coloured):
        out = parse_br_output(variant)
        assert out.success is True and out.backup_ts == 435844546560000000 and out.size_bytes == 71330


def test_detail_log_path_versions() -> None:
    assert parse_br_output("Detail BR log in /tmp/br.log.2023-11-03T22.59.39+0800 \n").log_path == (
        "/tmp/br.log.2023-11-03T22.59.39+0800"
    )
    assert parse_br_output("Detial BR log in /tmp/br.log.x\n").log_path == "/tmp/br.log.x"
    assert parse_br_output("log file: /tmp/old.log\n").log_path == "/tmp/old.log"


def test_truncated_output_keeps_what_is_complete() -> None:
    text = sample("v8_log_pause_failed.txt")
    for cut in range(0, len(text), 37):
        out = parse_br_output(text[:cut])
        assert out.success in (None, False, True)
    half = parse_br_output(text[: text.index("[errorVerbose=") + 30])
    assert half.success is False and half.command == "log pause", "the summary before the cut still counts"


def test_unrecognised_input() -> None:
    for text in ("", "hello world\n", "# just a comment\n", "[not a log] line\n", "\x00\x01\x02", "{}", "[]"):
        out = parse_br_output(text)
        assert out.recognised is False and out.success is None and out.errors == ()


def test_parse_log_metadata() -> None:
    assert parse_log_metadata(sample("v8_log_metadata.txt")) == (434582449885806593, 434834300106964993)
    assert parse_log_metadata(sample("v8_full_backup_success.txt")) is None


VALUE_CASES = [
    pytest.param("250kB", 250_000, id="kB"),
    pytest.param("71.33kB", 71_330, id="fraction-kB"),
    pytest.param("108.7MB", 108_700_000, id="MB"),
    pytest.param("1.2GB", 1_200_000_000, id="GB"),
    pytest.param("327B", 327, id="B"),
    pytest.param("53.02kB/s", 53_020, id="speed"),
    pytest.param("21551", 21_551, id="plain-bytes"),
    pytest.param("1KiB", 1024, id="binary-unit"),
    pytest.param("NaNB", None, id="NaN"),
    pytest.param("NaNB/s", None, id="NaN-speed"),
    pytest.param("+InfYB/s", None, id="Inf"),
    pytest.param("12 apples", None, id="junk"),
    pytest.param("", None, id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), VALUE_CASES)
def test_parse_size(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


DURATION_CASES = [
    pytest.param("4.715509333s", 4.715509333, id="seconds"),
    pytest.param("3.597416ms", 0.003597416, id="ms"),
    pytest.param("842.938µs", 0.000842938, id="micro-sign"),
    pytest.param("842.938μs", 0.000842938, id="greek-mu"),
    pytest.param("1m33.98s", 93.98, id="minutes"),
    pytest.param("22m42.6293174s", 1362.6293174, id="pitr-take"),
    pytest.param("54h58m37s", 197917.0, id="hours"),
    pytest.param("0s", 0.0, id="zero"),
    pytest.param("soon", None, id="junk"),
]


@pytest.mark.parametrize(("text", "expected"), DURATION_CASES)
def test_parse_go_duration(text: str, expected: float | None) -> None:
    got = parse_go_duration(text)
    assert got == (pytest.approx(expected) if expected is not None else None)


FIELD_CASES = [
    pytest.param("BackupTS", "435844546560000000", ("tso", 435844546560000000), id="tso"),
    pytest.param("Size", "71330", ("bytes", 71330), id="size-bytes"),
    pytest.param("total-kv", "1131", ("count", 1131), id="count"),
    pytest.param("total-kv-size", "250kB", ("bytes", 250000), id="human-size"),
    pytest.param("average-speed", "53.02kB/s", ("bytes_per_s", 53020), id="speed"),
    pytest.param("total-take", "1m33.98s", ("seconds", 93.98), id="duration"),
    pytest.param("total size(MB)", "5997.49", ("bytes", round(5997.49 * MIB)), id="v4-MiB"),
    pytest.param("avg speed(Byte/s)", "733.79", ("bytes_per_s", 734), id="v4-bytes-per-second"),
    pytest.param("total take(s)", "0.27", ("seconds", 0.27), id="v4-take-seconds"),
    pytest.param("Result", "Nothing to bakcup", ("text", "Nothing to bakcup"), id="text"),
    pytest.param("average-speed", "NaNB/s", ("bytes_per_s", None), id="nan"),
]


@pytest.mark.parametrize(("key", "value", "expected"), FIELD_CASES)
def test_classify_field(key: str, value: str, expected: tuple[str, object]) -> None:
    kind, got = classify_field(key, value)
    assert kind == expected[0]
    assert got == (pytest.approx(expected[1]) if isinstance(expected[1], float) else expected[1])


# --------------------------------------------------------------------------------------- BRError


def test_br_error_names_the_code_and_message() -> None:
    outcome = parse_br_output(sample("v8_incremental_gc_safepoint.txt"))
    err = BRError(
        exit_code=1, outcome=outcome, stderr_tail="Error: ... &secret-access-key=zzz\n", command="Full Backup"
    )
    text = str(err)
    assert text.startswith("BR Full Backup failed (exit 1): [BR:Backup:ErrBackupGCSafepointExceeded] failed to check")
    assert text.endswith("backup GC safepoint exceeded; detail log: /tmp/br.log.2024-06-01T02.00.03+0800")
    assert err.code == "BR:Backup:ErrBackupGCSafepointExceeded" and err.error_class == "Backup"
    assert "zzz" not in err.stderr_tail, "the stderr tail is redacted again, defensively"
    assert err.outcome is outcome and err.exit_code == 1


def test_br_error_without_a_parsed_error_uses_the_last_stderr_line() -> None:
    err = BRError(exit_code=2, outcome=parse_br_output(""), stderr_tail="starting\nsegmentation fault\n\n")
    assert str(err) == "BR failed (exit 2): no BR error was printed; last stderr line: segmentation fault"
    assert err.code is None and err.message is None


def test_br_error_message_is_redacted() -> None:
    outcome = parse_br_output("Error: cannot open s3://b/p?access-key=AK1&secret-access-key=SK1: denied\n")
    text = str(BRError(exit_code=1, outcome=outcome))
    assert "SK1" not in text and "AK1" not in text and "secret-access-key=***" in text


def test_br_error_mentions_not_fresh() -> None:
    err = BRError(exit_code=1, outcome=parse_br_output(sample("v8_restore_not_fresh.txt")))
    assert "ErrRestoreNotFreshCluster" in str(err) and "not fresh" in str(err)


# ----------------------------------------------------------------------------------------- fuzzing


ALPHABET = '[]="\\\r\n :%<>-./#●○µ{}abcdefINFOERRWARBackupTS=0123456789 \x1b\x00\t'
SEEDS = [sample(p.name) for p in sorted(SAMPLES.glob("*.txt"))]


def mutate(rng: random.Random, text: str) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return text[: rng.randrange(len(text) + 1)]
    if choice == 1:
        i = rng.randrange(len(text) + 1)
        return text[:i] + "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 40))) + text[i:]
    if choice == 2:
        i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        return text[:i] + text[j:]
    if choice == 3:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(400))).decode("utf-8", errors="replace")
    if choice == 4:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(400)))
    a, b = rng.choice(SEEDS), rng.choice(SEEDS)
    return a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1) :]


def test_fuzz_never_raises() -> None:
    rng = random.Random(20240601)  # seeded: a failure reproduces
    for _ in range(3000):
        text = mutate(rng, rng.choice(SEEDS))
        out = parse_br_output(text)
        assert out.success in (True, False, None)
        out.to_dict()  # rendering must not fail either
        out.normalised_fields()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('[a="' * 20000, id="unterminated-quotes"),
        pytest.param("[" * 200000, id="open-brackets"),
        pytest.param("[k=" * 60000, id="keys-without-close"),
        pytest.param('[2024/01/01 00:00:00.000 +00:00] [INFO] [x] ["y"] ' * 5000, id="many-glued-records"),
        pytest.param('[2024/01/01 00:00:00.000 +00:00] [INFO] [x] ["a summary"] ' + '[k="\\\\' * 30000, id="escapes"),
        pytest.param("Full Backup <" + "-" * 100000, id="unclosed-bar"),
        pytest.param("x\r" * 100000, id="many-redraws"),
    ],
)
def test_pathological_input_is_linear(text: str) -> None:
    started = time.monotonic()
    parse_br_output(text)
    assert time.monotonic() - started < 3.0


def test_an_error_continued_on_caused_by_lines_keeps_its_code() -> None:
    """The S3 SDK's errors span lines ("…send request failed\\ncaused by: …"); BR's code is on the last one."""
    out = parse_br_output(
        "Detail BR log in /tmp/br.log\n"
        "Error: failed to put s3 file, file info: input.bucket='b', input.key='prod/full/x/backupmeta': "
        "RequestError: send request failed\n"
        'caused by: Put "http://127.0.0.1:9000/b/prod/full/x/backupmeta": dial tcp 127.0.0.1:9000: '
        "connect: connection refused: [BR:ExternalStorage:ErrStorageUnknown]unknown external storage error\n"
    )
    err = out.primary_error
    assert err is not None and err.code == "BR:ExternalStorage:ErrStorageUnknown" and err.source == "stderr"
    assert "send request failed\ncaused by: Put" in err.message and len(out.errors) == 1


def test_caused_by_without_an_open_error_is_not_glued_to_anything() -> None:
    out = parse_br_output("[2026/11/22 06:53:08.593 +00:00] [INFO] [x.go:1] [hello]\ncaused by: nothing\n")
    assert out.errors == () or list(out.errors) == []
