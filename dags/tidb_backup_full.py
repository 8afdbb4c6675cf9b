"""
### TiDB full backup — `tidb_backup_full__<cluster>`

On ``schedules.full`` (off: manual runs only), for every cluster that is not scratch: a BR full
snapshot backup into ``<storage.uri>/<cluster>/full/<backup id>/``, cataloged, with
``tidbops-manifest.json`` next to it, verified against the manifest. Incrementals
(`tidb_backup_incremental__<cluster>`) build their chains on these.

Tasks: `check_cluster` (SQL answers; version, GC safepoint and `tidb_gc_life_time` recorded; no other
run's BR job running) → `plan_backup` (the run's backup id and directory; catches the catalog up from
manifests written while it was down) → `run_br_backup` (pool `br_<cluster>`, 1 slot) →
`record_backup` (manifest, catalog) → `verify_backup` (every file of the manifest there, right size).

**Runbook.**
- `check_cluster` failed: the SQL endpoint (connection `tidb_conn_id`) did not answer, or another
  backup of this cluster is running (the log names its DAG run). A run whose worker died leaves a
  `running` row that blocks for `br.timeout`; clear that run's `run_br_backup` to settle it sooner.
- `run_br_backup` failed: the log and the alert start with BR's error code (e.g.
  `[BR:Backup:ErrBackupGCSafepointExceeded]`); the catalog row is `failed` with the same text.
  Fix the cause and clear the task: the retry clears what the failed try left in the run's directory;
  a directory holding a complete backup (`backupmeta`) is adopted, never written over.
- `record_backup`/`verify_backup` failed: the backup itself may be fine; a failed verification marks
  the catalog row unverified (incrementals then start a new chain). Check the storage, clear the task.
- Catalog database down: backups still run and write their manifests; the next run (or
  `tidbops catalog rebuild`) catalogs them.
"""

from __future__ import annotations

from tidbops_airflow.backup_dag import build_backup_dag
from tidbops_airflow.dagbuilder import clusters_for, fleet

PIPELINE = "tidb_backup_full"

_fleet = fleet()
for cluster in clusters_for(PIPELINE):
    build_backup_dag(PIPELINE, "full", cluster, _fleet, doc_md=__doc__)
