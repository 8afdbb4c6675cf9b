"""A stand-in for pymysql's connection (not ours) as TiDB answers ``SELECT tidb_version()``, for tests that reach
BR's version check without a SQL server: ``monkeypatch.setattr("pymysql.connect", VersionOnlyTiDB)``. The version
is ``$FAKE_TIDB_VERSION`` (default v8.5.1)."""

from __future__ import annotations

import os


class VersionOnlyTiDB:
    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.version = os.environ.get("FAKE_TIDB_VERSION", "v8.5.1")

    def cursor(self) -> VersionOnlyTiDB:
        return self

    def __enter__(self) -> VersionOnlyTiDB:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, query: str, args: object = None) -> None:
        assert query == "SELECT tidb_version()", query

    def fetchall(self) -> list[tuple[str]]:
        return [(f"Release Version: {self.version}\nEdition: Community\nGit Branch: HEAD\nStore: tikv",)]

    def close(self) -> None:
        return None
