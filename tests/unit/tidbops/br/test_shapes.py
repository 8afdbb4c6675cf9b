"""BR's output as it really reaches operators (#19): the same verdict, error code, figures and log status
whatever shape it arrives in, through ``parse_br_output`` / ``parse_log_status`` (the functions behind the
BR hook, the triggerer's log-status poll and ``tidbops br parse``).

Every input is written by ``brtext`` the way BR's source writes it (pingcap/log's encoder, the summary
collector of each era, stream_status.go's table, cobra's ``Error:``, Go's ``panic:``), then carried the
way collectors carry it. Nothing here is pasted from an issue, nor produced by our emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.tidbops.br.brtext import (
    CARRIERS,
    bullet,
    klog,
    klog_stderr,
    pingcap_line,
    status_output,
    tty_bar,
)
from tidbops.br.errors import BRError
from tidbops.br.output import BROutcome, parse_br_output, parse_log_status

pytestmark = pytest.mark.unit

MIB = 1024 * 1024
DETAIL = "Detail BR log in /tmp/br.log.2024-09-17T21.22.11+0000 "  # BR prints it with a trailing space

# ------------------------------------------------------------------------------- BR v8, as printed

BACKUP_OK = "\n".join(
    [
        DETAIL,
        pingcap_line(
            "Full Backup success summary",
            [
                ("total-ranges", 212),
                ("ranges-succeed", 212),
                ("ranges-failed", 0),
                ("backup-total-ranges", 9),
                ("backup-total-regions", 174),
                ("total-take", "14.802211375s"),
                ("BackupTS", 452620014432583681),
                ("total-kv", 71288034),
                ("total-kv-size", "11.92GB"),
                ("average-speed", "805.3MB/s"),
                ("backup-data-size(after-compressed)", "4.104GB"),
                ("Size", 4104447012),
            ],
            caller="collector.go:264",
        ),
    ]
)

VERBOSE = (
    "[BR:Restore:ErrRestoreChecksumMismatch]restore checksum mismatch\nfailed to validate checksum\n"
    "github.com/pingcap/errors.AddStack\n\t/root/go/pkg/mod/github.com/pingcap/errors/errors.go:178"
)
RESTORE_CHECKSUM_FAILED = "\n".join(
    [
        # stdout: the failed summary (every count 0: the checksum failed after the ranges were counted out)
        pingcap_line(
            "Full Restore failed summary",
            [("total-ranges", 0), ("ranges-succeed", 0), ("ranges-failed", 0), ("split-region", "2.104951ms")],
            time="2024/09/17 21:40:06.128 +00:00",
        ),
        # stderr: the detail log path, then cobra's error
        DETAIL,
        "Error: failed to validate checksum: [BR:Restore:ErrRestoreChecksumMismatch]restore checksum mismatch",
    ]
)

RESTORE_NOT_FRESH = "\n".join(
    [
        "#######################################################################",
        "# the target cluster is not fresh, cannot restore.",
        "# you can drop existing databases and tables and start restore again",
        "#######################################################################",
        DETAIL,
        "Error: user db/tables: shop, orders: [BR:Restore:ErrRestoreNotFreshCluster]cluster is not fresh",
    ]
)

PITR_OK = "\n".join(
    [
        DETAIL,
        pingcap_line(
            "Full Restore success summary",
            [
                ("total-ranges", 40),
                ("ranges-succeed", 40),
                ("ranges-failed", 0),
                ("split-region", "301.1ms"),
                ("restore-ranges", 26),
                ("total-take", "38.2109s"),
                ("restore-data-size(after-compressed)", "88.61MB"),
                ("Size", 88613054),
                ("BackupTS", 452619961892864000),
                ("total-kv", 1801122),
                ("total-kv-size", "301.4MB"),
                ("average-speed", "7.888MB/s"),
            ],
        ),
        pingcap_line(
            "restore log success summary",
            [
                ("total-take", "1m2.55s"),
                ("source-start-point", 452619961892864000),
                ("source-end-point", 452621534289362944),
                ("target-end-point", 452621600000000000),
                ("source-start", "2024-09-17 21:22:10.93 +0000"),
                ("source-end", "2024-09-17 23:02:09.03 +0000"),
                ("target-end", "2024-09-17 23:06:19.65 +0000"),
                ("total-kv-count", 120044),
                ("skipped-kv-count-by-checkpoint", 0),
                ("total-size", "38.21MB"),
                ("skipped-size-by-checkpoint", "0B"),
                ("average-speed", "610.5kB/s"),
            ],
            time="2024/09/17 23:07:21.902 +00:00",
        ),
    ]
)

CANONICAL = {
    "backup-ok": BACKUP_OK,
    "restore-checksum-failed": RESTORE_CHECKSUM_FAILED,
    "restore-not-fresh": RESTORE_NOT_FRESH,
    "pitr-ok": PITR_OK,
}


def test_the_canonical_outputs_read_as_br_meant_them() -> None:
    ok = parse_br_output(BACKUP_OK)
    assert (ok.success, ok.command, ok.backup_ts, ok.size_bytes) == (
        True,
        "Full Backup",
        452620014432583681,
        4104447012,
    )
    assert ok.total_kv_size_bytes == 11_920_000_000 and ok.total_take_seconds == pytest.approx(14.802211375)
    failed = parse_br_output(RESTORE_CHECKSUM_FAILED)
    assert failed.success is False and failed.command == "Full Restore" and failed.ranges_failed == 0
    fresh = parse_br_output(RESTORE_NOT_FRESH)
    assert fresh.success is False and fresh.not_fresh
    pitr = parse_br_output(PITR_OK)
    assert pitr.success is True and [s.command for s in pitr.summaries] == ["Full Restore", "restore log"]
    assert pitr.restore_end_ts == 452621534289362944


# ----------------------------------------------------------------------------- foreign prefixes


@pytest.mark.parametrize("carrier", list(CARRIERS), ids=list(CARRIERS))
@pytest.mark.parametrize("name", list(CANONICAL), ids=list(CANONICAL))
def test_a_carried_output_reads_as_the_bare_one(name: str, carrier: str) -> None:
    """klog headers, CI's ``*** ``, Docker's json-file, CRI lines (also split ones), Airflow's JSON log,
    the whole output in one JSON string or a logfmt ``msg="…"``: the outcome is the bare output's."""
    bare = CANONICAL[name]
    assert parse_br_output(CARRIERS[carrier](bare)).to_dict() == parse_br_output(bare).to_dict()


