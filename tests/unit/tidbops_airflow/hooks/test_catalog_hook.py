from __future__ import annotations

import json
import socket
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy.engine import make_url

from tidbops_airflow.hooks.catalog import CatalogHook, airflow_catalog_url

pytestmark = pytest.mark.operators


def test_sqlite_catalog_is_migrated(tmp_path: Path) -> None:
    catalog = CatalogHook(sqlite_path=str(tmp_path / "sub" / "catalog.db")).get_catalog()
    try:
        assert catalog.schema_version() >= 1
        assert catalog.list_backups() == []
    finally:
        catalog.close()


def test_default_is_sqlite_in_airflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDBOPS_CATALOG_URL", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert CatalogHook().catalog_url() == f"sqlite:///{tmp_path / 'tidbops_catalog.db'}"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        pytest.param(
            {"TIDBOPS_CATALOG_URL": " mysql+pymysql://u@db/x ", "AIRFLOW_HOME": "/af"},
            "mysql+pymysql://u@db/x",
            id="tidbops-url-first",
        ),
        pytest.param(
            {"TIDBOPS_CATALOG_URL": " ", "AIRFLOW_HOME": "/af"},
            "sqlite:////af/tidbops_catalog.db",
            id="blank-url-airflow-home",
        ),
        pytest.param(
            {"HOME": "/home/ops"}, "sqlite:////home/ops/airflow/tidbops_catalog.db", id="airflow-default-home"
        ),
    ],
)
def test_airflow_catalog_url(env: dict[str, str], url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", env.get("HOME", "/nowhere"))
    assert airflow_catalog_url(env) == url


def test_sqlite_path_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDBOPS_CATALOG_URL", "mysql+pymysql://u@db/x")
    assert CatalogHook(sqlite_path=str(tmp_path / "c.db")).catalog_url() == f"sqlite:///{tmp_path / 'c.db'}"


def test_server_catalog_url_from_the_connection_password_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG_DB",
        json.dumps(
            {"conn_type": "mysql", "host": "db.example", "port": 4000, "login": "ops", "password": "p@ss w0rd!"}
        ),
    )
    with mock.patch("tidbops_airflow.hooks.catalog.mask_secret") as mask:
        url = CatalogHook(catalog_conn_id="catalog_db").catalog_url()
    mask.assert_any_call("p@ss w0rd!")
    parsed = make_url(url)
    assert (parsed.drivername, parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "mysql+pymysql",
        "ops",
        "p@ss w0rd!",
        "db.example",
        4000,
        "tidbops",
    )


def test_unreachable_catalog_is_none_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG_DB",
        json.dumps(
            {"conn_type": "mysql", "host": "127.0.0.1", "port": port, "login": "ops", "password": "secret-pw-1"}
        ),
    )
    hook = CatalogHook(catalog_conn_id="catalog_db")
    with mock.patch.object(CatalogHook, "log") as log:
        assert hook.get_catalog_or_none() is None
    (fmt, *args), _ = log.warning.call_args
    assert "does not answer" in fmt and "secret-pw-1" not in " ".join(map(str, args))
