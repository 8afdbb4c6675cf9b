"""
### TiDB incremental backup — `tidb_backup_incremental__<cluster>`

On ``schedules.incremental`` (off: manual runs only), for every cluster that is not scratch: a BR
incremental backup (`--lastbackupts` = the BackupTS of the last succeeded, verified backup of the
current chain) into ``<storage.uri>/<cluster>/incr/<backup id>/``, cataloged, with its manifest,
verified. When an incremental is not safe, `plan_backup` takes a full backup instead and logs why: no
full backup yet, an unverified or failed link, a chain at `retention.max_chain_length`, a base older
than the GC safepoint (raise `tidb_gc_life_time` above the incremental interval), or no catalog.

Tasks: `check_cluster` → `plan_backup` → `run_br_backup` (pool `br_<cluster>`) → `record_backup` →
`verify_backup`, as in `tidb_backup_full__<cluster>`.

**Runbook.** As for the full backup. A restore of an incremental needs its whole chain: restore the
full backup, then each incremental in order (`br restore full -s <dir>` each), with no writes between.
`tidbops info --cluster <name>` shows the chains.
"""

from __future__ import annotations

from tidbops_airflow.backup_dag import build_backup_dag
from tidbops_airflow.dagbuilder import clusters_for, fleet

PIPELINE = "tidb_backup_incremental"

_fleet = fleet()
for cluster in clusters_for(PIPELINE):
    build_backup_dag(PIPELINE, "incremental", cluster, _fleet, doc_md=__doc__)
