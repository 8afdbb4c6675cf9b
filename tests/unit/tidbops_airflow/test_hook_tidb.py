from __future__ import annotations

import json
import ssl
from unittest import mock

import pytest

from tidbops_airflow.hooks.tidb import TiDBHook

pytestmark = pytest.mark.operators


def test_connection_from_airflow_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_X", "mysql://app:p%40ss@tidb-host:4000/shop?ssl_ca=%2Fca.pem")
    with mock.patch("tidbops_airflow.hooks.tidb.pymysql.connect") as connect:
        TiDBHook(tidb_conn_id="tidb_x").get_conn()
    kwargs = connect.call_args.kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["user"], kwargs["password"], kwargs["database"]) == (
        "tidb-host",
        4000,
        "app",
        "p@ss",
        "shop",
    )
    assert kwargs["ssl"] == {"ca": "/ca.pem", "check_hostname": True, "verify_mode": ssl.CERT_REQUIRED}
    assert kwargs["init_command"] == "SET time_zone = '+00:00'"
    url = TiDBHook(tidb_conn_id="tidb_x").sqlalchemy_url
    assert url.drivername == "mysql+pymysql" and url.host == "tidb-host" and url.password == "p@ss"
    assert dict(url.query) == {"ssl_ca": "/ca.pem", "ssl_check_hostname": "true"}


def test_the_sqlalchemy_url_keeps_tidbs_default_port_and_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = json.dumps({"ssl": {"ca": "/tls/ca.pem", "cert": "/tls/client.pem", "key": "/tls/client-key.pem"}})
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_NOPORT", json.dumps({"conn_type": "mysql", "host": "tidb", "extra": extra}))
    url = TiDBHook(tidb_conn_id="tidb_noport").sqlalchemy_url
    assert (url.host, url.port) == ("tidb", 4000)
    assert dict(url.query) == {
        "ssl_ca": "/tls/ca.pem",
        "ssl_cert": "/tls/client.pem",
        "ssl_key": "/tls/client-key.pem",
        "ssl_check_hostname": "true",
    }
    # what SQLAlchemy hands pymysql from that URL: the same TLS as the hook's own connections
    from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

    _, opts = MySQLDialect_pymysql().create_connect_args(url)
    assert opts["ssl"] == {
        "ca": "/tls/ca.pem",
        "cert": "/tls/client.pem",
        "key": "/tls/client-key.pem",
        "check_hostname": True,
    }
    assert opts["port"] == 4000


def test_a_plain_connection_gets_no_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_PLAIN", "mysql://app:pw@tidb-host/shop")
    with mock.patch("tidbops_airflow.hooks.tidb.pymysql.connect") as connect:
        TiDBHook(tidb_conn_id="tidb_plain").get_conn()
    assert "ssl" not in connect.call_args.kwargs and connect.call_args.kwargs["port"] == 4000
    assert dict(TiDBHook(tidb_conn_id="tidb_plain").sqlalchemy_url.query) == {}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_does_not_answer_gives_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from tidbops.tidb import TiDBUnreachableError

    port = _free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_DOWN", f"mysql://app:s3cr3t-pw@127.0.0.1:{port}/shop")
    with pytest.raises(TiDBUnreachableError) as err:
        TiDBHook(tidb_conn_id="tidb_down").get_conn()
    message = str(err.value)
    assert f"connection 'tidb_down' at 127.0.0.1:{port} does not answer" in message
    assert "Can't connect" in message and "s3cr3t-pw" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_refused_login_says_to_check_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymysql

    from tidbops.tidb import TiDBUnreachableError

    monkeypatch.setenv("AIRFLOW_CONN_TIDB_X", "mysql://app:wrong@tidb-host:4000/shop")
    denied = pymysql.err.OperationalError(1045, "Access denied for user 'app'@'10.0.0.1' (using password: YES)")
    with mock.patch("tidbops_airflow.hooks.tidb.pymysql.connect", side_effect=denied):
        with pytest.raises(
            TiDBUnreachableError, match=r"refused the login .*check the connection's login and password"
        ):
            TiDBHook(tidb_conn_id="tidb_x").get_conn()


class FakeConnection:
    """What ``pymysql.connect`` returns, answering the two queries ``read_cluster_facts`` sends."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.closed = self.cursor_closed = False
        self.rows: list[tuple[str, ...]] = []

    def cursor(self) -> FakeConnection:
        return self

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cursor_closed = True

    def execute(self, query: str, args: object = None) -> None:
        if self.fail_on and self.fail_on in query:
            import pymysql

            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        if "VERSION()" in query:
            self.rows = [("8.0.11-TiDB-v8.5.1",)]
        else:
            self.rows = [("tikv_gc_life_time", "10m0s"), ("tikv_gc_safe_point", "20261122-04:00:00.000 +0000")]

    def fetchall(self) -> list[tuple[str, ...]]:
        return self.rows

    def close(self) -> None:
        self.closed = True


def test_cluster_facts_through_one_session_closed_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_TIDB_X", "mysql://app:pw@tidb-host:4000/")
    conn = FakeConnection()
    with mock.patch("tidbops_airflow.hooks.tidb.pymysql.connect", return_value=conn) as connect:
        facts = TiDBHook(tidb_conn_id="tidb_x").cluster_facts()
    connect.assert_called_once()
    assert (facts.tidb_version, facts.gc_life_time_seconds) == ("v8.5.1", 600.0)
    assert facts.gc_safe_point is not None and facts.gc_safe_point.isoformat() == "2026-11-22T04:00:00+00:00"
    assert conn.cursor_closed and conn.closed


def test_cursor_closes_the_connection_when_the_query_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymysql

    monkeypatch.setenv("AIRFLOW_CONN_TIDB_X", "mysql://app:pw@tidb-host:4000/")
    conn = FakeConnection(fail_on="mysql.tidb")
    with mock.patch("tidbops_airflow.hooks.tidb.pymysql.connect", return_value=conn):
        with pytest.raises(pymysql.err.OperationalError, match="Lost connection"):
            TiDBHook(tidb_conn_id="tidb_x").cluster_facts()
    assert conn.cursor_closed and conn.closed
