from __future__ import annotations

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
    assert kwargs["ssl"] == {"ca": "/ca.pem"}
    assert kwargs["init_command"] == "SET time_zone = '+00:00'"
    url = TiDBHook(tidb_conn_id="tidb_x").sqlalchemy_url
    assert url.drivername == "mysql+pymysql" and url.host == "tidb-host" and url.password == "p@ss"
