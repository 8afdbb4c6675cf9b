"""Who may see what: Airflow's login and auth manager decide, per request.

1. **Logged in.** Every page and JSON route needs a valid Airflow login: the UI's JWT cookie (pages opened
   from Airflow's nav) or ``Authorization: Bearer <token>`` from ``POST /auth/token``
   (``airflow.api_fastapi.core_api.security.get_user``). None, or an expired one: 401.
2. **Allowed the view.** The auth manager must authorize ``GET`` on the custom view ``RESOURCE_NAME``
   (``is_authorized_custom_view``, what Airflow 3 offers plugin views): else 403. With the simple auth
   manager every role (viewer and up) may; a user without a role may not. With FAB or Keycloak, grant
   the resource ``tidbops`` (custom view) to the roles that should see it.
3. **Per cluster.** A source cluster is visible iff the auth manager authorizes ``GET`` on at least one of
   its DAGs ``<pipeline>__<cluster>`` (``filter_authorized_dag_ids``): who may read a cluster's pipelines
   may read its backup history. An invisible cluster is absent from the fleet, answers 404 like an unknown
   one, and its events are left out of the audit and its exports. Events of no cluster, or of a cluster
   no longer in the fleet config, are shown only to users who see every cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tidbops.config import Fleet
from tidbops.fleetview.models import ClusterPolicy
from tidbops.fleetview.queries import policies_from_fleet
from tidbops_airflow.dagbuilder import dag_id_for
from tidbops_airflow.ui import state

RESOURCE_NAME = "tidbops"
#: every per-cluster pipeline (``dags/*.py``: ``PIPELINE``); ``tidb_restore`` is one DAG for the whole fleet
CLUSTER_PIPELINES = (
    "tidb_backup_full",
    "tidb_backup_incremental",
    "tidb_log_backup_check",
    "tidb_restore_drill",
    "tidb_verify",
    "tidb_retention",
    "tidb_slow_query_harvest",
    "tidb_cluster_check",
)


def cluster_dag_ids(cluster: str) -> tuple[str, ...]:
    return tuple(dag_id_for(pipeline, cluster) for pipeline in CLUSTER_PIPELINES)


@dataclass(frozen=True)
class Viewer:
    """A logged-in user allowed the view, and the source clusters (with their policies) it may see."""

    user: Any
    fleet: Fleet
    policies: tuple[ClusterPolicy, ...]  # visible ones, in config order
    sees_all: bool

    @property
    def name(self) -> str:
        return str(self.user.get_name())

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(p.cluster for p in self.policies)

    def policy(self, cluster: str) -> ClusterPolicy:
        """The visible cluster's policy; else 404 naming the clusters this user may see."""
        for policy in self.policies:
            if policy.cluster == cluster:
                return policy
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=unknown_cluster(cluster, self.clusters))

    def audit_scope(self) -> tuple[str, ...] | None:
        """``AuditQuery.clusters``: ``None`` (every event) for a user who sees every cluster."""
        return None if self.sees_all else self.clusters


def unknown_cluster(cluster: str, known: Sequence[str]) -> str:
    names = ", ".join(known) if known else "none"
    shown = cluster if len(cluster) <= 80 else cluster[:79] + "…"
    return f"no cluster {shown!r}; known clusters: {names}"


def visible_policies(auth_manager: Any, user: Any, policies: Sequence[ClusterPolicy]) -> list[ClusterPolicy]:
    """The policies whose cluster has at least one DAG the user may read, in their order (one batch call)."""
    wanted = {dag_id for p in policies for dag_id in cluster_dag_ids(p.cluster)}
    allowed = auth_manager.filter_authorized_dag_ids(dag_ids=wanted, user=user, method="GET")
    return [p for p in policies if any(dag_id in allowed for dag_id in cluster_dag_ids(p.cluster))]


def _auth_manager() -> Any:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


_bearer = HTTPBearer(auto_error=False, description="a JWT from Airflow's `POST /auth/token`")


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> Any:
    """Airflow's own ``get_user``: the bearer token, else the UI's cookie; 401 without either.

    Imported here, not at module level: Airflow's security module costs about a second to import, and
    this plugin module is imported by every Airflow process (the scheduler, the CLI), not only the API server.
    """
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, credentials)


def require_viewer(user: Annotated[Any, Depends(current_user)]) -> Viewer:
    """The dependency of every page and JSON route: 401 without a login, 403 without the view."""
    auth_manager = _auth_manager()
    if not auth_manager.is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"user {user.get_name()!r} may not open the data protection view "
            f"(the auth manager refuses GET on the custom view {RESOURCE_NAME!r})",
        )
    current = state.fleet()
    policies = policies_from_fleet(current)
    visible = visible_policies(auth_manager, user, policies)
    return Viewer(user=user, fleet=current, policies=tuple(visible), sees_all=len(visible) == len(policies))


ViewerDep = Annotated[Viewer, Depends(require_viewer)]
