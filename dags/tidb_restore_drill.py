"""
### TiDB restore drill — `tidb_restore_drill__<cluster>`

On ``schedules.drill`` (off: manual runs only), for every cluster with a ``drill.target``: a real
restore of the cluster's backups into that scratch cluster, a real comparison with the source, and the
RTO. Each drill is a row of the catalog's `drills` table (restore point, backups used, restore and
validation seconds, tables and rows checked, mismatches, expectations' success ratio, Data Docs URI,
status, error, and its **basis**: the source's TiDB version, the BR version, the encryption method and
key id, the storage URI) and a report `drill.json` next to its Data Docs in
`<storage.uri>/<cluster>/drills/<drill id>/`.

**When.** The DAG runs hourly; `check_drill_due` reads the basis now and decides: a tick of
`schedules.drill` since the last drill, or a passed drill made stale by a change of its basis (a drill
is then due at once, once per change), or a manual run. Otherwise every later task is skipped.

**Holds and tier 3.** From `choose_restore_point` until `record_drill`, the drill holds the backups it
restores (retention never expires them; each step retakes the hold for BR's timeout plus 3 hours).
A passed drill marks them verified at tier 3; a snapshot drill whose restored data differs from the
source marks them failed (a PITR mismatch, or a failure before the data is judged, marks nothing).

**No expectation suites** under `include/expectations/<cluster>/`: the drill is judged on the content
check alone and says so in its record, report and log line: "no expectation suites for <cluster>:
expectations did not run".

Tasks: `check_drill_due` → `choose_restore_point` (``drill.mode: snapshot``: the newest verified
snapshot chain; ``pitr``: a point drawn, with a recorded seed, from the recent end of the PITR window) →
`wait_for_log_checkpoint` (PITR only, deferrable: until the log checkpoint passes the point) →
`prepare_scratch` (the target must be marked `scratch: true`; it is taken for this drill and what an
earlier drill left is dropped) → `restore_to_scratch` (`br restore full` of the chain in order, or
`br restore point --full-backup-storage … --restored-ts …`; pool `br_<target>`; timed: the RTO) →
`validate_restored_data` (schema; row counts and fingerprints per primary-key chunk against the source
*as of the restore point*; the expectation suites of `include/expectations/<cluster>/`, Data Docs
uploaded) → `drop_scratch` (always) → `record_drill` (always) → `assert_drill_passed`.

Run parameters: `target` (another scratch cluster), `seed` (PITR point), `chunk_rows`.

**Runbook.**
- `check_drill_due` failed: the catalog does not answer. Its log says why a drill is (not) due, and
  which basis field changed (old → new); a version or key it could not read is noted, not fatal.
- `choose_restore_point` failed: no restorable snapshot chain (a verified full backup is needed), or
  no PITR window (log backup not running, or no full backup since the log started: see `tidbops window`).
- `wait_for_log_checkpoint` failed: the log backup task is paused or in error (the log says which); see
  `tidb_log_backup_check__<cluster>`.
- `prepare_scratch` failed with "not marked scratch": the run asked for a target that is not a scratch
  cluster; nothing was touched. With "in use by drill …": another cluster's drill holds the scratch;
  the retries (every 5 minutes, for an hour) wait for it (a dead drill's hold lapses after 6 hours, or
  at once when its own DAG runs again).
- `restore_to_scratch` failed: BR's error is in the log and the alert (e.g. a missing crypter key
  connection of the *source*, a broken chain). A retry drops the partial restore first.
- `validate_restored_data` failed: the restored data is not the source's as of the restore point. The
  alert lists each table, and for content the chunk's key range (`(id) in (200, 400]: …`): look at those
  rows in the backup and the source. Expectation failures are in the Data Docs (`data_docs_uri` of the
  drill). "older than the GC safepoint": the source's history at the point is gone (`tidb_gc_life_time`
  shorter than backup-to-drill); drill in PITR mode, or keep history longer.
- `drop_scratch` failed: the scratch still holds the restored data; clear the task.
- `assert_drill_passed` failed: the drill failed; the failing step's alert went out already.
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import clusters_for, fleet
from tidbops_airflow.drill_dag import build_restore_drill_dag, wants_drill

PIPELINE = "tidb_restore_drill"

_fleet = fleet()
for cluster in clusters_for(PIPELINE, include=wants_drill):
    build_restore_drill_dag(PIPELINE, cluster, _fleet, doc_md=__doc__)