def test_operator_backup_pod_log() -> None:
    """TiDB Operator's backup-manager: each stdout line through ``klog.Info`` (the summary behind a klog
    header, with or without the thread id's padding), then stderr as one ``klog.Info`` message."""
    summary = BACKUP_OK.split("\n")[1]
    for header in ("I0917 21:22:22.694198       9 backup.go:306] ", "I0917 21:22:22.694198 9 backup.go:306] "):
        out = parse_br_output(header + summary)
        assert out.success is True and out.backup_ts == 452620014432583681 and out.size_bytes == 4104447012
    pod = klog(RESTORE_CHECKSUM_FAILED.split("\n")[0], file="restore.go", line=152) + "\n"
    pod += klog_stderr("\n".join(RESTORE_CHECKSUM_FAILED.split("\n")[1:]))
    out = parse_br_output(pod)
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.code == "BR:Restore:ErrRestoreChecksumMismatch" and out.primary_error.source == "stderr"
    assert out.log_path == "/tmp/br.log.2024-09-17T21.22.11+0000"


def test_an_error_behind_a_klog_header_on_its_own_line() -> None:
    out = parse_br_output(klog_stderr("Error: [BR:Backup:ErrBackupGCSafepointExceeded]backup GC safepoint exceeded"))
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.code == "BR:Backup:ErrBackupGCSafepointExceeded"


