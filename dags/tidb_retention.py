"""
### TiDB backup retention — `tidb_retention__<cluster>`

Daily (``schedules.retention``; off: manual runs only), for every cluster that is not scratch: expire
what the recovery window (``retention.keep_days``) no longer needs, delete it from storage, and truncate
the log backup to match. ``retention.dry_run`` (true by default for production clusters, or
``{"dry_run": true}`` in the run's conf) reports the plan and deletes nothing.

Tasks: `measure_storage` → `apply_retention` (pool `br_<cluster>`; runs whatever the measurement did).

`apply_retention`, in order:
1. reads the log backup's range (`br log metadata`) and lists the cluster's backup directories;
2. **reconciles** them with the catalog: a catalogued backup missing from storage, or a manifest with
   no catalog row, **refuses the run** (nothing deleted; the task fails and alerts, naming each backup);
3. **plans**: every restore point inside the window and the state at its start stay restorable (chains,
   the fulls point-in-time recovery starts from); never expired: the base of a kept incremental, the only
   verified full, a backup a running drill or restore holds, and nothing at all while the newest full
   backup has failed verification;
4. **reports** every decision with its reason in the log (and a short run note);
5. **deletes**: each expired backup's row becomes `expired`, its manifest goes first, then its prefix
   (S3 batch delete through the amazon provider's S3Hook client), then the row becomes `deleted`;
6. **truncates the log**: `br log truncate --until <ts> -y` up to the BackupTS of the earliest retained
   full backup inside the log, never past it.

`measure_storage` records the snapshot and log bytes first (`tidbops cost` shows growth and cost).

**Runbook.**
- Refused, "storage and catalog disagree": for a backup missing from storage, find out who deleted it
  (bucket lifecycle rules, a person); `tidbops catalog rebuild --verify` catalogues stray manifests.
  Retention runs again once they agree.
- Refused, "the newest full backup failed verification": take a new full backup
  (`tidb_backup_full__<cluster>`); retention resumes once one is verified.
- Failed mid-delete (storage errors): the rows say `expired`; clear the task, the retry finishes them.
- `br log truncate` failed: BR's error is in the log; nothing is lost (the log is only longer).
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import clusters_for, fleet
from tidbops_airflow.retention_dag import build_retention_dag

PIPELINE = "tidb_retention"

_fleet = fleet()
for cluster in clusters_for(PIPELINE):
    build_retention_dag(PIPELINE, cluster, _fleet, doc_md=__doc__)
