"""What the operators of the newer pipelines share: one cluster, and a catalog that must answer.

Retention and verification write decisions and verdicts to the catalog, so, unlike a backup (which goes on
without it and catches up later), they fail when it does not answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from tidbops.config import ClusterConfig

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog


# BaseOperator's own __init__, without the ``apply_defaults`` wrapper Airflow's metaclass puts around every
# operator class's ``__init__``, and the arguments that wrapper fills in from ``default_args``.
_BASE_INIT = BaseOperator.__init__.__wrapped__  # type: ignore[attr-defined]
_BASE_ARGS = frozenset(inspect.signature(_BASE_INIT).parameters) - {"self", "kwargs"}


def init_base_operator(op: BaseOperator, kwargs: dict[str, Any], /, **fields: Any) -> None:
    """``super().__init__(**kwargs)`` and ``op.<name> = value`` for each of ``fields``, for an operator whose
    ``__init__`` comes straight after BaseOperator's, without a second pass of Airflow's ``apply_defaults``.

    Airflow wraps every ``__init__`` of an operator class; the wrapper of the class being built has already
    found the DAG and task group, merged ``default_args`` and ``params`` and passed them in ``kwargs``, and
    will record the arguments and wire XComArg upstreams. The wrapper of ``BaseOperator.__init__`` would do
    all of that again (a tenth of a task's parse time); what it adds, filling BaseOperator's own arguments
    (owner, retries, on_failure_callback, ...) from ``default_args``, is done here, and so is recording them
    among the arguments the task was built with (the serializer reads them).

    ``fields`` (the operator's own arguments) go straight into the instance's ``__dict__``: while an operator
    is being built, BaseOperator's ``__setattr__`` only looks for a ``_convert_<name>`` method (none of our
    fields has one) before storing the value, at a few microseconds an attribute.
    """
    default_args = kwargs.get("default_args") or {}
    filled = {name: default_args[name] for name in _BASE_ARGS.intersection(default_args).difference(kwargs)}
    kwargs.update(filled)
    _BASE_INIT(op, **kwargs)
    if filled:
        op._BaseOperator__init_kwargs.update(filled)  # type: ignore[attr-defined]
    vars(op).update(fields)


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
        init_base_operator(
            self, kwargs, cluster=cluster, catalog_conn_id=catalog_conn_id, catalog_sqlite_path=catalog_sqlite_path
        )

    def _catalog(self) -> Catalog:
        """The catalog, migrated; raises when it does not answer."""
        from tidbops_airflow.hooks.catalog import CatalogHook

        return CatalogHook(catalog_conn_id=self.catalog_conn_id, sqlite_path=self.catalog_sqlite_path).get_catalog()