def test_the_docs_elided_summary() -> None:
    """Docs and CI logs elide a record's header with ``***``: the summary's fields still count."""
    out = parse_br_output('*** ["Full Restore success summary"] *** [total-take=4.344617542s] [total-kv=5] [Size=4813]')
    assert out.success is True and out.command == "Full Restore"
    assert (out.total_kv, out.size_bytes) == (5, 4813) and out.total_take_seconds == pytest.approx(4.344617542)


# --------------------------------------------------------------------- summaries of BR v4.0 and older

# pingcap/br pkg/summary/collector.go, v3.1.0-beta…v4.0.0-beta: "<cmd> summary: " + the figures in the
# message on success; on failure the bare "<cmd> summary" and a zap.Strings field whose key holds the
# counts. Command names from cmd/backup.go and cmd/restore.go of that time.
V3 = "2020/01/14 15:48:59.613 +08:00"


def v3_success(cmd: str, counts: str, extra: str, fields: list[tuple[str, object]]) -> str:
    return pingcap_line(f"{cmd} summary: {counts}, {extra}", fields, time=V3, caller="collector.go:165")


def v3_failure(cmd: str, counts: str, units: list[str], fields: list[tuple[str, object]]) -> str:
    return pingcap_line(f"{cmd} summary", [*fields, (counts, units)], time=V3, caller="collector.go:142")


OLD_SUMMARIES: list[Any] = [
    pytest.param(
        v3_success(
            "Restore database",
            "total restore tables: 2, success tables: 2, failed tables: 0",
            "total take(s): 3.71, total kv: 40000, total size(MB): 12.45, avg speed(MB/s): 3.36",
            [("restore files", 4), ("restore ranges", 4), ("split region", "48.218ms")],
        ),
        {
            "command": "Restore database",
            "success": True,
            "ranges_total": 2,
            "ranges_succeeded": 2,
            "ranges_failed": 0,
            "total_take_seconds": 3.71,
            "total_kv": 40000,
            "total_kv_size_bytes": round(12.45 * MIB),
            "average_speed_bytes_per_s": round(3.36 * MIB),
        },
        id="restore-database-success-tables",
    ),
    pytest.param(
        v3_success(
            "Restore database",
            "total restore tables: 3, success tables: 2, failed tables: 1",
            "total take(s): 2.05",
            [("restore files", 6)],
        ),
        {"command": "Restore database", "success": False, "ranges_total": 3, "ranges_failed": 1},
        id="restore-database-a-failed-table",
    ),
    pytest.param(
        v3_success(
            "Full backup",
            "total backup ranges: 3, success ranges: 3, failed ranges: 0",
            "total take(s): 1.35, total kv: 200000, total size(Byte): 913504, avg speed(Byte/s): 676669.63",
            [("backup total regions", 3), ("backup checksum", "25.381ms"), ("backup fast checksum", "1.802ms")],
        ),
        {
            "command": "Full backup",
            "success": True,
            "ranges_total": 3,
            "ranges_failed": 0,
            "total_kv_size_bytes": 913504,
            "average_speed_bytes_per_s": 676670,
            "checksum_seconds": 0.025381,
            "backup_total_regions": 3,
        },
        id="full-backup-success-ranges",
    ),
    pytest.param(
        v3_success(
            "Full backup",
            "total backup ranges: 4, success ranges: 3, failed ranges: 1",
            "total take(s): 0.92",
            [],
        ),
        {"command": "Full backup", "success": False, "ranges_total": 4, "ranges_succeeded": 3, "ranges_failed": 1},
        id="full-backup-a-failed-range",
    ),
    pytest.param(
        v3_success(
            "Full backup",
            "total backup ranges: 2, total success: 2, total failed: 0",
            "total take(s): 1.45, total size(MB): 52.21, avg speed(MB/s): 36.01, total kv: 1000000",
            [("backup total regions", 2)],
        ),
        {"command": "Full backup", "success": True, "ranges_total": 2, "ranges_failed": 0, "total_kv": 1000000},
        id="v3.1-beta-total-success",
    ),
    pytest.param(
        v3_failure(
            "Restore database",
            "total restore tables: 2, total success: 1, total failed: 1, failed tables",
            ["shop.orders"],
            [("restore files", 4), ("restore ranges", 4)],
        ),
        {
            "command": "Restore database",
            "success": False,
            "ranges_total": 2,
            "ranges_succeeded": 1,
            "ranges_failed": 1,
            "failed_units": ("shop.orders",),
        },
        id="v4-quoted-field-failed-tables",
    ),
    pytest.param(
        v3_failure(
            "Full backup",
            "total backup ranges: 3, total success: 1, total failed: 2, failed ranges",
            ["range start:7480000000000000ff3e5f720000000000fa end:7480000000000000ff3e5f72ffffffffff", "r2 x"],
            [("backup total regions", 3)],
        ),
        {
            "command": "Full backup",
            "success": False,
            "ranges_total": 3,
            "ranges_failed": 2,
            "failed_units": (
                "range start:7480000000000000ff3e5f720000000000fa end:7480000000000000ff3e5f72ffffffffff",
                "r2 x",
            ),
        },
        id="v4-quoted-field-failed-ranges-quoted-items",
    ),
]


