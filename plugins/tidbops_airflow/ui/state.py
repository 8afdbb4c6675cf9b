"""What the UI reads in the API server: the fleet config and the catalog (one engine per process, migrated once).

The fleet config is the one the DAGs use (``TIDBOPS_FLEET_CONFIG``, else ``include/config/clusters.yaml``),
validated once per content (``tidbops_airflow.dagbuilder.fleet``). The catalog is the fleet config's
``catalog`` section through ``CatalogHook.catalog_url``: its Airflow connection is read with the SDK's
``BaseHook.get_connection``, which works in the API server (that process runs in Airflow's "server"
context, whose secrets backends are the environment, any configured backend and the metadata database).
A catalog URL gets one ``Catalog`` (one SQLAlchemy engine and pool) for the life of the process; a new
URL (a changed connection) opens a new one. Nothing here ever shows the URL's password: errors name the
driver's error class and first line only.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from tidbops.catalog.store import Catalog
from tidbops.config import Fleet
from tidbops.redact import redact
from tidbops.text import one_line


class CatalogUnavailable(Exception):
    """The catalog database did not answer (or could not be migrated): the pages answer 503."""


def fleet() -> Fleet:
    """The fleet config the DAGs use (a file that cannot be read gives no clusters and one issue)."""
    from tidbops_airflow.dagbuilder import fleet as dag_fleet

    return dag_fleet()


def now() -> datetime:
    return datetime.now(UTC)


class _Catalogs:
    """One migrated ``Catalog`` per catalog URL in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Catalog] = {}

    def get(self, current: Fleet) -> Catalog:
        from tidbops_airflow.hooks.catalog import CatalogHook

        hook = CatalogHook(catalog_conn_id=current.catalog.conn_id, sqlite_path=current.catalog.sqlite_path)
        try:
            url = hook.catalog_url()
        except Exception as exc:  # e.g. the connection id is not defined: say so, without its content
            raise CatalogUnavailable(f"the catalog connection cannot be read: {redact(first_line(exc))}") from None
        with self._lock:
            catalog = self._open.get(url)
            if catalog is not None:
                return catalog
            catalog = Catalog.from_url(url)
            try:
                catalog.migrate()
            except (SQLAlchemyError, OSError) as exc:
                catalog.close()
                orig = getattr(exc, "orig", None) or exc
                raise CatalogUnavailable(
                    f"the catalog does not answer ({type(orig).__name__}: {redact(first_line(orig))})"
                ) from None
            self._open[url] = catalog
            return catalog

    def close_all(self) -> None:
        with self._lock:
            for catalog in self._open.values():
                catalog.close()
            self._open.clear()


def first_line(exc: object, limit: int = 300) -> str:
    """An error's first line, cut: enough to say what went wrong."""
    text = str(exc).strip()
    return one_line(text.splitlines()[0], limit) if text else ""


catalogs = _Catalogs()


def catalog(current: Fleet) -> Catalog:
    """The catalog of ``current`` (opened and migrated on first use); ``CatalogUnavailable`` if it does not answer."""
    return catalogs.get(current)
