"""BR runners inside Airflow: ``runner_for(cluster, hook)`` picks the cluster's ``br.runner``.

* ``local`` (default): ``tidbops.br.runner.LocalRunner``, a subprocess of the worker.
* ``kubernetes``: ``tidbops_airflow.runners.kubernetes.KubernetesRunner``, one pod per BR command.
* ``tidb-operator``: ``tidbops_airflow.runners.tidb_operator.TiDBOperatorRunner``, TiDB Operator's
  ``Backup``/``Restore`` resources.

Every BR call of the plugins goes through the runner this returns (``BRHook.runner``), see
``tidbops.br.seam``. The providers are imported only for the runner a cluster uses (DAG parsing imports
none of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidbops.br.runner import LocalRunner

if TYPE_CHECKING:
    from tidbops.br.seam import BRRunner
    from tidbops.config import ClusterConfig
    from tidbops_airflow.hooks.br import BRHook


def runner_for(cluster: ClusterConfig, hook: BRHook | None = None) -> BRRunner:
    """A fresh runner for ``cluster`` (one per hook: it holds what is running, for ``kill``)."""
    kind = cluster.br.runner
    if kind == "local":
        return LocalRunner()
    if kind == "kubernetes":
        from tidbops_airflow.runners.kubernetes import KubernetesRunner

        return KubernetesRunner(cluster, hook)
    if kind == "tidb-operator":
        from tidbops_airflow.runners.tidb_operator import TiDBOperatorRunner

        return TiDBOperatorRunner(cluster, hook)
    raise ValueError(f"cluster {cluster.name}: unknown br.runner {kind!r}")  # the config allows no other
