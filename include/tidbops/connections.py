"""Airflow connections read from the environment, for the CLI: it runs outside Airflow, with no metadata DB.

Airflow reads a connection ``my_id`` from ``AIRFLOW_CONN_MY_ID`` before its secrets backends and its
database, as a URI (``mysql://login:password@host:4000/schema?ssl_ca=%2Fca.pem``) or as JSON
(``{"conn_type": "mysql", "host": …, "port": …, "login": …, "password": …, "schema": …, "extra": {…}}``).
The CLI reads the same variable, so ``. airflow.env`` (the playground writes one) or
``export AIRFLOW_CONN_TIDB_PROD="$(airflow connections get tidb_prod -o json …)"`` gives a shell the
connection a DAG uses. The password stays in the returned object (never in its ``repr``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tidbops.errors import TiDBOpsError
from tidbops.tidb import TiDBUnreachableError, unreachable_message

ENV_PREFIX = "AIRFLOW_CONN_"


class ConnectionNotFoundError(TiDBOpsError):
    """No usable ``AIRFLOW_CONN_<ID>`` variable for a connection id."""


def env_name(conn_id: str) -> str:
    """``tidb_dev`` → ``AIRFLOW_CONN_TIDB_DEV`` (Airflow's own rule: upper-cased, nothing else)."""
    return ENV_PREFIX + conn_id.upper()


@dataclass(frozen=True)
class ConnectionInfo:
    conn_id: str
    conn_type: str | None = None
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _port(value: Any, conn_id: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConnectionNotFoundError(f"{env_name(conn_id)}: its port is not a number") from None
    if not 1 <= port <= 65535:
        raise ConnectionNotFoundError(f"{env_name(conn_id)}: port {port} is not 1 to 65535")
    return port


def parse_connection(conn_id: str, value: str) -> ConnectionInfo:
    """An ``AIRFLOW_CONN_*`` value (JSON or URI) as a ``ConnectionInfo``; errors never quote the value."""
    text = value.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConnectionNotFoundError(f"{env_name(conn_id)} starts like JSON but is not JSON") from None
        if not isinstance(doc, dict):
            raise ConnectionNotFoundError(f"{env_name(conn_id)} is not a JSON object")
        extra = doc.get("extra") or {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except ValueError:
                raise ConnectionNotFoundError(f"{env_name(conn_id)}: its extra is not JSON") from None
        if not isinstance(extra, dict):
            raise ConnectionNotFoundError(f"{env_name(conn_id)}: its extra is not a JSON object")

        def text_of(key: str) -> str | None:
            v = doc.get(key)
            return None if v is None or v == "" else str(v)

        return ConnectionInfo(
            conn_id,
            text_of("conn_type"),
            text_of("host"),
            _port(doc.get("port"), conn_id),
            text_of("login"),
            text_of("password"),
            text_of("schema"),
            extra,
        )
    if "://" not in text:
        raise ConnectionNotFoundError(f"{env_name(conn_id)} is neither JSON nor a URI (scheme://login:…@host:port)")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConnectionNotFoundError(f"{env_name(conn_id)} is not a valid URI") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra_doc: dict[str, Any] = dict(query)
    if "__extra__" in query:
        try:
            loaded = json.loads(query["__extra__"])
        except ValueError:
            raise ConnectionNotFoundError(f"{env_name(conn_id)}: its __extra__ is not JSON") from None
        extra_doc = loaded if isinstance(loaded, dict) else {}
    schema = unquote(parts.path.lstrip("/")) or None
    return ConnectionInfo(
        conn_id,
        parts.scheme.replace("-", "_") or None,
        unquote(parts.hostname) if parts.hostname else None,
        port,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password is not None else None,
        schema,
        extra_doc,
    )


def connection_from_env(conn_id: str, environ: Mapping[str, str] | None = None) -> ConnectionInfo:
    """The connection ``conn_id`` from ``AIRFLOW_CONN_<ID>``; ``ConnectionNotFoundError`` saying how to set it."""
    env = os.environ if environ is None else environ
    value = env.get(env_name(conn_id), "")
    if not value.strip():
        raise ConnectionNotFoundError(
            f"no connection {conn_id!r} here: set {env_name(conn_id)} to the Airflow connection, as JSON or a "
            f"URI (the playground's: . $TIDBOPS_PLAYGROUND_HOME/airflow.env)"
        )
    return parse_connection(conn_id, value)


DEFAULT_TIDB_PORT = 4000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class SQLTLS:
    """TLS of one SQL connection: PEM paths and whether the server's certificate (and host name) is checked.

    Read from a connection's extra by ``sql_tls``; turned into pymysql's ``ssl=`` dict (``pymysql_ssl``) or
    the query of a ``mysql+pymysql://`` URL (``url_query``), so every SQL path (``tidb_session``,
    ``TiDBHook``, the URL Great Expectations and the catalog use) speaks the same TLS.
    """

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify: bool = True

    def pymysql_ssl(self) -> dict[str, Any]:
        """pymysql's ``ssl=``: ``verify`` → CERT_REQUIRED and a host-name check against the CA; else encrypted only."""
        import ssl

        out: dict[str, Any] = {k: v for k, v in (("ca", self.ca), ("cert", self.cert), ("key", self.key)) if v}
        out["check_hostname"] = self.verify
        out["verify_mode"] = ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE
        if not self.verify:
            out.pop("ca", None)  # pymysql would verify against a CA it is given
        return out

    def url_query(self) -> dict[str, str]:
        """The query of a ``mysql+pymysql://`` URL (SQLAlchemy's MySQL dialects read ``ssl_*`` into ``ssl=``)."""
        out = {f"ssl_{k}": v for k, v in (("cert", self.cert), ("key", self.key)) if v}
        if self.verify and self.ca:
            out["ssl_ca"] = self.ca
        out["ssl_check_hostname"] = "true" if self.verify else "false"
        return out


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"extra {name!r} must be true or false, got {text[:20]!r}")


def sql_tls(extra: Mapping[str, Any]) -> SQLTLS | None:
    """The TLS a connection's extra asks for, or ``None`` (plain).

    Keys: ``ssl_ca``, ``ssl_cert``, ``ssl_key`` (PEM paths on the worker), ``ssl_verify`` (default true:
    check the server certificate against the CA and its host name), or the mysql provider's
    ``ssl: {"ca": …, "cert": …, "key": …}`` (a dict or its JSON text). A ``ssl_cert`` without ``ssl_key``
    (or the reverse) is refused: the server would see no client certificate.
    """
    nested: Any = extra.get("ssl") or {}
    if isinstance(nested, str):
        try:
            nested = json.loads(nested)
        except ValueError:
            raise ValueError('extra \'ssl\' is not a JSON object; use {"ca": "/path/ca.pem"}') from None
    if not isinstance(nested, Mapping):
        raise ValueError('extra \'ssl\' must be an object such as {"ca": "/path/ca.pem"}')

    def pick(name: str) -> str | None:
        value = extra.get(f"ssl_{name}") or nested.get(name)
        return str(value).strip() or None if value else None

    ca, cert, key = pick("ca"), pick("cert"), pick("key")
    raw_verify = extra.get("ssl_verify", nested.get("verify", nested.get("check_hostname")))
    if ca is None and cert is None and key is None and raw_verify is None:
        return None
    if (cert is None) != (key is None):
        raise ValueError("extra ssl_cert and ssl_key go together (a client certificate needs its key)")
    verify = True if raw_verify is None else _flag(raw_verify, "ssl_verify")
    if verify and ca is None:
        raise ValueError("extra ssl_verify is true but there is no ssl_ca to verify the server against")
    return SQLTLS(ca=ca, cert=cert, key=key, verify=verify)


def connect_tidb(info: ConnectionInfo, *, database: str | None = None) -> Any:
    """A pymysql connection like ``TiDBHook.get_conn``'s (autocommit, utf8mb4, UTC session, TLS from the
    extra: ``sql_tls``); ``TiDBUnreachableError`` saying where and why when the server does not answer."""
    import pymysql  # type: ignore[import-untyped]  # no stubs; imported when a command connects

    host, port = info.host or "127.0.0.1", info.port or DEFAULT_TIDB_PORT
    kwargs: dict[str, Any] = {}
    try:
        tls = sql_tls(info.extra)
    except ValueError as exc:
        raise ConnectionNotFoundError(f"connection {info.conn_id!r}: {exc}") from None
    if tls is not None:
        kwargs["ssl"] = tls.pymysql_ssl()
    share_preferred_tls_context()
    try:
        return pymysql.connect(
            host=host,
            port=port,
            user=info.login or "root",
            password=info.password or "",
            database=database or info.schema or None,
            connect_timeout=int(info.extra.get("connect_timeout", 10)),
            charset="utf8mb4",
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
            **kwargs,
        )
    except pymysql.err.OperationalError as exc:  # the driver's text names no password
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        raise TiDBUnreachableError(unreachable_message(info.conn_id, host, port, code, text)) from None


def share_preferred_tls_context() -> None:
    """Build PyMySQL's "preferred TLS" context once per process instead of once per connection.

    A connection that asks for no TLS still offers it in PyMySQL 1.2 (``PREFERRED``: TLS when the server
    supports it, its certificate not checked), and PyMySQL builds a new ``ssl.SSLContext`` for that at each
    connection, loading the system's CA bundle it never uses (``CERT_NONE``): 20 to 80 ms a connection,
    some ten connections a drill. One context, built the same way the first time, serves them all (a
    context is meant to be shared; its settings are the same for every such connection). Connections with
    TLS options (``sql_tls``) still get their own. Idempotent; ``connect_tidb`` and the expectation
    suites' engine call it."""
    from pymysql import connections

    made: Any = connections.Connection._create_ssl_ctx
    if getattr(made, "tidbops_shared", False):
        return
    shared: dict[str, Any] = {}

    def create(self: Any, sslp: Any) -> Any:
        if isinstance(sslp, dict) and not sslp:  # PREFERRED: no CA, no client certificate, nothing verified
            if "ctx" not in shared:
                shared["ctx"] = made(self, sslp)
            return shared["ctx"]
        return made(self, sslp)

    create.tidbops_shared = True  # type: ignore[attr-defined]
    connections.Connection._create_ssl_ctx = create


@contextmanager
def tidb_session(info: ConnectionInfo, *, database: str | None = None) -> Iterator[Any]:
    """``with tidb_session(info) as conn:`` a connection as ``connect_tidb`` opens it, closed on the way out
    whatever happens (the one open/try/close block; ``TiDBHook.session`` is the same from a connection id)."""
    conn = connect_tidb(info, database=database)
    try:
        yield conn
    finally:
        conn.close()
