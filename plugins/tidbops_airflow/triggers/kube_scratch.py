"""TidbClusterReadyTrigger: wait, in the triggerer, until a scratch TidbCluster is Ready.

Reads the ``TidbCluster`` through the provider's ``AsyncKubernetesHook`` every ``poll_seconds`` and fires once:

* ``{"status": "ready", …}`` when ``tidbops.k8s.scratch.readiness`` says so;
* ``{"status": "timeout", "waiting_for": […]}`` when ``deadline`` (epoch seconds) passes first;
* ``{"status": "gone", …}`` when the TidbCluster is not there any more (deleted under the drill).

An API answer other than 404, or no answer, is retried on the next poll (the timeout's message names the last
one). It serialises only plain values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

CLASSPATH = "tidbops_airflow.triggers.kube_scratch.TidbClusterReadyTrigger"


class TidbClusterReadyTrigger(BaseTrigger):
    """Fires when the TidbCluster ``namespace/name`` is Ready (or ``deadline`` passes, or it is gone).

    :param conn_id: the cncf-kubernetes connection.
    :param namespace: the TidbCluster's namespace.
    :param name: the TidbCluster's name.
    :param deadline: epoch seconds after which the wait ends with ``timeout``.
    :param poll_seconds: seconds between two reads.
    """

    def __init__(self, *, conn_id: str, namespace: str, name: str, deadline: float, poll_seconds: float) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.namespace = namespace
        self.name = name
        self.deadline = deadline
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {
            "conn_id": self.conn_id,
            "namespace": self.namespace,
            "name": self.name,
            "deadline": self.deadline,
            "poll_seconds": self.poll_seconds,
        }

    async def _read(self) -> dict[str, Any] | None:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
        from kubernetes_asyncio import client

        from tidbops.k8s.scratch import GROUP, PLURAL, VERSION

        hook = AsyncKubernetesHook(conn_id=self.conn_id)
        async with hook.get_conn() as api:
            try:
                found = await client.CustomObjectsApi(api).get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.name
                )
            except client.ApiException as e:
                if e.status == 404:
                    return None
                raise
        return dict(found)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import aiohttp
        from kubernetes_asyncio.client import ApiException

        from tidbops.k8s.scratch import readiness

        where = {"namespace": self.namespace, "name": self.name}
        waiting: tuple[str, ...] = ("no answer from the Kubernetes API yet",)
        while True:
            try:
                tc = await self._read()
            except (ApiException, aiohttp.ClientError, TimeoutError) as e:  # retried; the timeout names it
                waiting = (f"the Kubernetes API: {type(e).__name__}: {str(e)[:200]}",)
            else:
                if tc is None:
                    yield TriggerEvent({"status": "gone", **where})
                    return
                state = readiness(tc)
                if state.ready:
                    yield TriggerEvent({"status": "ready", **where})
                    return
                waiting = state.waiting_for
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "waiting_for": list(waiting), **where})
                return
            await asyncio.sleep(max(0.0, min(self.poll_seconds, self.deadline - time.time())))
