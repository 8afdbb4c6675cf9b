"""Operators that talk to a TiDB cluster over SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from tidbops_airflow.operators.common import init_base_operator


class TiDBCheckClusterOperator(BaseOperator):
    """Check a cluster answers SQL and read its version, GC safepoint and GC life time.

    Fails when the cluster does not answer. Returns the facts (JSON-safe) as XCom.

    :param cluster: the cluster name from the fleet config (for the log line).
    :param tidb_conn_id: the Airflow connection of the cluster's SQL endpoint.
    """

    template_fields: Sequence[str] = ("cluster", "tidb_conn_id")
    ui_color = "#e0f0ff"

    def __init__(self, *, cluster: str, tidb_conn_id: str, **kwargs: Any) -> None:
        init_base_operator(self, kwargs, cluster=cluster, tidb_conn_id=tidb_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from tidbops.timefmt import show
        from tidbops_airflow.hooks.tidb import TiDBHook

        facts = TiDBHook(tidb_conn_id=self.tidb_conn_id).cluster_facts()
        self.log.info(
            "cluster %s answers: TiDB %s, GC safepoint %s, GC life time %ss",
            self.cluster,
            facts.tidb_version or f"(not TiDB: {facts.server_version})",
            show(facts.gc_safe_point),
            facts.gc_life_time_seconds,
        )
        return {"cluster": self.cluster, **facts.to_dict()}