@pytest.mark.parametrize(("line", "expected"), OLD_SUMMARIES)
def test_summaries_of_br_v4_and_older(line: str, expected: dict[str, Any]) -> None:
    out = parse_br_output(line)
    assert out.recognised
    for key, want in expected.items():
        got = out.summaries[-1].failed_units if key == "failed_units" else getattr(out, key)
        assert got == (pytest.approx(want) if isinstance(want, float) else want), key


def test_a_v4_quoted_failure_then_cobras_error() -> None:
    text = v3_failure(
        "Restore table",
        "total restore tables: 1, total success: 0, total failed: 1, failed tables",
        ["shop.orders"],
        [],
    )
    out = parse_br_output(text + "\nError: [BR:KV:ErrKVDownloadFailed]download sst failed\n")
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.code == "BR:KV:ErrKVDownloadFailed" and out.ranges_failed == 1


# ------------------------------------------------------------- a failed summary that counts no failure


def test_a_failed_summary_with_zero_counts_is_a_failure_and_the_later_error_explains_it() -> None:
    out = parse_br_output(RESTORE_CHECKSUM_FAILED)
    assert out.success is False
    assert (out.ranges_total, out.ranges_succeeded, out.ranges_failed) == (0, 0, 0)
    assert out.primary_error is not None and out.primary_error.source == "stderr"
    assert out.primary_error.code == "BR:Restore:ErrRestoreChecksumMismatch"
    alone = parse_br_output(RESTORE_CHECKSUM_FAILED.split("\n")[0])  # stdout only: the error not read yet
    assert alone.success is False and alone.primary_error is None


# -------------------------------------------------------------------- errors in a log record's field


@pytest.mark.parametrize(
    ("code", "annotation", "text"),
    [
        pytest.param(
            "BR:Restore:ErrRestoreChecksumMismatch", "failed to validate checksum", "restore checksum mismatch"
        ),
        pytest.param(
            "BR:restore:ErrRestoreNotFreshCluster", "user db/tables: shop", "cluster is not fresh", id="lower"
        ),
    ],
)
def test_an_error_inside_a_structured_log_line(code: str, annotation: str, text: str) -> None:
    error = f"{annotation}: [{code}]{text}"
    line = pingcap_line(
        "failed to restore", [("error", error), ("errorVerbose", f"[{code}]{text}\n{annotation}")], level="ERROR"
    )
    for shape in (line, CARRIERS["docker-json-file"](line), CARRIERS["json-string"](line), klog(line)):
        out = parse_br_output(shape)
        assert out.success is False and out.primary_error is not None
        err = out.primary_error
        assert (err.code, err.error_class, err.message, err.source) == (code, code.split(":")[1], error, "log")
    assert parse_br_output(line).not_fresh is ("NotFresh" in code)


# ----------------------------------------------------------------------------------- bare errors


