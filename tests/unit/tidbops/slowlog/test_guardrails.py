"""Applying guardrails: only the two statement shapes with a 64-hex digest literal are ever executed.

A report comes back from the catalog as JSON before its guardrails are applied, so the statements are
checked again where they are run (a tampered report, or a bug upstream, must not reach TiDB).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tidbops.slowlog.errors import GuardrailRefusedError
from tidbops.slowlog.harvest import apply_guardrails, execute_guardrail, guardrail_statements
from tidbops.slowlog.report import binding_sql, query_watch_sql

pytestmark = pytest.mark.unit

D1 = hashlib.sha256(b"d1").hexdigest()
P1 = hashlib.sha256(b"p1").hexdigest()
FORGED = "QUERY WATCH ADD ACTION KILL SQL DIGEST 'x' RESOURCE GROUP `default';"  # what the probe produced


class Cursor:
    """A real TiDB as far as ``is_real_tidb`` can tell; records every statement."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self.rows: list[tuple[Any, ...]] = []

    def execute(self, query: str, args: Any = None) -> None:
        self.executed.append(query)
        self.rows = [("Release Version: v8.5.1",)] if query == "SELECT tidb_version()" else []

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        return self.rows[:size]


def guard(kind: str, sql: Any, applicable: bool | None = True) -> dict[str, Any]:
    return {"digest": D1, "kind": kind, "sql": sql, "reason": "r", "min_version": None, "applicable": applicable}


def report(*guards: dict[str, Any]) -> dict[str, Any]:
    return {"day": "2026-11-08", "guardrails": list(guards)}


@pytest.mark.parametrize(
    "sql",
    [
        FORGED,
        f"QUERY WATCH ADD ACTION KILL SQL DIGEST '{D1}'; DROP TABLE mysql.user;",
        f"CREATE GLOBAL BINDING FROM HISTORY USING PLAN DIGEST '{P1.upper()}';",
        "SELECT /*+ MAX_EXECUTION_TIME(100) */ * FROM t;",
        "",
    ],
    ids=["probe", "two-statements", "upper-case", "hint", "empty"],
)
def test_execution_refuses_anything_but_the_two_shapes(sql: str) -> None:
    cursor = Cursor()
    with pytest.raises(GuardrailRefusedError, match="refused"):
        execute_guardrail(cursor, sql)
    assert cursor.executed == []


def test_execution_runs_the_two_shapes() -> None:
    cursor = Cursor()
    execute_guardrail(cursor, query_watch_sql(D1))
    execute_guardrail(cursor, binding_sql(P1))
    assert cursor.executed == [query_watch_sql(D1), binding_sql(P1)]


def test_a_tampered_stored_report_never_reaches_tidb() -> None:
    stored = report(
        guard("query_watch", FORGED),
        guard("query_watch", query_watch_sql(D1)),
        guard("binding", query_watch_sql(P1)),  # a statement of the other kind
        guard("binding", binding_sql(P1)),
        guard("binding", ["not", "text"]),
        guard("max_execution_time", "SELECT /*+ MAX_EXECUTION_TIME(100) */ 1;"),
        guard("query_watch", query_watch_sql(P1), applicable=None),
    )
    assert guardrail_statements(stored) == [query_watch_sql(D1), binding_sql(P1)]
    cursor = Cursor()
    outcome = apply_guardrails(cursor, stored, apply=True)
    assert outcome.mode == "applied" and outcome.applied == (query_watch_sql(D1), binding_sql(P1))
    assert cursor.executed == ["SELECT tidb_version()", query_watch_sql(D1), binding_sql(P1)]
    assert len(outcome.rejected) == 3 and FORGED in outcome.rejected
    assert "3 refused" in outcome.reason and outcome.to_dict()["rejected"] == list(outcome.rejected)
    dry = apply_guardrails(None, stored, apply=False)
    assert dry.mode == "dry_run" and dry.applied == () and len(dry.rejected) == 3
