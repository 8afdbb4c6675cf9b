"""BRPodTrigger: wait, in the triggerer, until a BR pod of the ``kubernetes`` runner has ended.

A task whose BR runs in a pod defers while BR runs (``KubernetesRunner`` with ``BRHook.deferrable``), so no
worker slot is held during a long backup. This trigger reads the pod through the provider's
``AsyncKubernetesHook`` every ``poll_seconds`` and fires once:

* ``{"status": "ended", "phase": …}`` when ``tidbops.k8s.pod.pod_state`` says the pod will not go on by itself
  (succeeded, failed, evicted, its image not pulled, its container not started, or gone);
* ``{"status": "timeout"}`` when ``deadline`` (epoch seconds) passes first.

It never deletes the pod: the resumed task reads its log (BR's output, parsed as a local run's) and deletes it.
An API answer other than 404, or no answer, is retried on the next poll. It serialises only plain values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

CLASSPATH = "tidbops_airflow.triggers.kubepod.BRPodTrigger"


class BRPodTrigger(BaseTrigger):
    """Fires when the pod ``namespace/name`` has ended (or ``deadline`` passes).

    :param conn_id: the cncf-kubernetes connection.
    :param namespace: the pod's namespace.
    :param name: the pod's name.
    :param deadline: epoch seconds after which the wait ends with ``timeout`` (BR's timeout).
    :param poll_seconds: seconds between two reads.
    """

    def __init__(self, *, conn_id: str, namespace: str, name: str, deadline: float, poll_seconds: float) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.namespace = namespace
        self.name = name
        self.deadline = float(deadline)
        self.poll_seconds = float(poll_seconds)

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

        hook = AsyncKubernetesHook(conn_id=self.conn_id)
        async with hook.get_conn() as api:
            try:
                pod = await client.CoreV1Api(api).read_namespaced_pod(self.name, self.namespace)
            except client.ApiException as e:
                if e.status == 404:
                    return None
                raise
            return dict(api.sanitize_for_serialization(pod))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import aiohttp
        from kubernetes_asyncio.client import ApiException

        from tidbops.k8s.pod import pod_state

        where = {"namespace": self.namespace, "name": self.name}
        last = "no answer from the Kubernetes API yet"
        while True:
            try:
                pod = await self._read()
            except (ApiException, aiohttp.ClientError, TimeoutError) as e:  # retried; the timeout names it
                last = f"the Kubernetes API: {type(e).__name__}: {str(e)[:200]}"
            else:
                state = pod_state(pod)
                if state.finished:
                    yield TriggerEvent({"status": "ended", "phase": state.phase, "detail": state.detail, **where})
                    return
                last = f"the pod is {state.phase}"
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "detail": last, **where})
                return
            await asyncio.sleep(max(0.0, min(self.poll_seconds, self.deadline - time.time())))