def test_bare_error_text_keeps_the_code_as_printed() -> None:
    text = "restore of cluster uat failed: [BR:restore:ErrRestoreNotFreshCluster]cluster is not fresh"
    out = parse_br_output(text)
    assert out.recognised and out.success is False and out.not_fresh
    err = out.primary_error
    assert err is not None and (err.code, err.error_class, err.source) == (
        "BR:restore:ErrRestoreNotFreshCluster",
        "restore",
        "text",
    )
    assert err.message == text and err.message_without_code.endswith("failed: cluster is not fresh")
    assert "not fresh" in str(BRError(exit_code=1, outcome=out))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("the target cluster is not fresh, cannot restore.", id="one-line"),
        pytest.param(
            "############ # the target cluster is not fresh, cannot restore. # you can drop existing databases "
            "and tables and start restore again ############",
            id="banner-joined-into-one-line",
        ),
        pytest.param(klog("# the target cluster is not fresh, cannot restore."), id="behind-klog"),
    ],
)
def test_the_older_not_fresh_wording_is_a_refusal(text: str) -> None:
    out = parse_br_output(text)
    assert out.success is False and out.not_fresh
    assert "the target cluster is not fresh, cannot restore." in out.banners
    assert out.primary_error is not None and out.primary_error.message.startswith("the target cluster is not fresh")


def test_a_code_inside_an_ordinary_log_record_is_no_failure() -> None:
    """A WARN that BR retries carries a code too; it stays a warning."""
    warn = pingcap_line(
        "download file failed, retry later",
        [("error", "[BR:KV:ErrKVDownloadFailed]download sst failed")],
        level="WARN",
        caller="import.go:520",
    )
    out = parse_br_output(warn + "\n" + BACKUP_OK)
    assert out.success is True and out.errors == ()


# ----------------------------------------------------------------------------------------- panics


PANIC = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x5a1e2c7]\n\n"
    "goroutine 1418 [running]:\n"
    "github.com/pingcap/tidb/br/pkg/restore/snap_client.(*SnapClient).RestoreTables(0xc000f2a000)\n"
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(PANIC, id="alone"),
        pytest.param(DETAIL + "\n" + tty_bar("Full Restore", 12.5) + tty_bar("Full Restore", 45.12) + PANIC, id="bar"),
        pytest.param(DETAIL + "\n" + tty_bar("Full Restore", 45.12) + " " + PANIC, id="bar-then-space"),
        pytest.param(
            "\n".join(
                [pingcap_line("progress", [("step", "Full Restore"), ("progress", "45.12%")])] * 3
                + [pingcap_line("restore table", [("take", "2.1s")]), PANIC]
            ),
            id="after-log-progress",
        ),
        pytest.param(PANIC.replace("\n[signal", " [recovered]\n\tpanic: second\n[signal"), id="recovered"),
        pytest.param(klog_stderr(DETAIL + "\n" + PANIC), id="klog"),
    ],
)
def test_a_go_panic_anywhere_is_a_failure_with_its_message(text: str) -> None:
    out = parse_br_output(text)
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.source == "panic"
    assert out.primary_error.message.startswith("runtime error: invalid memory address or nil pointer dereference")


def test_a_runtime_fatal_error_is_a_failure() -> None:
    out = parse_br_output(tty_bar("Full Backup", 80.0) + "\nfatal error: runtime: out of memory\n\nruntime stack:\n")
    assert out.success is False and out.primary_error is not None
    assert (out.primary_error.message, out.primary_error.source) == ("runtime: out of memory", "panic")


# ------------------------------------------------------------------------ ingest / epoch not match

