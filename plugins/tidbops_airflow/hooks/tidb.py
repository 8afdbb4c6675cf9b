"""TiDBHook: TiDB over the MySQL protocol with pymysql, on common-sql's DbApiHook.

Not the mysql provider: it pins pymysql<1.2 and needs a C client library.
"""

from __future__ import annotations

from typing import Any

import pymysql
from airflow.providers.common.sql.hooks.sql import DbApiHook
from sqlalchemy.engine import URL

from tidbops.tidb import TiDBUnreachableError, unreachable_message


class TiDBHook(DbApiHook):
    """A TiDB (or any MySQL-compatible) server from an Airflow connection of type ``mysql``.

    :param tidb_conn_id: the Airflow connection id (host, port, login, password, schema; extra ``ssl_ca``).
    """

    conn_name_attr = "tidb_conn_id"
    default_conn_name = "tidb_default"
    conn_type = "mysql"
    hook_name = "TiDB"
    supports_autocommit = True

    def get_conn(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        """A connection (autocommit, utf8mb4, UTC); ``TiDBUnreachableError`` saying where and why if none."""
        conn = self.get_connection(self.get_conn_id())
        extra = conn.extra_dejson
        kwargs: dict[str, Any] = {}
        if extra.get("ssl_ca"):
            kwargs["ssl"] = {"ca": extra["ssl_ca"]}
        host, port = conn.host or "127.0.0.1", int(conn.port or 4000)
        try:
            return pymysql.connect(
                host=host,
                port=port,
                user=conn.login or "root",
                password=conn.password or "",
                database=conn.schema or None,
                connect_timeout=int(extra.get("connect_timeout", 10)),
                charset="utf8mb4",
                autocommit=True,
                init_command="SET time_zone = '+00:00'",
                **kwargs,
            )
        except pymysql.err.OperationalError as exc:  # the driver's text names no password
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
            raise TiDBUnreachableError(unreachable_message(self.get_conn_id(), host, port, code, text)) from None

    @property
    def sqlalchemy_url(self) -> URL:
        conn = self.get_connection(self.get_conn_id())
        return URL.create(
            "mysql+pymysql",
            username=conn.login,
            password=conn.password,
            host=conn.host,
            port=conn.port,
            database=conn.schema or None,
        )
