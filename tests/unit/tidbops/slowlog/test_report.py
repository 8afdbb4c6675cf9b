"""The daily report: top-N, new digests, regressions, plan changes, guardrails per TiDB version."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from tidbops.slowlog.aggregate import DigestKey, DigestStats, aggregate_entries, aggregate_files
from tidbops.slowlog.parser import SlowQueryEntry, parse_slow_log_time
from tidbops.slowlog.report import (
    Guardrail,
    PlanChange,
    Regression,
    ReportOptions,
    binding_sql,
    build_report,
    guardrails_for,
    is_appliable_statement,
    is_select,
    parse_tidb_version,
    printable,
    query_watch_sql,
    render_text,
    with_max_execution_time,
)
from tidbops_playground.slowlog_gen import generate

pytestmark = pytest.mark.unit

DAY = "2026-11-08"
D1 = "a" * 64
D2 = "b" * 64
P_OLD = "1" * 64
P_NEW = "2" * 64


def day_before(n: int) -> str:
    return (date.fromisoformat(DAY) - timedelta(days=n)).isoformat()


def entries(
    day: str,
    digest: str,
    times: list[float],
    *,
    plan: str = P_OLD,
    sql: str = "SELECT * FROM t WHERE id = 1;",
) -> list[SlowQueryEntry]:
    at = parse_slow_log_time(f"{day}T12:00:00Z")
    return [
        SlowQueryEntry(
            time=at + i,
            day=day,
            utc_offset=0,
            query_time=t,
            digest=digest,
            plan_digest=plan,
            db="shop",
            user="app",
            host="h",
            sql=sql,
        )
        for i, t in enumerate(times)
    ]


def table_of(*groups: list[SlowQueryEntry]) -> dict[DigestKey, DigestStats]:
    return aggregate_entries([e for g in groups for e in g], "tidb-1").stats


def baseline(digest: str, per_day: list[float], days: int = 7, **kwargs: object) -> list[SlowQueryEntry]:
    return [e for n in range(1, days + 1) for e in entries(day_before(n), digest, per_day, **kwargs)]  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ top-N
def test_top_is_ordered_by_total_time_and_shares_add_up() -> None:
    rows = table_of(
        entries(DAY, D1, [1.0] * 10),
        entries(DAY, D2, [5.0] * 3),
        entries(DAY, "c" * 64, [0.5] * 2),
    )
    report = build_report(rows, DAY, options=ReportOptions(top_n=2))
    assert [s.digest for s in report.top] == [D2, D1]
    assert report.top[0].total_query_time == 15.0 and report.top[0].count == 3
    assert report.totals["entries"] == 15 and report.totals["digests"] == 3
    assert report.totals["query_time"] == 26.0
    assert report.top[0].share == pytest.approx(15 / 26)
    assert "no baseline data" in " ".join(report.notes)
    assert report.new_digests == () and report.regressions == ()


def test_top_merges_plans_dbs_and_users_of_a_digest() -> None:
    rows = table_of(entries(DAY, D1, [1.0] * 3), entries(DAY, D1, [2.0] * 3, plan=P_NEW))
    (summary,) = build_report(rows, DAY).top
    assert summary.count == 6 and summary.plans == tuple(sorted([P_OLD, P_NEW]))
    assert summary.avg_query_time == 1.5 and summary.instances == ("tidb-1",)


# --------------------------------------------------------------------------------------- new digests
def test_new_digests_are_those_missing_from_the_baseline() -> None:
    rows = table_of(baseline(D1, [1.0] * 10), entries(DAY, D1, [1.0] * 10), entries(DAY, D2, [1.0]))
    report = build_report(rows, DAY)
    assert [s.digest for s in report.new_digests] == [D2]
    assert report.baseline == tuple(day_before(n) for n in range(7, 0, -1))
    assert report.notes == ()


def test_baseline_older_than_the_window_does_not_count() -> None:
    rows = table_of(entries(day_before(8), D2, [1.0]), entries(day_before(1), D1, [1.0]), entries(DAY, D2, [1.0]))
    report = build_report(rows, DAY)
    assert [s.digest for s in report.new_digests] == [D2]
    assert "baseline has 1 of 7 days" in report.notes


# --------------------------------------------------------------------------------------- regressions
@pytest.mark.parametrize(
    ("today", "flagged", "metric"),
    [
        ([2.0] * 20, True, "avg+p95"),
        ([1.9] * 20, False, ""),  # p95 is within 1 % either way: stay clear of the 2x edge
        ([1.0] * 18 + [30.0, 30.0], True, "avg+p95"),
        ([1.0] * 18 + [2.5, 2.5], True, "p95"),
        ([1.0] * 19 + [25.0], True, "avg"),
        ([5.0] * 9, False, ""),
    ],
    ids=["avg-and-p95-doubled", "just-below", "tail-explodes", "p95-only", "avg-only", "too-few-today"],
)
def test_regression_thresholds(today: list[float], flagged: bool, metric: str) -> None:
    rows = table_of(baseline(D1, [1.0] * 10), entries(DAY, D1, today))
    report = build_report(rows, DAY, options=ReportOptions(regression_factor=2.0, min_count=10))
    assert bool(report.regressions) == flagged
    if flagged:
        (reg,) = report.regressions
        assert reg.metric == metric
        assert (reg.baseline_avg, reg.count, reg.baseline_count) == (1.0, len(today), 70)
        assert reg.ratio == max(reg.avg / reg.baseline_avg, reg.p95 / reg.baseline_p95)


def test_regression_needs_enough_baseline_executions() -> None:
    rows = table_of(baseline(D1, [1.0], days=7), entries(DAY, D1, [5.0] * 20))
    assert build_report(rows, DAY, options=ReportOptions(min_count=10)).regressions == ()
    assert len(build_report(rows, DAY, options=ReportOptions(min_count=7)).regressions) == 1


# -------------------------------------------------------------------------------------- plan changes
@pytest.mark.parametrize(
    ("new_times", "changed"),
    [([3.0] * 5, True), ([1.4] * 5, False), ([3.0] * 2, False)],
    ids=["slower-new-plan", "not-slow-enough", "too-few"],
)
def test_plan_changes(new_times: list[float], changed: bool) -> None:
    rows = table_of(
        baseline(D1, [1.0] * 5, plan=P_OLD),
        baseline(D1, [2.0] * 5, plan="9" * 64),
        entries(DAY, D1, new_times, plan=P_NEW),
    )
    report = build_report(rows, DAY, options=ReportOptions(plan_change_factor=1.5, plan_min_count=3))
    assert bool(report.plan_changes) == changed
    if changed:
        (change,) = report.plan_changes
        assert (change.new_plan, change.best_plan, change.best_avg, change.new_avg) == (P_NEW, P_OLD, 1.0, 3.0)
        assert change.ratio == 3.0


def test_known_alternative_plans_are_not_plan_changes() -> None:
    rows = table_of(
        baseline(D1, [1.0] * 5, plan=P_OLD),
        baseline(D1, [3.0] * 5, plan=P_NEW),
        entries(DAY, D1, [3.0] * 5, plan=P_NEW),
    )
    assert build_report(rows, DAY).plan_changes == ()


# ---------------------------------------------------------------------------------------- guardrails
def test_version_parsing() -> None:
    assert parse_tidb_version("v7.5.1") == (7, 5, 1)
    assert parse_tidb_version("8.0.11-TiDB-v8.1.0") == (8, 1, 0)
    assert parse_tidb_version("7.3") == (7, 3, 0)
    assert parse_tidb_version("5.7.25-TiDB-v6.5.10-serverless") == (6, 5, 10)
    assert parse_tidb_version("mysql") is None and parse_tidb_version(None) is None


REGRESSION = Regression(
    digest=D1, metric="avg+p95", avg=4.0, baseline_avg=1.0, p95=6.0, baseline_p95=1.5, ratio=4.0, count=20,
    baseline_count=70, sample_sql="SELECT * FROM orders WHERE id = 7;",
)  # fmt: skip
CHANGE = PlanChange(
    digest=D2, new_plan=P_NEW, new_avg=3.0, new_count=5, best_plan=P_OLD, best_avg=1.0, best_count=35, ratio=3.0,
    sample_sql="SELECT 1;",
)  # fmt: skip


@pytest.mark.parametrize(
    ("version", "kinds"),
    [
        ((8, 5, 1), ["max_execution_time", "query_watch", "binding"]),
        ((7, 3, 0), ["max_execution_time", "query_watch", "binding"]),
        ((7, 2, 0), ["max_execution_time", "binding"]),
        ((6, 5, 0), ["max_execution_time", "binding"]),
        ((6, 1, 7), ["max_execution_time"]),
        (None, ["max_execution_time", "query_watch", "binding"]),
    ],
    ids=["v8.5", "v7.3", "v7.2", "v6.5", "v6.1", "unknown"],
)
def test_guardrails_per_version(version: tuple[int, int, int] | None, kinds: list[str]) -> None:
    guards = guardrails_for([REGRESSION], [CHANGE], version)
    assert [g.kind for g in guards] == kinds
    by_kind = {g.kind: g for g in guards}
    assert by_kind["max_execution_time"].sql == "SELECT /*+ MAX_EXECUTION_TIME(4500) */ * FROM orders WHERE id = 7;"
    if "query_watch" in by_kind:
        assert by_kind["query_watch"].sql == f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{D1}';"
        assert by_kind["query_watch"].min_version == "v7.3.0"
        assert by_kind["query_watch"].applicable is (None if version is None else True)
    if "binding" in by_kind:
        assert by_kind["binding"].sql == f"CREATE GLOBAL BINDING FROM HISTORY USING PLAN DIGEST '{P_OLD}';"


HOSTILE = [
    "x' RESOURCE GROUP `default",
    "x'; DROP TABLE mysql.user; --",
    D1.upper(),
    D1[:-1],
    D1 + "0",
    "",
    " " + D1[1:],
]


@pytest.mark.parametrize("bad", HOSTILE, ids=["probe", "drop", "upper-case", "short", "long", "empty", "space"])
def test_no_guardrail_for_a_digest_that_is_not_hex(bad: str) -> None:
    """The probe's forged ``Digest`` became ``… SQL DIGEST 'x' RESOURCE GROUP `default';``: a finding whose
    digest (or plan digest) is not 64 lower-case hex characters gets no guardrail at all."""
    findings = [replace(REGRESSION, digest=bad)], [replace(CHANGE, best_plan=bad), replace(CHANGE, digest=bad)]
    assert guardrails_for(*findings, (8, 5, 1)) == []
    good = guardrails_for([REGRESSION, replace(REGRESSION, digest=bad)], [CHANGE, replace(CHANGE, best_plan=bad)], None)
    assert [(g.digest, g.kind) for g in good] == [(D1, "max_execution_time"), (D1, "query_watch"), (D2, "binding")]
    assert [g.sql for g in good[1:]] == [query_watch_sql(D1), binding_sql(P_OLD)]
    with pytest.raises(ValueError, match="64 lower-case hex"):
        query_watch_sql(bad)
    with pytest.raises(ValueError, match="64 lower-case hex"):
        binding_sql(bad)
    assert not is_appliable_statement(f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{bad}';")


def test_appliable_statements_are_exactly_the_two_shapes() -> None:
    assert is_appliable_statement(query_watch_sql(D1)) and is_appliable_statement(binding_sql(P_OLD))
    for sql in (
        f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{D1}'; DROP TABLE t;",
        f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{D1}';\n",
        f"query watch add action kill sql digest '{D1}';",
        f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{D1}' RESOURCE GROUP `default`;",
        "SELECT /*+ MAX_EXECUTION_TIME(100) */ 1;",
        None,
        42,
    ):
        assert not is_appliable_statement(sql), sql


def test_report_notes_findings_left_without_guardrails() -> None:
    rows = table_of(baseline("x'y", [1.0] * 10), entries(DAY, "x'y", [5.0] * 20))
    report = build_report(rows, DAY, tidb_version="v8.5.0")
    assert [r.digest for r in report.regressions] == ["x'y"] and report.guardrails == ()
    assert any("not 64 lower-case hex" in n for n in report.notes)


@pytest.mark.parametrize(
    ("p95", "expected_ms"),
    [(0.01, 1000), (1.5, 4500), (1.51, 4600), (100.0, 300000)],
    ids=["floor", "exact", "rounded-up", "long"],
)
def test_max_execution_time_value(p95: float, expected_ms: int) -> None:
    (guard, *_rest) = guardrails_for([replace(REGRESSION, baseline_p95=p95)], [], (8, 1, 0))
    assert guard.sql.startswith(f"SELECT /*+ MAX_EXECUTION_TIME({expected_ms}) */")


def test_no_max_execution_time_for_writes_and_no_kill_for_commit() -> None:
    write = replace(REGRESSION, sample_sql="UPDATE t SET a = 1 WHERE id = 2;")
    commit = replace(REGRESSION, digest=D2, sample_sql="COMMIT;")
    guards = guardrails_for([write, commit], [], (8, 1, 0))
    assert [(g.digest, g.kind) for g in guards] == [(D1, "query_watch")]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t;", "SELECT /*+ MAX_EXECUTION_TIME(100) */ a FROM t;"),
        ("  /* app */ select a FROM t;", "  /* app */ select /*+ MAX_EXECUTION_TIME(100) */ a FROM t;"),
        ("SELECT a FROM t WHERE id = ? [arguments: (5)];", "SELECT /*+ MAX_EXECUTION_TIME(100) */ a FROM t WHERE id = ?;"),
        ("SELECT a FROM t WHERE s = 'xxx(len:9000);", "/*+ MAX_EXECUTION_TIME(100) */"),
    ],
    ids=["plain", "leading-comment", "prepared", "truncated"],
)  # fmt: skip
def test_with_max_execution_time(sql: str, expected: str) -> None:
    assert is_select(sql)
    assert with_max_execution_time(sql, 100) == expected


def test_with_max_execution_time_refuses_non_select() -> None:
    assert not is_select("/*+ HINT */ UPDATE t SET a = 1;")
    with pytest.raises(ValueError):
        with_max_execution_time("DELETE FROM t;", 100)


def test_report_filters_guardrails_by_version_and_notes_unknown_versions() -> None:
    rows = table_of(baseline(D1, [1.0] * 10), entries(DAY, D1, [5.0] * 20))
    old = build_report(rows, DAY, tidb_version="v7.1.5")
    assert [g.kind for g in old.guardrails] == ["max_execution_time"]
    odd = build_report(rows, DAY, tidb_version="banana")
    assert any("not understood" in n for n in odd.notes)
    assert [g.applicable for g in odd.guardrails] == [True, None]


# --------------------------------------------------------------------------- generated data end to end
@pytest.fixture(scope="module")
def regressed_week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp("week") / "tidb-1" / "tidb-slow.log"
    result = generate(
        path, entries=20_000, days=8, start=date(2026, 11, 1), seed=5, regress_day=7, truncated_tail=False
    )
    return path, result


def test_report_finds_what_the_generator_injected(regressed_week: tuple[Path, object]) -> None:
    path, result = regressed_week
    table = aggregate_files([path])
    report = build_report(table, "2026-11-08", tidb_version="v8.1.0")
    found = {r.digest for r in report.regressions}
    assert set(result.regressed_digests) <= found  # type: ignore[attr-defined]
    assert {(p.digest, p.new_plan, p.best_plan) for p in report.plan_changes} == {
        (d, new, old)
        for d, (old, new) in result.plan_changes.items()  # type: ignore[attr-defined]
    }
    assert report.baseline == tuple(f"2026-11-0{d}" for d in range(1, 8))
    assert report.new_digests == ()
    kinds = {(g.digest, g.kind) for g in report.guardrails}
    for digest in result.regressed_digests:  # type: ignore[attr-defined]
        assert (digest, "query_watch") in kinds
    for digest, (old, _new) in result.plan_changes.items():  # type: ignore[attr-defined]
        assert (digest, "binding") in kinds
        assert any(g.sql.endswith(f"'{old}';") for g in report.guardrails if g.digest == digest)
    quiet = build_report(table, "2026-11-05")
    assert not {r.digest for r in quiet.regressions} & set(result.regressed_digests)  # type: ignore[attr-defined]
    assert quiet.plan_changes == ()


def test_rendering(regressed_week: tuple[Path, object]) -> None:
    path, _ = regressed_week
    report = build_report(aggregate_files([path], redact=True), "2026-11-08", tidb_version="v8.1.0")
    text = render_text(report)
    for title in ("Top 20 by total time", "Regressions:", "Plan changes:", "Suggested guardrails", "Baseline:"):
        assert title in text
    assert "QUERY WATCH ADD ACTION KILL SQL DIGEST" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["day"] == "2026-11-08" and len(data["top"]) == 20
    assert data["top"][0]["first_seen"].endswith("Z")
    assert {g["kind"] for g in data["guardrails"]} >= {"query_watch", "binding"}
    assert all("'" not in s["sample_sql"] for s in data["top"])  # redacted samples


def test_empty_day() -> None:
    report = build_report({}, DAY)
    assert report.top == () and "no slow queries on 2026-11-08" in report.notes
    assert "none" in render_text(report)


def test_guardrail_json() -> None:
    g = Guardrail(digest=D1, kind="binding", sql="x", reason="y", min_version="v6.5.0", applicable=None)
    assert g.to_json() == {
        "digest": D1, "kind": "binding", "sql": "x", "reason": "y", "min_version": "v6.5.0", "applicable": None,
    }  # fmt: skip


NASTY = "\x1b[2J\r\x07\x00\x9b\u202e\u2066\u200b\u2028\U000e0041"


def test_rendering_escapes_control_and_format_characters() -> None:
    sql = f"SELECT '{NASTY}' FROM t;"
    rows = table_of(baseline(D1, [1.0] * 10, sql=sql), entries(DAY, D1, [5.0] * 20, sql=sql))
    text = render_text(build_report(rows, DAY, tidb_version=f"v8.5.0{NASTY}"))
    assert not [ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]
    assert "\\x1b[2J\\r\\x07\\x00\\x9b\\u202e\\u2066\\u200b\\u2028\\U000e0041" in text


@pytest.mark.parametrize(
    ("text", "shown"),
    [("SELECT 1;", "SELECT 1;"), ("naïve 表 ✓", "naïve 表 ✓"), ("a\tb\nc", "a\\tb\\nc"), ("\u00ad", "\\xad"),
     ("\ud800", "\\ud800"), ("\u0378", "\\u0378"), ("a\u00a0b\u3000c", "a\u00a0b\u3000c")],
    ids=["ascii", "other-scripts", "tab-newline", "soft-hyphen", "surrogate", "unassigned", "spaces-kept"],
)  # fmt: skip
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize(
    ("sql", "select"),
    [("/* */ " * 64 + "x", True), ("/*" + " */" * 64 + " x", False), ("/* " + "*/ " * 64 + "x", False),
     ("/*" * 64 + " */" * 64 + "x", False)],
    ids=["many-comments", "closers", "closers-after", "nested"],
)  # fmt: skip
def test_is_select_takes_linear_time_on_hostile_text(sql: str, select: bool) -> None:
    """The sample SQL of a regression comes from the log: a run of comments once took exponential time. A
    comment ends at its first ``*/`` (SQL comments do not nest): what follows is text."""
    import time

    started = time.perf_counter()
    assert not is_select(sql)
    assert is_select(sql.replace("x", "SELECT 1")) is select
    assert time.perf_counter() - started < 1.0
