"""TiDBHook: TiDB over the MySQL protocol with pymysql, on common-sql's DbApiHook.

Not the mysql provider: it pins pymysql<1.2 and needs a C client library.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pymysql
from airflow.providers.common.sql.hooks.sql import DbApiHook
from sqlalchemy.engine import URL

from tidbops.connections import DEFAULT_TIDB_PORT, ConnectionInfo, connect_tidb, sql_tls, tidb_session
from tidbops.tidb import ClusterFacts, read_cluster_facts


class TiDBHook(DbApiHook):
    """A TiDB (or any MySQL-compatible) server from an Airflow connection of type ``mysql``.

    :param tidb_conn_id: the Airflow connection id (host, port, login, password, schema; TLS in the extra:
        ``ssl_ca``, ``ssl_cert``, ``ssl_key``, ``ssl_verify``, see ``tidbops.connections.sql_tls``).
    """

    conn_name_attr = "tidb_conn_id"
    default_conn_name = "tidb_default"
    conn_type = "mysql"
    hook_name = "TiDB"
    supports_autocommit = True

    def get_conn(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        """A connection (autocommit, utf8mb4, UTC); ``TiDBUnreachableError`` saying where and why if none."""
        return connect_tidb(self._info())

    def session(self) -> AbstractContextManager[pymysql.connections.Connection]:  # type: ignore[type-arg]
        """``with TiDBHook(tidb_conn_id=…).session() as conn:`` a connection, closed whatever happens."""
        return tidb_session(self._info())

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """``with TiDBHook(tidb_conn_id=…).cursor() as cursor:`` a cursor of a ``session``, both closed after."""
        with self.session() as conn, conn.cursor() as cursor:
            yield cursor

    def cluster_facts(self) -> ClusterFacts:
        """The cluster's version, GC safepoint and GC life time (``tidbops.tidb.read_cluster_facts``)."""
        with self.cursor() as cursor:
            return read_cluster_facts(cursor)

    def _info(self) -> ConnectionInfo:
        conn = self.get_connection(self.get_conn_id())
        return ConnectionInfo(
            conn_id=self.get_conn_id(),
            conn_type=conn.conn_type,
            host=conn.host,
            port=int(conn.port) if conn.port else None,
            login=conn.login,
            password=conn.password,
            schema=conn.schema,
            extra=dict(conn.extra_dejson),
        )

    @property
    def sqlalchemy_url(self) -> URL:
        """``mysql+pymysql://`` for this connection, with TiDB's default port 4000 and the extra's TLS (``sql_tls``)."""
        info = self._info()
        tls = sql_tls(info.extra)
        return URL.create(
            "mysql+pymysql",
            username=info.login,
            password=info.password,
            host=info.host or "127.0.0.1",
            port=info.port or DEFAULT_TIDB_PORT,
            database=info.schema or None,
            query=tls.url_query() if tls is not None else {},
        )
