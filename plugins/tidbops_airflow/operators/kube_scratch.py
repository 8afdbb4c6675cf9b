"""Scratch clusters made on Kubernetes for a drill or a restore: create (or adopt) → wait Ready → delete.

For a target with ``scratch_kubernetes`` in the fleet config (``tidbops.k8s.scratch`` renders and reads what
these create): ``create_scratch_cluster`` makes the plan's TidbCluster (named from the target and the drill or
restore id: a retried task adopts the cluster its earlier try made), waits until it is Ready (deferred to the
triggerer by default: no worker slot is held while TiKV starts), then points the stable Services the fleet
config names (``<target>-pd``, ``<target>-tidb``) at it and returns its addresses. ``delete_scratch_cluster`` runs
whatever happened before it (trigger rule ``all_done``) and deletes the TidbCluster and those Services.

Both are no-ops for a target without ``scratch_kubernetes``, and skip when the plan restores into another
target (the on-demand restore has a pair per possible target) or is a dry run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context

from tidbops_airflow.operators.common import init_base_operator

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    from tidbops.config import ClusterConfig, ScratchKubernetesConfig
    from tidbops.recovery.plan import RecoveryPlan


class ScratchClusters:
    """The Kubernetes side of scratch clusters for one target, through the provider's ``KubernetesHook``.

    :param target: the scratch cluster's name in the fleet config.
    :param config: its ``scratch_kubernetes``.
    :param hook: a hook on ``config.conn_id``.
    """

    def __init__(self, target: str, config: ScratchKubernetesConfig, hook: KubernetesHook) -> None:
        self.target = target
        self.config = config
        self.hook = hook

    def _crs(self) -> Any:
        return self.hook.custom_object_client

    def read(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        from tidbops.k8s.scratch import GROUP, PLURAL, VERSION

        try:
            found = self._crs().get_namespaced_custom_object(GROUP, VERSION, self.config.namespace, PLURAL, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return dict(found)

    def create_or_adopt(self, manifest: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the TidbCluster; when one of that name is there already (an earlier try), adopt it if tidbops
        made it for this target. Returns it and whether it was adopted."""
        from kubernetes.client.rest import ApiException

        from tidbops.k8s.scratch import GROUP, PLURAL, VERSION, ScratchClusterError, is_ours

        name = manifest["metadata"]["name"]
        try:
            made = self._crs().create_namespaced_custom_object(GROUP, VERSION, self.config.namespace, PLURAL, manifest)
            return dict(made), False
        except ApiException as e:
            if e.status != 409:
                raise
        found = self.read(name)
        if found is None:  # deleted between the two calls: try once more
            made = self._crs().create_namespaced_custom_object(GROUP, VERSION, self.config.namespace, PLURAL, manifest)
            return dict(made), False
        if not is_ours(found, target=self.target):
            raise ScratchClusterError(
                f"TidbCluster {self.config.namespace}/{name} exists and was not made by tidbops for {self.target}; "
                "refused (not adopted, not deleted)"
            )
        return found, True

    def _services(self) -> list[dict[str, Any]]:
        from kubernetes.client import ApiClient

        listed = self.hook.core_v1_client.list_namespaced_service(self.config.namespace)
        return [ApiClient().sanitize_for_serialization(s) for s in listed.items]

    def taken_by(self, name: str) -> str | None:
        """Another TidbCluster, still there, that the target's alias Services point at (a drill in progress)."""
        from tidbops.k8s.scratch import alias_name, alias_owner

        for svc in self._services():
            if svc["metadata"]["name"] in (alias_name(self.target, "pd"), alias_name(self.target, "tidb")):
                owner = alias_owner(svc)
                if owner and owner != name and self.read(owner) is not None:
                    return owner
        return None

    def point_aliases(self, name: str) -> dict[str, str]:
        """Point ``<target>-pd``/``<target>-tidb`` at ``name``'s pods; returns its own addresses."""
        from kubernetes.client.rest import ApiException

        from tidbops.k8s.scratch import alias_services, endpoints

        services = self._services()
        found = endpoints(name, self.config.namespace, services)
        v1 = self.hook.core_v1_client
        for alias in alias_services(self.target, name, self.config.namespace, services):
            try:
                v1.create_namespaced_service(self.config.namespace, alias)
            except ApiException as e:
                if e.status != 409:
                    raise
                patch = {"metadata": {"labels": alias["metadata"]["labels"]}, "spec": alias["spec"]}
                v1.patch_namespaced_service(alias["metadata"]["name"], self.config.namespace, patch)
        return found.to_dict()

    def delete(self, name: str) -> list[str]:
        """Delete the TidbCluster ``name`` and the alias Services pointing at it; returns what was deleted."""
        from kubernetes.client.rest import ApiException

        from tidbops.k8s.scratch import GROUP, PLURAL, VERSION, alias_name, alias_owner, is_ours

        gone = []
        found = self.read(name)
        if found is not None and is_ours(found, target=self.target):
            try:
                self._crs().delete_namespaced_custom_object(GROUP, VERSION, self.config.namespace, PLURAL, name)
                gone.append(f"TidbCluster {name}")
            except ApiException as e:
                if e.status != 404:
                    raise
        for svc in self._services():
            svc_name = svc["metadata"]["name"]
            if (
                svc_name in (alias_name(self.target, "pd"), alias_name(self.target, "tidb"))
                and alias_owner(svc) == name
            ):
                try:
                    self.hook.core_v1_client.delete_namespaced_service(svc_name, self.config.namespace)
                    gone.append(f"Service {svc_name}")
                except ApiException as e:
                    if e.status != 404:
                        raise
        return gone


