"""The parts of the on-demand restore rules the ``tidb_restore`` DAG needs at parse time (the form's
texts, the targets it builds a restore task for), kept light: only the fleet config, no catalog, no
SQLAlchemy. ``tidbops.restore`` holds the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

from tidbops.config import ClusterConfig

POINT_FORMATS = (
    "'latest' (the newest restorable point: the log checkpoint with PITR, else the newest verified backup); "
    "a date and time with its zone, e.g. '2026-11-22 10:41:07+01:00', '2026-11-22T10:41:07Z' or "
    "'2026-11-22 10:41:07+0100'; a TSO (all digits, as BR reads it); or a backup id from the catalog, "
    "e.g. 'dev-full-20261122T010000Z-1a2b3c4d'"
)


def allowed_targets(source: ClusterConfig, clusters: Mapping[str, ClusterConfig]) -> list[str]:
    """Where ``source`` may be restored: ``restore.allowed_targets``, or (when that is empty) every
    scratch cluster; plus the source itself when ``restore.allow_in_place``."""
    names = list(source.restore.allowed_targets) or sorted(n for n, c in clusters.items() if c.scratch)
    names = [n for n in names if n in clusters and (n != source.name or source.restore.allow_in_place)]
    if source.restore.allow_in_place and source.name not in names:
        names.append(source.name)
    return names


def needs_confirm(target: ClusterConfig, dry_run: bool) -> bool:
    """``confirm`` must name the target when it is production (even for a dry run: the plan of a
    production restore is rehearsed as it will be typed) and for any real restore into a cluster that is
    not marked scratch."""
    return target.is_production or (not dry_run and not target.scratch)
