"""KubeObjectTrigger: the poll loop the Kubernetes waits share (a BR pod ending, a scratch TidbCluster Ready).

A subclass reads its object through the provider's ``AsyncKubernetesHook`` (``_read``: the object as a dict, or
``None`` when the API says 404) and judges it (``_judge``: the event's payload when the wait is over, else what
it still waits for). The loop reads every ``poll_seconds`` and fires once: the judged payload, or
``{"status": "timeout", "detail": …, "waiting_for": […]}`` when ``deadline`` (epoch seconds) passes first. An API
answer other than 404, or no answer, is retried on the next poll (the timeout names the last one). Triggers
serialise only plain values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent


class KubeObjectTrigger(BaseTrigger):
    """Fires when ``_judge`` says the object ``namespace/name`` is done with (or ``deadline`` passes).

    :param conn_id: the cncf-kubernetes connection.
    :param namespace: the object's namespace.
    :param name: the object's name.
    :param deadline: epoch seconds after which the wait ends with ``timeout``.
    :param poll_seconds: seconds between two reads.
    """

    classpath: ClassVar[str]

    def __init__(self, *, conn_id: str, namespace: str, name: str, deadline: float, poll_seconds: float) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.namespace = namespace
        self.name = name
        self.deadline = float(deadline)
        self.poll_seconds = float(poll_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self.classpath, {
            "conn_id": self.conn_id,
            "namespace": self.namespace,
            "name": self.name,
            "deadline": self.deadline,
            "poll_seconds": self.poll_seconds,
        }

    async def _read(self) -> dict[str, Any] | None:
        raise NotImplementedError

    async def _read_custom(self, group: str, version: str, plural: str) -> dict[str, Any] | None:
        """The custom resource ``namespace/name`` of ``group/version`` ``plural``, or ``None`` on a 404."""
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
        from kubernetes_asyncio import client

        hook = AsyncKubernetesHook(conn_id=self.conn_id)
        async with hook.get_conn() as api:
            try:
                found = await client.CustomObjectsApi(api).get_namespaced_custom_object(
                    group, version, self.namespace, plural, self.name
                )
            except client.ApiException as e:
                if e.status == 404:
                    return None
                raise
        return dict(found)

    def _judge(self, found: dict[str, Any] | None) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        """``(payload, ())`` when the wait is over, else ``(None, what it still waits for)``."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import aiohttp
        from kubernetes_asyncio.client import ApiException

        where = {"namespace": self.namespace, "name": self.name}
        waiting: tuple[str, ...] = ("no answer from the Kubernetes API yet",)
        while True:
            try:
                found = await self._read()
            except (ApiException, aiohttp.ClientError, TimeoutError) as e:  # retried; the timeout names it
                waiting = (f"the Kubernetes API: {type(e).__name__}: {str(e)[:200]}",)
            else:
                payload, waiting = self._judge(found)
                if payload is not None:
                    yield TriggerEvent({**payload, **where})
                    return
            if time.time() >= self.deadline:
                timeout = {"status": "timeout", "detail": "; ".join(waiting), "waiting_for": list(waiting)}
                yield TriggerEvent({**timeout, **where})
                return
            await asyncio.sleep(max(0.0, min(self.poll_seconds, self.deadline - time.time())))
