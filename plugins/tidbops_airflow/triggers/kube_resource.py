"""BRResourceTrigger: wait, in the triggerer, until a TiDB Operator ``Backup``/``Restore`` of the ``tidb-operator``
runner has finished.

A backup step whose cluster runs BR through TiDB Operator (``br.tidb_operator.defer``) defers while the
resource runs, so no worker slot is held during a long backup. This trigger reads the resource through the
provider's ``AsyncKubernetesHook`` every ``poll_seconds`` and fires once (see ``KubeObjectTrigger``):

* ``{"status": "ended", "phase": …, "detail": …}`` when ``tidbops.k8s.operator_cr.read_state`` says the run is
  over (Complete, or Failed with the operator's reason), or ``{"status": "gone"}`` when the resource was deleted;
* ``{"status": "timeout", …}`` when ``deadline`` passes first.

It never deletes the resource: the resumed task reads its status (the outcome) and deletes it.
"""

from __future__ import annotations

from typing import Any

from tidbops_airflow.triggers.kube_wait import KubeObjectTrigger

CLASSPATH = "tidbops_airflow.triggers.kube_resource.BRResourceTrigger"


class BRResourceTrigger(KubeObjectTrigger):
    """Fires when the ``kind`` resource ``namespace/name`` (run for BR's ``command``) has finished.

    :param kind: ``Backup`` or ``Restore``.
    :param command: BR's command it stands for (``Full Backup``), for the outcome's wording.
    """

    classpath = CLASSPATH

    def __init__(self, *, kind: str, command: str, **wait: Any) -> None:
        super().__init__(**wait)
        self.kind = kind
        self.command = command

    def serialize(self) -> tuple[str, dict[str, Any]]:
        path, kwargs = super().serialize()
        return path, {**kwargs, "kind": self.kind, "command": self.command}

    async def _read(self) -> dict[str, Any] | None:
        from tidbops.k8s.operator_cr import GROUP, PLURALS, VERSION

        return await self._read_custom(GROUP, VERSION, PLURALS[self.kind])

    def _judge(self, found: dict[str, Any] | None) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        from tidbops.k8s import operator_cr as cr

        if found is None:
            return {"status": "gone"}, ()
        kind: cr.Kind = "Restore" if self.kind == "Restore" else "Backup"
        plan = cr.Plan(op="create", kind=kind, namespace=self.namespace, goal=cr.Goal.COMPLETE, command=self.command)
        state = cr.read_state(plan, found)
        if state.finished:
            return {"status": "ended", "phase": state.phase, "detail": state.detail}, ()
        return None, (state.detail,)
