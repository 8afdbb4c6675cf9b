"""Holds: the backups a restore reads are kept by retention until the restore is recorded (#16).

A drill (holder: its drill id) or an on-demand restore (holder: its restore id) holds the backups it
restores from the moment it plans them until it records its outcome; retention never expires a held
backup. Each step that works on them takes the holds again (``Catalog.hold_backups`` replaces a holder's
holds: a retried task piles up nothing); the record step releases them. A holder that dies without
releasing loses its holds when their ttl passes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from tidbops.config import ClusterConfig

if TYPE_CHECKING:
    from tidbops.catalog.store import Catalog

#: what a hold covers beyond the BR runs: waiting for the log checkpoint or the scratch (an hour each at
#: most, ``drill_dag``), validation, the record step
HOLD_MARGIN = timedelta(hours=3)


def hold_ttl(br_timeout: float, steps: int, margin: timedelta = HOLD_MARGIN) -> timedelta:
    """How long a hold lasts: BR's timeout (``br.timeout``, seconds) for each restore step, plus ``margin``."""
    return timedelta(seconds=br_timeout * max(steps, 1)) + margin


class HoldingPlan(Protocol):
    """What holding a plan's backups needs (any ``RecoveryPlan``)."""

    @property
    def plan_id(self) -> str: ...
    @property
    def backups_used(self) -> tuple[str, ...]: ...


def hold_plan(catalog: Catalog, cluster: ClusterConfig, plan: HoldingPlan) -> timedelta:
    """Hold ``plan``'s backups of ``cluster`` (its source) for its holder (the plan id), replacing its
    earlier holds; returns the ttl. Raises what the catalog raises (a step that must hold fails and
    retries)."""
    ttl = hold_ttl(cluster.br.timeout, len(plan.backups_used))
    catalog.hold_backups(cluster.name, plan.backups_used, plan.plan_id, ttl=ttl)
    return ttl


def hold_again(
    catalog: Catalog | None, cluster: ClusterConfig, plan: HoldingPlan
) -> tuple[timedelta | None, list[str]]:
    """Take ``plan``'s holds again, a full ttl from now, from a step after the plan: the ttl, or ``None``
    and a note when the catalog does not answer (the earlier holds stand until their ttl)."""
    from tidbops.backup import CatalogLink

    notes: list[str] = []
    ttl = CatalogLink(catalog, notes).call("hold the backups", lambda c: hold_plan(c, cluster, plan))
    return ttl, notes
