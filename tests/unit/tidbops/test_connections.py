"""Airflow connections from AIRFLOW_CONN_<ID>, for the CLI outside Airflow: JSON and URI forms, errors that
never quote the value, and a connection attempt that fails with one line naming where."""

from __future__ import annotations

import json
import socket

import pytest

from tidbops.connections import (
    ConnectionInfo,
    ConnectionNotFoundError,
    connect_tidb,
    connection_from_env,
    env_name,
    parse_connection,
)
from tidbops.tidb import TiDBUnreachableError

pytestmark = pytest.mark.unit
SECRET = "s3cr3t-Pw/@:"


def test_the_variable_name_is_airflows() -> None:
    assert env_name("tidb_dev") == "AIRFLOW_CONN_TIDB_DEV"
    assert env_name("tidb.prod-1") == "AIRFLOW_CONN_TIDB.PROD-1"


@pytest.mark.parametrize(
    "value",
    [
        json.dumps(
            {
                "conn_type": "mysql",
                "host": "tidb-0",
                "port": 4000,
                "login": "app",
                "password": SECRET,
                "schema": "shop",
                "extra": {"ssl_ca": "/ca.pem"},
            }
        ),
        json.dumps(
            {
                "conn_type": "mysql",
                "host": "tidb-0",
                "port": "4000",
                "login": "app",
                "password": SECRET,
                "schema": "shop",
                "extra": json.dumps({"ssl_ca": "/ca.pem"}),
            }
        ),
        "mysql://app:s3cr3t-Pw%2F%40%3A@tidb-0:4000/shop?ssl_ca=%2Fca.pem",
        "mysql://app:s3cr3t-Pw%2F%40%3A@tidb-0:4000/shop?__extra__=%7B%22ssl_ca%22%3A+%22%2Fca.pem%22%7D",
    ],
    ids=["json", "json-extra-as-string", "uri", "uri-extra-json"],
)
def test_json_and_uri_forms_give_the_same_connection(value: str) -> None:
    info = parse_connection("tidb_x", value)
    assert info == ConnectionInfo("tidb_x", "mysql", "tidb-0", 4000, "app", SECRET, "shop", {"ssl_ca": "/ca.pem"})
    assert SECRET not in repr(info)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"host": ', "starts like JSON but is not JSON"),
        ("[1]", "is neither JSON nor a URI"),
        (json.dumps({"port": "x" + SECRET}), "its port is not a number"),
        (json.dumps({"port": 70000}), "port 70000 is not 1 to 65535"),
        (json.dumps({"extra": "{nope"}), "its extra is not JSON"),
        ("tidb-0:4000", "is neither JSON nor a URI"),
        (f"mysql://app:{SECRET}@h:99999/", "is not a valid URI"),
    ],
    ids=["bad-json", "json-not-object", "port-text", "port-range", "extra", "no-scheme", "uri-port"],
)
def test_unusable_values_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ConnectionNotFoundError, match="AIRFLOW_CONN_TIDB_X") as caught:
        parse_connection("tidb_x", value)
    assert message in str(caught.value) and SECRET not in str(caught.value)


def test_a_missing_variable_says_how_to_set_it() -> None:
    with pytest.raises(ConnectionNotFoundError) as caught:
        connection_from_env("tidb_dev", {"AIRFLOW_CONN_OTHER": "mysql://h"})
    assert "set AIRFLOW_CONN_TIDB_DEV to the Airflow connection" in str(caught.value)
    assert connection_from_env("tidb_dev", {"AIRFLOW_CONN_TIDB_DEV": "mysql://h:1"}).port == 1


def test_a_server_that_does_not_answer_is_one_line_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        info = ConnectionInfo("tidb_down", "mysql", "127.0.0.1", port, "app", SECRET, extra={"connect_timeout": 2})
        with pytest.raises(TiDBUnreachableError) as caught:
            connect_tidb(info)
    text = str(caught.value)
    assert f"TiDB of connection 'tidb_down' at 127.0.0.1:{port} does not answer" in text and SECRET not in text
