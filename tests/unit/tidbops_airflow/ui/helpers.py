"""Helpers of the UI tests: the test users, their Airflow JWTs, and HTML parsing."""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup

#: user -> role ("" grants nothing); "limited" may read every DAG but prod's (see conftest.PerDagAuthManager)
USERS = {"admin": "admin", "viewer": "viewer", "nobody": "", "limited": "viewer", "dba": "admin"}
DENIED = {"limited": "__prod"}


def token(user: str) -> str:
    """A JWT for ``user`` signed by the running app's auth manager, as ``POST /auth/token`` would issue."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role=USERS[user] or None)))


def as_user(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def soup(html: str) -> Any:
    return BeautifulSoup(html, "html.parser")
