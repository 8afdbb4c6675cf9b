"""Airflow Assets of the data-protection history: Airflow's own Assets view lists every event.

* ``x-tidb://<cluster>/backups``: each verified backup (``verify_backup`` of the backup pipelines);
* ``x-tidb://<cluster>/drills``: each finished drill, passed or failed (``record_drill``);
* ``x-tidb://<target>/restores``: each on-demand restore BR finished into ``target`` (``restore__<target>``).

The scheme is ``x-tidb``, not ``tidb``: Airflow normalizes an asset URI through the handler its providers
register for the scheme, and to learn that no provider registers ``tidb`` it loads every provider's asset
module on the first ``Asset`` a process makes (the amazon provider's imports boto3: 0.17 s and boto3 in
every DAG-parsing process). A scheme starting with ``x-`` is Airflow's documented way to say "custom, no
normalization", which skips that lookup.

A task declares its asset as an outlet; Airflow records one asset event when the task succeeds, with the
``extra`` the task set through ``outlet_events`` (the id, the BackupTS or restore TSO, the size in bytes
and a few facts a reader of the Assets view wants). Nothing in an ``extra`` is secret: ids, TSOs, sizes,
cluster names, statuses, user names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset

SCHEME = "x-tidb"
GROUP = "tidbops"
BACKUPS, DRILLS, RESTORES = "backups", "drills", "restores"


def asset_for(cluster: str, what: str) -> Asset:
    """``x-tidb://<cluster>/<what>`` (``what``: backups, drills or restores)."""
    return Asset(f"{SCHEME}://{cluster}/{what}", group=GROUP)


def backups_asset(cluster: str) -> Asset:
    return asset_for(cluster, BACKUPS)


def drills_asset(cluster: str) -> Asset:
    return asset_for(cluster, DRILLS)


def restores_asset(target: str) -> Asset:
    return asset_for(target, RESTORES)


def emit(context: Mapping[str, Any], outlets: Sequence[Any], what: str, extra: Mapping[str, Any]) -> Asset | None:
    """Set the ``extra`` of the event Airflow records for this task's outlet asset ``x-tidb://…/<what>`` when
    the task succeeds; None (nothing set) when the task has no such outlet."""
    for outlet in outlets:
        if isinstance(outlet, Asset) and outlet.uri.startswith(f"{SCHEME}://") and outlet.uri.endswith(f"/{what}"):
            context["outlet_events"][outlet].extra = {k: v for k, v in extra.items() if v is not None}
            return outlet
    return None


def backups_size(catalog: Any, backup_ids: Sequence[str]) -> int | None:
    """The bytes of the backups a drill or restore used (the catalog's sizes); None when any is unknown
    or the catalog does not answer (an asset event never fails the task that emits it)."""
    if catalog is None or not backup_ids:
        return None
    try:
        sizes = [getattr(catalog.get(backup_id), "size_bytes", None) for backup_id in backup_ids]
    except Exception:  # the catalog's outage is the recording step's business, not the event's
        return None
    return None if any(s is None for s in sizes) else sum(int(s) for s in sizes)