# pingcap/br pkg/restore/import.go: log.Error("ingest file failed", file, range, region, zap.Error(err));
# backoff.go retries it (16 times for "epoch not match", ErrIngestFailed, …) before BR gives up.
INGEST_V4 = pingcap_line(
    "ingest file failed",
    [
        ("file", "{name=5_2_31_5d8e…_1593741239786_write.sst, CF=write, sha256=…, startKey=…, endKey=…}"),
        ("range", "{start=7480000000000000325f72, end=7480000000000000325f72ffffffffff}"),
        ("region", '{ID=2072, startKey=7480000000000000FF325F72, endKey=, epoch="conf_ver:5 version:61 "}'),
        ("error", "epoch not match"),
    ],
    level="ERROR",
    caller="import.go:324",
    time="2020/07/03 10:41:05.517 +08:00",
)
INGEST_V8 = pingcap_line(
    "ingest file failed",
    [("files", "[…]"), ("region", "{ID=8024}"), ("error", "[BR:KV:ErrKVEpochNotMatch]epoch not match")],
    level="ERROR",
    caller="import.go:410",
)


@pytest.mark.parametrize("line", [INGEST_V4, INGEST_V8], ids=["v4", "v8"])
def test_an_ingest_failure_is_a_failure_with_that_cause(line: str) -> None:
    out = parse_br_output(tty_bar("Full Restore", 62.5) + "\n" + line)
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.source == "log"
    assert (
        out.primary_error.message.startswith("ingest file failed: ") and "epoch not match" in out.primary_error.message
    )
    if "BR:KV" in line:
        assert out.primary_error.code == "BR:KV:ErrKVEpochNotMatch"


def test_an_epoch_not_match_error_record_is_a_failure() -> None:
    line = pingcap_line("split region failed", [("error", "[BR:KV:ErrKVEpochNotMatch]epoch not match")], level="ERROR")
    out = parse_br_output(line)
    assert out.success is False and out.primary_error is not None
    assert out.primary_error.code == "BR:KV:ErrKVEpochNotMatch"


def test_an_ingest_failure_br_retried_past_is_a_warning() -> None:
    """BR retries ingest; a success summary after the failure says the retry got through."""
    ok = pingcap_line("Full Restore success summary", [("total-ranges", 3), ("ranges-failed", 0)])
    out = parse_br_output(INGEST_V8 + "\n" + ok)
    assert out.success is True and out.errors == ()
    assert any(w.startswith("retried: ingest file failed") for w in out.warnings)
    later = parse_br_output(ok + "\n" + INGEST_V8)  # PITR: the snapshot phase passed, the log phase failed
    assert later.success is False


# ------------------------------------------------------------------------------------ log status

PAUSED = [
    ("name", "pitr-prod"),
    ("status", bullet("PAUSE")),
    ("start", "2026-11-30 09:00:00.012 +0800"),
    ("end", "2090-11-18 22:07:45.624 +0800"),
    ("storage", "s3://tidbops-backups/prod/log-backup/cluster-7f3b2e9d41ac4b08a1f2c6d3e5b7a9c0/pitr"),
    ("speed(est.)", "0.00 ops/s"),
    ("checkpoint[global]", "2026-12-01 01:59:58.5 +0800; gap=14m2s"),
    ("pause-time", "2026-12-01 02:00:03.118270339 +0800 CST"),
    ("pause-operator", "airflow-worker-2"),
    ("pause-operator-pid", "48211"),
    ("pause-payload", "paused for storage maintenance"),
]
ERRORED = [
    ("name", "pitr-uat"),
    ("status", bullet("ERROR", colour=True)),
    ("start", "2026-11-30 09:00:00 +0800"),
    ("storage", "s3://tidbops-backups/uat/log"),
    ("speed(est.)", "0.00 ops/s"),
    ("checkpoint[global]", "2026-12-01 01:40:12.25 +0800; gap=33m49s"),
    ("error[store=4]", "KV:LogBackup:RaftReq"),
    ("error-happen-at[store=4]", "2026-12-01 01:41:00.5 +0800; gap=33m1s"),
    (
        "error-message[store=4]",
        "retry time exceeds: and error failed to get initial snapshot: failed to get the snapshot "
        '(region_id = 61204): Error during requesting raftstore: message: "read index not ready, '
        'reason can not read index due to merge, region 61204" read_index_not_ready { reason: '
        '"can not read index due to merge" region_id: 61204 }',
    ),
]
STATUS = status_output([PAUSED, ERRORED])


