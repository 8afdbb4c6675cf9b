"""TiDBOpsWebhookNotifier: a failure alert POSTed as JSON to the URL of an Airflow http connection.

The connection (type http) is read by the http provider's ``HttpHook``: ``host`` is the full URL
(``https://alerts.example.com/hooks/tidbops``), or a host name with ``schema`` (``https``) and ``port``;
login/password are sent as basic auth; every other key of extra is sent as a header (e.g.
``{"Authorization": "Bearer …"}``). Airflow masks the password and the extra in logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseNotifier, Context

from tidbops_airflow.notifiers.payload import alert_summary

DEFAULT_TIMEOUT = 10.0


class TiDBOpsWebhookNotifier(BaseNotifier):
    """POST ``alert_summary`` (JSON) to a webhook.

    :param http_conn_id: the Airflow http connection with the webhook's URL.
    :param route: the alert route's name (from the fleet config), sent in the payload.
    :param cluster: the cluster the DAG protects, sent in the payload.
    :param timeout: seconds before the POST gives up.
    """

    template_fields: Sequence[str] = ("http_conn_id",)

    def __init__(
        self,
        *,
        http_conn_id: str,
        route: str = "webhook",
        cluster: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id
        self.route = route
        self.cluster = cluster
        self.timeout = timeout

    def payload(self, context: Context) -> dict[str, Any]:
        return alert_summary(context, route=self.route, cluster=self.cluster)

    def notify(self, context: Context) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="POST", http_conn_id=self.http_conn_id)
        response = hook.run(
            json=self.payload(context),
            headers={"Content-Type": "application/json"},
            extra_options={"timeout": self.timeout},
        )
        self.log.info("alert sent to webhook %s: HTTP %s", self.http_conn_id, getattr(response, "status_code", "?"))
