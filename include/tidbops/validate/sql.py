"""What differs between the servers we read: identifier quoting and reading a table as of a past time."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from tidbops.errors import TiDBOpsError


class Cursor(Protocol):
    def execute(self, query: str, args: Any = ...) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchone(self) -> Any: ...


class ValidationError(TiDBOpsError):
    """The data cannot be validated as asked (no history at that time, an unknown table, …)."""


class Dialect(Enum):
    TIDB = "tidb"
    MARIADB = "mariadb"
    MYSQL = "mysql"

    @classmethod
    def from_version(cls, version: str) -> Dialect:
        """From ``SELECT VERSION()``: ``8.0.11-TiDB-v8.5.1`` → TiDB, ``10.11.6-MariaDB-…`` → MariaDB."""
        if "TiDB" in version:
            return cls.TIDB
        if "MariaDB" in version:
            return cls.MARIADB
        return cls.MYSQL


def detect_dialect(cursor: Cursor) -> Dialect:
    """What the server really is. MariaDB is asked for a variable only it has (the playground's MariaDB
    reports a TiDB version string, but reads history MariaDB's way); then the version string decides."""
    with contextlib.suppress(Exception):  # the driver's "unknown system variable": not MariaDB
        cursor.execute("SELECT @@system_versioning_asof")
        cursor.fetchall()
        return Dialect.MARIADB
    cursor.execute("SELECT VERSION()")
    row = cursor.fetchone()
    return Dialect.from_version(str(row[0]) if row else "")


def quote(name: str) -> str:
    """A quoted identifier (backticks doubled inside)."""
    return "`" + name.replace("`", "``") + "`"


def table_ref(schema: str, table: str) -> str:
    return f"{quote(schema)}.{quote(table)}"


def as_of_clause(dialect: Dialect, at: datetime | None) -> str:
    """What follows a table name to read it as of ``at`` (UTC; the session's time zone must be UTC).

    TiDB: a stale read, ``AS OF TIMESTAMP`` (history kept for ``tidb_gc_life_time`` only). MariaDB: a
    system-versioned table's history, ``FOR SYSTEM_TIME AS OF``. MySQL keeps no history.
    """
    if at is None:
        return ""
    if at.tzinfo is None:
        raise ValidationError(f"the time {at.isoformat()} has no time zone")
    stamp = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if dialect is Dialect.TIDB:
        return f" AS OF TIMESTAMP '{stamp}'"
    if dialect is Dialect.MARIADB:
        return f" FOR SYSTEM_TIME AS OF TIMESTAMP '{stamp}'"
    raise ValidationError("MySQL keeps no history: a source can only be read as of a past time on TiDB or MariaDB")
