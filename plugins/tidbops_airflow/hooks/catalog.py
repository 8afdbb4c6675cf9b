"""CatalogHook: the backup catalog (``tidbops.catalog.store.Catalog``), migrated, from the fleet config's choice.

``catalog.conn_id`` in the fleet config names an Airflow connection of a MySQL-compatible database
(TiDB, MySQL, MariaDB): host, port (default 3306), login, password, schema (default ``tidbops``). With
no conn id, the catalog is a SQLite file: ``catalog.sqlite_path``, else ``$TIDBOPS_CATALOG_URL``, else
``$AIRFLOW_HOME/tidbops_catalog.db``. The password is registered with the secret masker and never
appears in what this hook logs (URLs are shown with the password hidden).

Where the catalog lies by default is Airflow's business, so it is decided here: the core's store takes
the URL it is given (``Catalog.from_url``) and never reads Airflow's environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from tidbops.backup import CATALOG_OUTAGES
from tidbops.catalog.store import CATALOG_URL_ENV, Catalog
from tidbops.connections import sql_tls

DEFAULT_SCHEMA = "tidbops"
DEFAULT_PORT = 3306
SQLITE_NAME = "tidbops_catalog.db"


def airflow_catalog_url(environ: Mapping[str, str] | None = None) -> str:
    """The catalog of an Airflow deployment without a catalog connection: ``$TIDBOPS_CATALOG_URL``, else the
    SQLite file ``tidbops_catalog.db`` in ``$AIRFLOW_HOME`` (``~/airflow`` when unset, as Airflow's own)."""
    env = os.environ if environ is None else environ
    url = env.get(CATALOG_URL_ENV, "").strip()
    if url:
        return url
    home = env.get("AIRFLOW_HOME", "").strip() or "~/airflow"
    return f"sqlite:///{Path(home).expanduser() / SQLITE_NAME}"


class CatalogHook(BaseHook):
    """The backup catalog.

    :param catalog_conn_id: Airflow connection of a MySQL-compatible database; ``None``: SQLite.
    :param sqlite_path: the SQLite file when there is no connection (default ``$AIRFLOW_HOME/tidbops_catalog.db``).
    """

    conn_name_attr = "catalog_conn_id"
    conn_type = "mysql"
    hook_name = "tidbops backup catalog"

    def __init__(self, *, catalog_conn_id: str | None = None, sqlite_path: str | None = None) -> None:
        super().__init__()
        self.catalog_conn_id = catalog_conn_id
        self.sqlite_path = sqlite_path

    def catalog_url(self) -> str:
        """The SQLAlchemy URL (holds the password for a server catalog: never log it, use ``Catalog.url``)."""
        if self.catalog_conn_id is None:
            if self.sqlite_path:
                return f"sqlite:///{Path(self.sqlite_path).expanduser()}"
            return airflow_catalog_url()
        from sqlalchemy.engine import URL

        conn = self.get_connection(self.catalog_conn_id)
        if conn.password:
            mask_secret(conn.password)
        return URL.create(
            "mysql+pymysql",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or "127.0.0.1",
            port=int(conn.port or DEFAULT_PORT),
            database=conn.schema or DEFAULT_SCHEMA,
            query=tls.url_query() if (tls := sql_tls(conn.extra_dejson)) is not None else {},
        ).render_as_string(hide_password=False)

    def get_catalog(self) -> Catalog:
        """The catalog with its schema migrated (idempotent). Raises when the database does not answer."""
        catalog = Catalog.from_url(self.catalog_url())
        try:
            catalog.migrate()
        except BaseException:
            catalog.close()
            raise
        return catalog

    def get_catalog_or_none(self) -> Catalog | None:
        """``get_catalog``, or ``None`` (with a warning) when the database does not answer: backups go on."""
        try:
            return self.get_catalog()
        except CATALOG_OUTAGES as exc:
            orig = getattr(exc, "orig", None) or exc
            self.log.warning(
                "the backup catalog does not answer (%s: %s); carrying on without it, it catches up on the next run",
                type(orig).__name__,
                str(orig).splitlines()[0][:300] if str(orig) else "",
            )
            return None


@contextmanager
def open_catalog_or_none(catalog_conn_id: str | None, sqlite_path: str | None) -> Iterator[Catalog | None]:
    """``CatalogHook.get_catalog_or_none`` for one step, closed afterwards (``None``: the catalog is down)."""
    catalog = CatalogHook(catalog_conn_id=catalog_conn_id, sqlite_path=sqlite_path).get_catalog_or_none()
    try:
        yield catalog
    finally:
        if catalog is not None:
            catalog.close()
