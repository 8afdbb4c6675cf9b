"""How long a validation waited for SQL: statements on our cursors and on SQLAlchemy engines, overlaps once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tidbops.recovery.timing import SQLTime

pytestmark = pytest.mark.unit


def test_overlapping_spans_count_once_and_gaps_not_at_all() -> None:
    sql = SQLTime()
    for span in [(0.0, 2.0), (1.0, 3.0), (2.5, 2.75), (10.0, 11.5)]:  # two cursors at once, then one alone
        sql.add(*span)
    assert sql.seconds == 4.5 and sql.statements == 4
    assert SQLTime().seconds == 0.0


class Slow:
    """A driver's cursor that takes ``delay`` seconds a call (and has its own other attributes)."""

    rowcount = 3

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.seen: list[Any] = []

    def execute(self, query: str, args: Any = None) -> int:
        time.sleep(self.delay)
        self.seen.append((query, args))
        return 1

    def fetchone(self) -> Any:
        time.sleep(self.delay)
        return (1,)

    def fetchall(self) -> Any:
        time.sleep(self.delay)
        return [(1,), (2,)]


def test_a_timed_cursor_is_the_cursor_and_two_at_once_are_timed_as_wall_time() -> None:
    sql = SQLTime()
    source, target = Slow(0.05), Slow(0.05)
    timed = sql.cursor(source)
    assert timed.execute("SELECT 1", [2]) == 1 and timed.fetchone() == (1,) and timed.fetchall() == [(1,), (2,)]
    assert source.seen == [("SELECT 1", [2])] and timed.rowcount == 3 and sql.statements == 3
    alone = sql.seconds
    assert alone >= 0.15
    source.delay = target.delay = 0.3
    both = [threading.Thread(target=sql.cursor(c).execute, args=("SELECT 2",)) for c in (source, target)]
    for t in both:
        t.start()
    for t in both:
        t.join()
    assert sql.statements == 5 and 0.3 <= sql.seconds - alone < 0.5, "concurrent statements counted twice"


def test_statements_of_any_sqlalchemy_engine_are_timed_while_asked(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    sql = SQLTime()
    with sql.engines(), engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1), (2)"))
        assert conn.execute(text("SELECT COUNT(*) FROM t")).scalar() == 2
    assert sql.statements >= 3 and sql.seconds > 0
    counted = sql.statements
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert sql.statements == counted, "timed after the block"
    engine.dispose()
