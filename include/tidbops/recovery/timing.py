"""How long a validation waited for SQL: the part of its time the servers spend, not the platform.

A validation's time is the SQL its checks run (the fingerprints, the schema reads, the expectation suites'
queries) plus everything else: imports, Great Expectations' project and Data Docs, uploads, our Python.
``SQLTime`` adds up the first: each statement on a wrapped cursor (``cursor``), and each statement any
SQLAlchemy engine runs while ``engines()`` is open (GX's), as time spans; spans that overlap (the source
and the target fingerprinted at once) count once. The rest is the platform's overhead, which a drill
reports next to BR's restore time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class SQLTime:
    """Wall-clock seconds spent waiting for SQL, overlaps counted once (``seconds``)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self.statements = 0

    def add(self, start: float, end: float) -> None:
        with self._lock:
            self._spans.append((start, end))
            self.statements += 1

    @contextmanager
    def span(self) -> Iterator[None]:
        """Time the block as SQL."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(start, self._clock())

    @property
    def seconds(self) -> float:
        """The length of the union of every span."""
        with self._lock:
            spans = sorted(self._spans)
        total, end = 0.0, float("-inf")
        for lo, hi in spans:
            if hi <= end:
                continue
            total += hi - max(lo, end)
            end = hi
        return round(total, 3)

    def cursor(self, cursor: Any) -> TimedCursor:
        return TimedCursor(cursor, self)

    @contextmanager
    def engines(self) -> Iterator[None]:
        """While open, every statement any SQLAlchemy engine of this process runs is timed too (a cursor's
        ``execute``: the driver buffers the rows, so fetching them after it costs nothing more)."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        def before(conn: Any, *args: Any) -> None:
            conn.info.setdefault("tidbops_sql_started", []).append(self._clock())

        def after(conn: Any, *args: Any) -> None:
            started = conn.info.get("tidbops_sql_started")
            if started:
                self.add(started.pop(), self._clock())

        event.listen(Engine, "before_cursor_execute", before)
        event.listen(Engine, "after_cursor_execute", after)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", before)
            event.remove(Engine, "after_cursor_execute", after)


class TimedCursor:
    """A DB-API cursor whose ``execute``/``executemany``/``fetch*`` are timed into a ``SQLTime``; anything
    else is the cursor's own."""

    def __init__(self, cursor: Any, sql: SQLTime) -> None:
        self._cursor = cursor
        self._sql = sql

    def execute(self, query: str, args: Any = None) -> Any:
        with self._sql.span():
            return self._cursor.execute(query, args)

    def executemany(self, query: str, args: Any) -> Any:
        with self._sql.span():
            return self._cursor.executemany(query, args)

    def fetchone(self) -> Any:
        with self._sql.span():
            return self._cursor.fetchone()

    def fetchall(self) -> Any:
        with self._sql.span():
            return self._cursor.fetchall()

    def fetchmany(self, size: int | None = None) -> Any:
        with self._sql.span():
            return self._cursor.fetchmany() if size is None else self._cursor.fetchmany(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __enter__(self) -> TimedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None
