"""TidbClusterReadyTrigger: wait, in the triggerer, until a scratch TidbCluster is Ready.

Reads the ``TidbCluster`` through the provider's ``AsyncKubernetesHook`` every ``poll_seconds`` and fires once:

* ``{"status": "ready", …}`` when ``tidbops.k8s.scratch.readiness`` says so;
* ``{"status": "timeout", "waiting_for": […]}`` when ``deadline`` (epoch seconds) passes first;
* ``{"status": "gone", …}`` when the TidbCluster is not there any more (deleted under the drill).

An API answer other than 404, or no answer, is retried on the next poll (the timeout's message names the last
one). It serialises only plain values.
"""

from __future__ import annotations

from typing import Any

from tidbops_airflow.triggers.kube_wait import KubeObjectTrigger

CLASSPATH = "tidbops_airflow.triggers.kube_scratch.TidbClusterReadyTrigger"


class TidbClusterReadyTrigger(KubeObjectTrigger):
    """Fires when the TidbCluster ``namespace/name`` is Ready (or ``deadline`` passes, or it is gone).

    :param conn_id: the cncf-kubernetes connection.
    :param namespace: the TidbCluster's namespace.
    :param name: the TidbCluster's name.
    :param deadline: epoch seconds after which the wait ends with ``timeout``.
    :param poll_seconds: seconds between two reads.
    """

    classpath = CLASSPATH

    async def _read(self) -> dict[str, Any] | None:
        from tidbops.k8s.scratch import GROUP, PLURAL, VERSION

        return await self._read_custom(GROUP, VERSION, PLURAL)

    def _judge(self, found: dict[str, Any] | None) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        from tidbops.k8s.scratch import readiness

        if found is None:
            return {"status": "gone"}, ()
        state = readiness(found)
        return ({"status": "ready"}, ()) if state.ready else (None, tuple(state.waiting_for))