def _tasks(text: str) -> list[dict[str, Any]]:
    return [t.to_dict() for t in parse_log_status(text)]


def test_the_log_status_table_as_printed() -> None:
    paused, errored = parse_log_status(STATUS)
    assert (paused.name, paused.status, errored.name, errored.status) == ("pitr-prod", "PAUSE", "pitr-uat", "ERROR")
    assert paused.storage == dict(PAUSED)["storage"], "a value wrapped at 80 columns reads whole"
    assert paused.pause["pause-operator-pid"] == "48211" and paused.gap_seconds == 14 * 60 + 2
    [err] = errored.errors
    assert (
        err.store_id == 4
        and err.code == "KV:LogBackup:RaftReq"
        and err.message == dict(ERRORED)["error-message[store=4]"]
    )


JOINS: dict[str, Callable[[str], str]] = {
    "space": lambda t: " ".join(t.splitlines()),
    "nothing": lambda t: "".join(t.splitlines()),
    "space-behind-klog": lambda t: klog(" ".join(t.splitlines())),
    "space-in-docker-json": lambda t: CARRIERS["docker-json-file"](" ".join(t.splitlines())),
}


@pytest.mark.parametrize("join", list(JOINS), ids=list(JOINS))
def test_a_log_status_table_joined_into_one_line(join: str) -> None:
    """Collectors that join a multi-line message: rows, wrapped values and bullets read as in the table."""
    joined = JOINS[join](STATUS)
    assert "\n" not in joined.strip() or join.startswith("space-in")
    assert _tasks(joined) == _tasks(STATUS)


def test_an_error_message_with_a_key_in_it_stays_one_value() -> None:
    message = "failed: name: x status: NORMAL start: never end: soon storage: none"
    rows = [*ERRORED[:3], ("storage", "local:///backups/log"), *ERRORED[4:7], ("error-message[store=4]", message)]
    [task] = parse_log_status(" ".join(status_output([rows]).splitlines()))
    assert task.status == "ERROR" and task.end_ts is None and task.storage == "local:///backups/log"
    assert task.errors[0].message == message


@pytest.mark.parametrize("carrier", list(CARRIERS), ids=list(CARRIERS))
def test_a_carried_log_status_reads_as_the_bare_one(carrier: str) -> None:
    assert _tasks(CARRIERS[carrier](STATUS)) == _tasks(STATUS)


@pytest.mark.parametrize(
    ("word", "colour", "expected"),
    [
        ("NORMAL", False, "NORMAL"),
        ("PAUSE", False, "PAUSE"),
        ("ERROR", False, "ERROR"),
        ("NORMAL", True, "NORMAL"),
        ("PAUSE", True, "PAUSE"),
        ("ERROR", True, "ERROR"),
    ],
)
def test_the_status_word_behind_its_bullet(word: str, colour: bool, expected: str) -> None:
    rows = [("name", "t"), ("status", bullet(word, colour=colour)), ("checkpoint[global]", "2026-12-01 01:00:00 +0000")]
    for text in (status_output([rows]), " ".join(status_output([rows]).splitlines())):
        [task] = parse_log_status(text)
        assert task.status == expected


# ------------------------------------------------------------------------------ one reading for all


def test_the_hooks_input_and_br_parse_agree(tmp_path: Any) -> None:
    """The BR hook parses ``stdout + "\\n" + stderr``; a pod log carries the same lines: one outcome."""
    stdout, stderr = RESTORE_NOT_FRESH.split("\n")[:4], RESTORE_NOT_FRESH.split("\n")[4:]
    hook: BROutcome = parse_br_output("\n".join(stdout) + "\n" + "\n".join(stderr))
    pod = parse_br_output(klog("\n".join(stdout), file="restore.go") + "\n" + klog_stderr("\n".join(stderr)))
    assert hook.to_dict() == pod.to_dict()
    assert hook.primary_error is not None and hook.primary_error.code == "BR:Restore:ErrRestoreNotFreshCluster"
