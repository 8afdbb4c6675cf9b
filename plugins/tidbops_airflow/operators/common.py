"""What the operators of the newer pipelines share: one cluster, and a catalog that must answer.

Retention and verification write decisions and verdicts to the catalog, so, unlike a backup (which goes on
without it and catches up later), they fail when it does not answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from tidbops.config import ClusterConfig

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog


class CleanFailure(SystemExit):
    """Fail a task with one clear line and no traceback: a verdict (a refused request, a failed run's
    summary), not a crash.

    Airflow 3.3's task runner logs ``AirflowFailException`` (and any other exception) with its traceback
    (``log.exception("Task failed with exception")``), but a ``SystemExit`` as one line, ``Task exited
    exit_code=1``, then fails the task (retrying it only if the task has retries left: raise this from
    tasks without retries). The step logs ``message`` itself first; ``str()`` of this exception is the
    message, so failure callbacks see it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ClusterCatalogStep(BaseOperator):
    """A step on one cluster that reads and writes the catalog.

    :param cluster: the cluster from the fleet config.
    :param catalog_conn_id: Airflow connection of the catalog database (``None``: SQLite in $AIRFLOW_HOME).
    :param catalog_sqlite_path: the SQLite catalog file when there is no connection.
    """

    template_fields: Sequence[str] = ("catalog_conn_id",)

    def __init__(
        self,
        *,
        cluster: ClusterConfig,
        catalog_conn_id: str | None = None,
        catalog_sqlite_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster = cluster
        self.catalog_conn_id = catalog_conn_id
        self.catalog_sqlite_path = catalog_sqlite_path

    def _catalog(self) -> Catalog:
        """The catalog, migrated; raises when it does not answer."""
        from tidbops_airflow.hooks.catalog import CatalogHook

        return CatalogHook(catalog_conn_id=self.catalog_conn_id, sqlite_path=self.catalog_sqlite_path).get_catalog()
