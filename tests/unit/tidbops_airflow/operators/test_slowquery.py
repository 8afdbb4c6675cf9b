"""Slow-query operators with patched hooks: execute({...}) against a real SQLite catalog."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tidbops.catalog.store import Catalog
from tidbops.config import ClusterConfig
from tidbops.slowlog.store import get_watermark, load_report
from tidbops_airflow.operators.slowquery import (
    SlowQueryGuardrailsOperator,
    SlowQueryHarvestOperator,
    SlowQueryReportOperator,
    harvest_until,
)

pytestmark = pytest.mark.operators

D0 = datetime(2026, 11, 1, tzinfo=UTC)
A, B, PLAN = "a" * 64, "b" * 64, "1" * 64  # digests as TiDB writes them: 64 lower-case hex characters


def cluster(**slow_query: Any) -> ClusterConfig:
    return ClusterConfig.model_validate(
        {"name": "dev", "env": "dev", "pd": ["pd:2379"], "tidb_conn_id": "tidb_dev",
         "storage": {"uri": "s3://bucket"}, "slow_query": slow_query}
    )  # fmt: skip


class Cursor:
    """Answers the window queries from a list of (Time, digest, query_time) rows; records what ran."""

    def __init__(self, rows: list[tuple[datetime, str, float]]) -> None:
        self.rows = rows
        self.executed: list[str] = []
        self.pending: list[tuple[Any, ...]] = []

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, args: Any = None) -> None:
        self.executed.append(sql)
        self.pending = []
        if args and "FROM" in sql:
            lo, hi = (datetime.fromisoformat(a).replace(tzinfo=UTC) for a in args)
            for when, digest, qt in self.rows:
                if lo <= when < hi:
                    row = {"Time": when.replace(tzinfo=None), "Digest": digest, "Plan_digest": PLAN,
                           "Query_time": qt, "Query": f"SELECT {digest[0]} FROM t", "INSTANCE": "tidb-0"}  # fmt: skip
                    cols = [c.strip("`") for c in sql.split(" FROM ")[0][len("SELECT ") :].split(", ")]
                    self.pending.append(tuple(row.get(c) for c in cols))
        elif sql == "SELECT VERSION()":
            self.pending = [("8.0.11-TiDB-v8.5.1",)]
        elif sql == "SELECT tidb_version()":
            self.pending = [("Release Version: v8.5.1\nEdition: Community",)]

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        out, self.pending = self.pending[:size], self.pending[size:]
        return out

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.pending[0] if self.pending else None


def rows() -> list[tuple[datetime, str, float]]:
    out = []
    for d in range(9):
        for i in range(12):
            out.append((D0 + timedelta(days=d, hours=1, minutes=i), A, 0.5))
            out.append((D0 + timedelta(days=d, hours=2, minutes=i), B, 0.4 if d < 8 else 2.0))
    return out


@pytest.fixture
def catalog_path(tmp_path: Path) -> str:
    return str(tmp_path / "catalog.db")


def context(xcom: dict[str, Any] | None = None, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    ti = mock.Mock()
    ti.xcom_pull.side_effect = lambda task_ids: (xcom or {}).get(task_ids)
    run = mock.Mock(conf=conf or {}, data_interval_end=None, run_after=datetime(2030, 1, 1, tzinfo=UTC))
    return {"ti": ti, "dag_run": run}


@pytest.fixture
def tidb(monkeypatch: pytest.MonkeyPatch) -> Cursor:
    cur = Cursor(rows())
    monkeypatch.setattr("tidbops_airflow.hooks.tidb.TiDBHook.cursor", lambda self: contextlib.nullcontext(cur))
    return cur


def test_harvest_report_guardrails_two_nights(tidb: Cursor, catalog_path: str) -> None:
    c = cluster(source="sql", table="tidbops_slowlog.cluster_slow_query")
    harvest = SlowQueryHarvestOperator(task_id="harvest_slow_queries", cluster=c, catalog_sqlite_path=catalog_path)
    h1 = harvest.execute(context(conf={"until": "2026-11-09T00:00:00Z"}))
    assert tidb.executed[0] == "SET time_zone = '+00:00'"
    assert h1["entries"] == 8 * 24 and h1["days"] == [f"2026-11-0{d}" for d in range(1, 9)]
    assert h1["start"] == "2026-11-01T00:00:00.000000Z" and h1["end"] == "2026-11-09T00:00:00.000000Z"
    h2 = harvest.execute(context(conf={"until": "2026-11-10T00:00:00Z"}))
    assert h2["entries"] == 24 and h2["days"] == ["2026-11-09"] and h2["previous_watermark"] == h1["end"]

    report = SlowQueryReportOperator(task_id="report_slow_queries", cluster=c, catalog_sqlite_path=catalog_path)
    summary = report.execute(context({"harvest_slow_queries": h2}))
    assert summary["day"] == "2026-11-09" and summary["regressed_digests"] == [B]
    assert summary["top"][0]["digest"] == B

    guard = SlowQueryGuardrailsOperator(task_id="suggest_guardrails", cluster=c, catalog_sqlite_path=catalog_path)
    out = guard.execute(context({"report_slow_queries": summary}))
    assert out["mode"] == "dry_run" and out["applied"] == 0 and out["statements"] >= 1
    catalog = Catalog.from_url(f"sqlite:///{catalog_path}")
    stored = load_report(catalog, "dev", "2026-11-09")
    assert stored is not None and stored["guardrails_run"]["mode"] == "dry_run"
    assert [r["digest"] for r in stored["regressions"]] == [B]
    assert get_watermark(catalog, "dev", "sql:tidbops_slowlog.cluster_slow_query") == D0 + timedelta(days=9)
    assert not any("QUERY WATCH" in sql for sql in tidb.executed)


def test_guardrails_refused_on_a_server_that_is_not_tidb(tidb: Cursor, catalog_path: str) -> None:
    c = cluster(source="sql", table="a.cluster_b", apply_guardrails=True)
    h = SlowQueryHarvestOperator(task_id="h", cluster=c, catalog_sqlite_path=catalog_path)
    h.execute(context(conf={"until": "2026-11-09T00:00:00Z"}))
    h2 = h.execute(context(conf={"until": "2026-11-10T00:00:00Z"}))
    summary = SlowQueryReportOperator(task_id="r", cluster=c, catalog_sqlite_path=catalog_path, harvest_task_id="h")
    s = summary.execute(context({"h": h2}))

    def no_tidb_version(sql: str, args: Any = None) -> None:
        if sql == "SELECT tidb_version()":
            raise RuntimeError("FUNCTION tidb_version does not exist")
        tidb.executed.append(sql)

    tidb.execute = no_tidb_version  # type: ignore[method-assign]
    guard = SlowQueryGuardrailsOperator(task_id="g", cluster=c, catalog_sqlite_path=catalog_path, report_task_id="r")
    out = guard.execute(context({"r": s}))
    assert out["mode"] == "apply" and out["applied"] == 0 and out["days"] == {"2026-11-09": "refused"}
    assert not any("QUERY WATCH" in sql for sql in tidb.executed)


def test_a_tampered_stored_report_is_never_applied(tidb: Cursor, catalog_path: str) -> None:
    """The guardrail step reads the report back from the catalog: a statement in it that is not exactly a
    guardrail with a 64-hex digest (here the probe's forged one) is refused, the others run."""
    from tidbops.slowlog.store import save_report

    c = cluster(source="sql", table="a.cluster_b", apply_guardrails=True)
    h = SlowQueryHarvestOperator(task_id="h", cluster=c, catalog_sqlite_path=catalog_path)
    h.execute(context(conf={"until": "2026-11-09T00:00:00Z"}))
    h2 = h.execute(context(conf={"until": "2026-11-10T00:00:00Z"}))
    s = SlowQueryReportOperator(task_id="r", cluster=c, catalog_sqlite_path=catalog_path, harvest_task_id="h")
    summary = s.execute(context({"h": h2}))
    catalog = Catalog.from_url(f"sqlite:///{catalog_path}")
    stored = load_report(catalog, "dev", "2026-11-09")
    assert stored is not None
    forged = "QUERY WATCH ADD ACTION KILL SQL DIGEST 'x' RESOURCE GROUP `default';"
    genuine = [g["sql"] for g in stored["guardrails"] if g["kind"] == "query_watch"]
    assert genuine == [f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{B}';"]
    stored["guardrails"].append({**stored["guardrails"][-1], "kind": "query_watch", "sql": forged})
    save_report(catalog, "dev", "2026-11-09", stored)
    guard = SlowQueryGuardrailsOperator(task_id="g", cluster=c, catalog_sqlite_path=catalog_path, report_task_id="r")
    out = guard.execute(context({"r": summary}))
    assert out["applied"] == 1 and out["rejected"] == 1
    assert genuine[0] in tidb.executed and forged not in tidb.executed
    after = load_report(catalog, "dev", "2026-11-09")
    assert after is not None and after["guardrails_run"]["rejected"] == [forged]


def test_files_source_reads_local_paths_with_env_expansion(
    tmp_path: Path, catalog_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_dir = tmp_path / "tidb-0"
    log_dir.mkdir()
    (log_dir / "tidb-slow.log").write_text(
        "# Time: 2026-11-02T01:00:00Z\n# User@Host: app[app] @ 10.0.0.1 [10.0.0.1]\n# Query_time: 0.5\n"
        f"# DB: shop\n# Is_internal: false\n# Digest: {'a' * 64}\n# Plan_digest: {'1' * 64}\n# Succ: true\nSELECT 1;\n"
    )
    monkeypatch.setenv("SLOWLOG_HOME", str(tmp_path))
    c = cluster(source="files", log_paths=["${SLOWLOG_HOME}/tidb-0"])
    op = SlowQueryHarvestOperator(task_id="h", cluster=c, catalog_sqlite_path=catalog_path)
    out = op.execute(context(conf={"until": "2026-11-03T00:00:00Z"}))
    assert (out["entries"], out["files"], out["days"]) == (1, 1, ["2026-11-02"])
    assert out["source"] == "files:${SLOWLOG_HOME}/tidb-0"


@pytest.mark.parametrize(
    ("until", "conf", "interval_end", "expected"),
    [
        pytest.param(None, {"until": "2026-11-02T00:00:00Z"}, None, datetime(2026, 11, 2, tzinfo=UTC), id="conf"),
        pytest.param("2026-11-03T00:00:00+00:00", {}, None, datetime(2026, 11, 3, tzinfo=UTC), id="argument"),
        pytest.param(
            None,
            {},
            datetime(2026, 11, 4, 2, 30, tzinfo=UTC),
            datetime(2026, 11, 4, 2, 30, tzinfo=UTC),
            id="data-interval-end",
        ),
        pytest.param(None, {"until": "2099-01-01T00:00:00Z"}, None, datetime(2026, 11, 5, tzinfo=UTC), id="capped"),
    ],
)
def test_harvest_until(
    until: str | None, conf: dict[str, Any], interval_end: datetime | None, expected: datetime
) -> None:
    run = mock.Mock(conf=conf, data_interval_end=interval_end, run_after=None)
    assert harvest_until({"dag_run": run}, until, datetime(2026, 11, 5, tzinfo=UTC)) == expected


def test_bad_files_and_entries_are_counted_and_logged_not_fatal(tmp_path: Path, catalog_path: str) -> None:
    log_dir = tmp_path / "tidb-0"
    log_dir.mkdir()
    good = (
        "# Time: 2026-11-02T01:00:00Z\n# Query_time: 0.5\n# Is_internal: false\n"
        f"# Digest: {A}\n# Succ: true\nSELECT 1;\n"
    )
    (log_dir / "tidb-slow.log").write_text(good + good.replace(A, "x' RESOURCE GROUP `default\x1b[2J"))
    (log_dir / "tidb-slow-2026-11-02T00-00-00.000.log.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    c = cluster(source="files", log_paths=[str(log_dir)])
    op = SlowQueryHarvestOperator(task_id="h", cluster=c, catalog_sqlite_path=catalog_path)
    logger = mock.Mock()
    with mock.patch.object(SlowQueryHarvestOperator, "log", new_callable=mock.PropertyMock, return_value=logger):
        out = op.execute(context(conf={"until": "2026-11-03T00:00:00Z"}))
    assert (out["entries"], out["files"], out["malformed"], out["bad_files"]) == (1, 2, 1, 1)
    warnings = [call.args[0] % call.args[1:] for call in logger.warning.call_args_list]
    assert any("gzip file" in w for w in warnings) and any("tidb-slow.log:7:" in w for w in warnings)
    assert not any("\x1b" in w for w in warnings)
