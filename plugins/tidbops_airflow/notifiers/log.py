"""TiDBOpsLogNotifier: an alert written into the task log (the ``log`` alert route; always available)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseNotifier, Context

from tidbops_airflow.notifiers.payload import alert_summary


class TiDBOpsLogNotifier(BaseNotifier):
    """Logs a failure alert (one ERROR line with the alert as JSON).

    :param route: the alert route's name (from the fleet config).
    :param cluster: the cluster the DAG protects.
    :param note: an extra remark logged with the alert (why a route fell back to the log, say).
    """

    template_fields: Sequence[str] = ()

    def __init__(self, *, route: str, cluster: str | None = None, note: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.route = route
        self.cluster = cluster
        self.note = note

    def notify(self, context: Context) -> None:
        alert = alert_summary(context, route=self.route, cluster=self.cluster)
        if self.note:
            alert["note"] = self.note
        self.log.error("ALERT %s", json.dumps(alert, sort_keys=True, default=str))
