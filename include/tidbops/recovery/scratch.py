"""The target of a restore: only a cluster marked ``scratch: true`` is ever wiped; any other must be empty.

BR restores a full or PITR restore only into a cluster without user databases. A drill always restores
into a scratch cluster (``scratch_target``: refused at config load, and again here at run time, for
whatever target a run asks for); an on-demand restore may restore into any allowed target, and
``prepare_target`` drops what a scratch target holds and refuses a non-scratch one that is not empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tidbops.config import ClusterConfig
from tidbops.recovery.errors import NotScratchError, TargetNotEmptyError
from tidbops.validate.sql import Cursor, quote

#: Databases a cluster keeps: the server's own. Everything else is what a restore brought (or left).
SERVER_SCHEMAS = frozenset(
    {"mysql", "sys", "information_schema", "performance_schema", "metrics_schema", "inspection_schema"}
)


def ensure_scratch(cluster: ClusterConfig | None, name: str, *, source: str) -> ClusterConfig:
    """``cluster`` when it is a scratch cluster other than ``source``; else ``NotScratchError`` (nothing
    has been touched)."""
    if cluster is None:
        raise NotScratchError(
            f"drill of {source}: target {name!r} is not a cluster of the fleet config; refused (nothing touched)"
        )
    if not cluster.scratch:
        raise NotScratchError(
            f"drill of {source}: target {cluster.name!r} is not marked scratch: true in the fleet config; a drill "
            f"drops every database of its target, so it only ever restores into a scratch cluster. Refused "
            f"(nothing touched)"
        )
    if cluster.name == source:
        raise NotScratchError(f"drill of {source}: the target is the cluster itself; refused (nothing touched)")
    return cluster


def scratch_target(
    clusters: Mapping[str, ClusterConfig], source: ClusterConfig, requested: str | None = None
) -> ClusterConfig:
    """The scratch cluster a drill of ``source`` restores into: ``requested`` (a run's choice) or
    ``drill.target``; checked against the fleet config as it is now (it may have changed since the DAG
    was built)."""
    name = (requested or "").strip() or source.drill.target
    if not name:
        raise NotScratchError(f"drill of {source.name}: no target (set drill.target to a scratch cluster)")
    return ensure_scratch(clusters.get(name), name, source=source.name)


def leftover_schemas(cursor: Cursor) -> list[str]:
    """Every database of a cluster but the server's own."""
    cursor.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
    return [str(r[0]) for r in cursor.fetchall() if str(r[0]).lower() not in SERVER_SCHEMAS]


def _drop(cursor: Cursor, names: Sequence[str]) -> None:
    if names:
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        for name in names:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")
        cursor.execute("SET FOREIGN_KEY_CHECKS = 1")


def clear_scratch(cursor: Cursor, target: ClusterConfig, *, source: str) -> list[str]:
    """Drop every database a drill (or anything else) left in the scratch cluster ``target``; returns them.

    Refuses, before a single statement, a target that is not marked scratch.
    """
    ensure_scratch(target, target.name, source=source)
    dropped = leftover_schemas(cursor)
    _drop(cursor, dropped)
    return dropped


def check_target_databases(target: ClusterConfig, databases: Iterable[str]) -> tuple[str, ...]:
    """What must be dropped from ``target`` before BR restores into it: its user databases when it is
    marked scratch; ``TargetNotEmptyError`` naming them when it is not (tidbops never wipes it)."""
    user = sorted(d for d in databases if d.lower() not in SERVER_SCHEMAS)
    if user and not target.scratch:
        shown = ", ".join(user[:20]) + (f", … {len(user) - 20} more" if len(user) > 20 else "")
        raise TargetNotEmptyError(
            f"target {target.name} is not empty: databases {shown}. BR restores only into a cluster without "
            f"user databases, and only clusters marked scratch: true are ever wiped by tidbops; drop them "
            f"yourself (after saving what you need) or restore into a scratch cluster"
        )
    return tuple(user)


def prepare_target(cursor: Cursor, target: ClusterConfig) -> list[str]:
    """Make ``target`` ready for BR right before it restores: a scratch target's databases are dropped
    (what an earlier restore or a failed try left; returned), any other target must be empty
    (``TargetNotEmptyError`` otherwise, before a single change)."""
    wipe = list(check_target_databases(target, leftover_schemas(cursor)))
    _drop(cursor, wipe)
    return wipe
