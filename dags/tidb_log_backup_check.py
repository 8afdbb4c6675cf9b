"""
### TiDB log backup (PITR) health — `tidb_log_backup_check__<cluster>`

Every few minutes (``schedules.log_backup_check``; off: manual runs only), for every cluster with
``log_backup.enabled``: is log backup running, how far behind is its checkpoint (the RPO), is the
checkpoint moving, is GC held back, and what is the restorable (PITR) window. Each check is kept in the
catalog (`log_backup_checks`: time, status, checkpoint, lag, window, GC safepoint, findings);
`tidbops window --cluster <name>` shows the window and the lag history.

Tasks: `check_log_backup` (`br log status --json`, the table form when the JSON has no status; the GC
safepoint; `br log metadata`) → `repair_log_backup` (pool `br_<cluster>`; only when a task must be
started or resumed) → `notify_log_backup` (alerts through the cluster's routes, once per problem, then a
recovery message) → `assert_log_backup_healthy` (red while a problem lasts; it pages nobody).

**Runbook.** What each alert means, and what to do:
- no task, then started (a notice): log backup was not running; it now writes to
  `log_backup.storage_uri`, and PITR starts at the next full backup.
- `task_paused` (`log_backup.auto_resume` off): `br log resume --task-name <task> --pd <pd>` when the
  pause is over; a paused task holds GC back at its checkpoint.
- `task_error`: the alert carries `error[store=N]` / `last_errors`. Fix the cause, `br log resume`; on
  `ErrBackupGCSafepointExceeded`, `br log stop`, start into a new storage path, take a full backup.
- `checkpoint_lag` (now − checkpoint > `log_backup.max_checkpoint_lag`): TiKV/PD health, the advancer
  owner, the storage's throughput.
- `checkpoint_frozen` (unchanged across checks while NORMAL, pingcap/tidb#53047): `br log pause` then
  `br log resume` usually unsticks it; check the TiDB advancer owner.
- `gc_held` (GC safepoint older than `log_backup.max_gc_hold`): a paused or stuck task, or a safepoint
  left by a stopped one (pingcap/tidb#52082): `pd-ctl service-gc-safepoint` says who holds it.
- `start_failed` / `resume_failed`: the alert carries BR's error; a resume after GC passed the
  checkpoint cannot work (see `task_error`).
- `check_log_backup` failed: BR could not read the status (PD unreachable, `br` missing); the log says why.
- `assert_log_backup_healthy` failed: a problem above is open; its alert went out once. Runs turn green
  again when a check no longer finds it (a recovery message goes out).
- Trigger a run with the config `{"frozen_after": "30s"}` to judge a frozen checkpoint sooner (default 4m).
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import clusters_for, fleet
from tidbops_airflow.logbackup_dag import build_log_backup_check_dag, wants_log_backup_check

PIPELINE = "tidb_log_backup_check"

_fleet = fleet()
for cluster in clusters_for(PIPELINE, include=wants_log_backup_check):
    build_log_backup_check_dag(PIPELINE, cluster, _fleet, doc_md=__doc__)