class _ScratchStep(BaseOperator):
    """The plan, its target and the target's ``scratch_kubernetes`` (None: nothing to do here)."""

    template_fields: Sequence[str] = ("target",)
    ui_color = "#d6eaf8"

    plan_task_id: str
    target: str | None

    def _scratch(self, context: Context) -> tuple[RecoveryPlan, ClusterConfig, ScratchClusters] | None:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from airflow.sdk.exceptions import AirflowSkipException

        from tidbops_airflow.dagbuilder import fleet
        from tidbops_airflow.operators.recovery import load_plan

        value = context["ti"].xcom_pull(task_ids=self.plan_task_id)
        if not isinstance(value, Mapping):
            self.log.info("no plan from %s: no scratch cluster was made", self.plan_task_id)
            return None
        plan = load_plan(value)
        if plan.dry_run:
            raise AirflowSkipException("dry run: no scratch cluster")
        if self.target and plan.target != self.target:
            raise AirflowSkipException(f"the plan restores into {plan.target}, not {self.target}")
        cluster = fleet().get(plan.target)
        if cluster.scratch_kubernetes is None:
            self.log.info("%s is not made on Kubernetes (no scratch_kubernetes): nothing to do", cluster.name)
            return None
        config = cluster.scratch_kubernetes
        return plan, cluster, ScratchClusters(cluster.name, config, KubernetesHook(conn_id=config.conn_id))


