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

from typing import Any

from tidbops_airflow.triggers.kube_wait import KubeObjectTrigger

CLASSPATH = "tidbops_airflow.triggers.kubepod.BRPodTrigger"


class BRPodTrigger(KubeObjectTrigger):
    """Fires when the pod ``namespace/name`` has ended (or ``deadline`` passes).

    :param conn_id: the cncf-kubernetes connection.
    :param namespace: the pod's namespace.
    :param name: the pod's name.
    :param deadline: epoch seconds after which the wait ends with ``timeout`` (BR's timeout).
    :param poll_seconds: seconds between two reads.
    """

    classpath = CLASSPATH

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

    def _judge(self, found: dict[str, Any] | None) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        from tidbops.k8s.pod import pod_state

        state = pod_state(found)
        if state.finished:
            return {"status": "ended", "phase": state.phase, "detail": state.detail}, ()
        return None, (f"the pod is {state.phase}",)