class KubeScratchCreateOperator(_ScratchStep):
    """Make the plan's scratch TidbCluster (or adopt the one an earlier try made), wait until it is Ready, and
    point the target's stable Services at it.

    :param plan_task_id: the task whose XCom is the drill's or restore's plan (its id names the cluster).
    :param target: only for this target (templated; empty: whatever the plan says).
    :param deferrable: wait in the triggerer (default) rather than in the worker.
    """

    deferrable: bool

    def __init__(self, *, plan_task_id: str, target: str | None = None, deferrable: bool = True, **kwargs: Any) -> None:
        init_base_operator(self, kwargs, plan_task_id=plan_task_id, target=target, deferrable=deferrable)

    def execute(self, context: Context) -> dict[str, Any] | None:
        from tidbops.k8s.scratch import ScratchClusterError, readiness, render_tidbcluster, scratch_name

        found = self._scratch(context)
        if found is None:
            return None
        plan, cluster, scratch = found
        config = scratch.config
        self._check_sql_host(cluster)
        name = scratch_name(cluster.name, plan.plan_id)
        other = scratch.taken_by(name)
        if other is not None:
            raise ScratchClusterError(
                f"scratch cluster {cluster.name} is in use: its Services point at TidbCluster "
                f"{config.namespace}/{other} (another drill or restore); retried later"
            )
        manifest = render_tidbcluster(
            config.template,
            name=name,
            namespace=config.namespace,
            target=cluster.name,
            plan_id=plan.plan_id,
            version=config.version,
        )
        tc, adopted = scratch.create_or_adopt(manifest)
        self.log.info(
            "%s TidbCluster %s/%s for %s", "adopted" if adopted else "created", config.namespace, name, plan.plan_id
        )
        context["ti"].xcom_push(key="tidbcluster", value=name)
        deadline = time.time() + config.ready_timeout
        if self.deferrable and not readiness(tc).ready:
            from tidbops_airflow.triggers.kube_scratch import TidbClusterReadyTrigger

            self.defer(
                trigger=TidbClusterReadyTrigger(
                    conn_id=config.conn_id,
                    namespace=config.namespace,
                    name=name,
                    deadline=deadline,
                    poll_seconds=config.poll_seconds,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=config.ready_timeout + 60),
            )
        while True:
            current = scratch.read(name)
            if current is None:
                return self.execute_complete(context, {"status": "gone", "namespace": config.namespace, "name": name})
            state = readiness(current)
            if state.ready:
                return self.execute_complete(context, {"status": "ready", "namespace": config.namespace, "name": name})
            if time.time() >= deadline:
                return self.execute_complete(
                    context,
                    {
                        "status": "timeout",
                        "namespace": config.namespace,
                        "name": name,
                        "waiting_for": list(state.waiting_for),
                    },
                )
            time.sleep(min(config.poll_seconds, max(0.0, deadline - time.time())))

    @staticmethod
    def _check_sql_host(cluster: ClusterConfig) -> None:
        """The scratch cluster's TiDB connection must reach the Service tidbops points at each drill's cluster:
        ``prepare_scratch`` drops every database of whatever it reaches."""
        from airflow.sdk import BaseHook

        from tidbops.k8s.scratch import ScratchClusterError, alias_name

        assert cluster.scratch_kubernetes is not None
        want = f"{alias_name(cluster.name, 'tidb')}.{cluster.scratch_kubernetes.namespace}.svc"
        host = (BaseHook.get_connection(cluster.tidb_conn_id).host or "").strip().lower()
        if host != want and not host.startswith(want + "."):
            raise ScratchClusterError(
                f"{cluster.name}: connection {cluster.tidb_conn_id} reaches {host or 'no host'}, not the Service in "
                f"front of each drill's TidbCluster; set its host to {want} (nothing was created)"
            )

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> dict[str, Any]:
        from tidbops.k8s.scratch import ScratchClusterError

        found = self._scratch(context)
        assert found is not None  # execute made one
        plan, cluster, scratch = found
        where = f"TidbCluster {event.get('namespace')}/{event.get('name')}"
        if event.get("status") == "gone":
            raise ScratchClusterError(f"{where} for {plan.plan_id} was deleted before it was Ready")
        if event.get("status") != "ready":
            raise ScratchClusterError(
                f"{where} not Ready after {scratch.config.ready_timeout:.0f}s (scratch_kubernetes.ready_timeout): "
                f"waiting for {'; '.join(event.get('waiting_for') or ['?'])}"
            )
        name = str(event["name"])
        addresses = scratch.point_aliases(name)
        self.log.info(
            "TidbCluster %s is Ready: PD %s, SQL %s (as %s)",
            name,
            addresses["pd"],
            addresses["sql"],
            ", ".join(cluster.pd),
        )
        return {"target": cluster.name, "namespace": scratch.config.namespace, "tidbcluster": name, **addresses}


class KubeScratchDeleteOperator(_ScratchStep):
    """Delete the plan's scratch TidbCluster and the Services pointing at it (trigger rule ``all_done``: after a
    failed restore or validation too). Nothing there is fine; an API error fails the task (and alerts).

    :param plan_task_id: the task whose XCom is the drill's or restore's plan.
    :param target: only for this target (templated; empty: whatever the plan says).
    """

    def __init__(self, *, plan_task_id: str, target: str | None = None, **kwargs: Any) -> None:
        init_base_operator(self, kwargs, plan_task_id=plan_task_id, target=target)

    def execute(self, context: Context) -> dict[str, Any] | None:
        from tidbops.k8s.scratch import scratch_name

        found = self._scratch(context)
        if found is None:
            return None
        plan, cluster, scratch = found
        name = scratch_name(cluster.name, plan.plan_id)
        gone = scratch.delete(name)
        self.log.info("%s: deleted %s", plan.plan_id, ", ".join(gone) or f"nothing (no TidbCluster {name})")
        return {"target": cluster.name, "tidbcluster": name, "deleted": gone}
