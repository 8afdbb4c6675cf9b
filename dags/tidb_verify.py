"""
### TiDB backup verification — `tidb_verify__<cluster>`

On ``schedules.verify`` (nightly by default; off: manual runs only), for every cluster that is not
scratch, every retained backup (catalog status `succeeded`) is proven readable, and the verdicts are
recorded per backup in the catalog (`verified`, `verified_at`, `verified_tier`, and a
`backup.verified` / `backup.verify_failed` event each):

- **tier 1**, every night, every retained backup: `tidbops-manifest.json` and every file it lists read
  back from storage, all of their bytes: each file there, its size, its SHA-256 where recorded.
- **tier 2**, weekly per backup: `br debug checksum` — BR decodes the backup's `backupmeta` (with the
  cluster's crypter key if its backups are encrypted) and re-reads every data file against the SHA-256
  in it. A backup is due when no verification at tier ≥ 2 passed for it in the last 7 days (a passed
  drill counts), so a new backup gets it the night after it is taken.
- **tier 3** is a restore drill (`tidb_restore_drill__<cluster>`).

A passed check keeps the highest tier passed; any failure clears it, and the backup is unverified
(incrementals then start a new chain) until a check passes again. `tidbops info` shows the share of
retained backups verified at tier ≥ 1 in the last 24 h (goal: 100%); `tidbops verify` runs the same
checks by hand.

Tasks: `verify_files` (tier 1) → `verify_br_checksum` (tier 2, pool `br_<cluster>`, 1 slot; only after
`verify_files` passed, so a green run means both tiers passed).

**Runbook.**
- `verify_files` failed: the log and the alert name each backup and what is wrong (`N missing (…)`,
  `wrong size (…: got, expected)`, `wrong sha256 (…)`, `cannot verify: … does not exist`). The data in
  storage no longer matches what was backed up: find out who or what changed it (bucket lifecycle rules,
  a manual delete, a bad disk), restore the objects from a replica or version if you have one, else
  take a new full backup.
  `tidbops verify --cluster <c> --tier 1` re-checks after a fix. Until the backup passes again (or
  retention expires it), `verify_br_checksum` does not run for the cluster (`upstream_failed`).
- `storage did not answer … (not recorded)`: the storage was unreachable or refused the keys (connection
  `storage.conn_id`); nothing was recorded. Fix access and clear the task.
- `verify_br_checksum` failed: BR's verdict, e.g. `[BR:Backup:ErrBackupChecksumMismatch] <file> may be
  changed: its sha256 is …, backupmeta says …`, or BR's error reading the backup; the BR log path is in
  the line. A checksum mismatch that tier 1 did not see means the file changed before the manifest was
  written: treat the backup as bad. `br did not finish within …` records nothing: raise `br.timeout` or
  run it off-peak.
- An encrypted cluster's tier 2 needs the key connection (`br.encryption.key_conn_id`); without it the
  task fails before BR runs.
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import clusters_for, fleet
from tidbops_airflow.verify_dag import build_verify_dag

PIPELINE = "tidb_verify"

_fleet = fleet()
for cluster in clusters_for(PIPELINE):
    build_verify_dag(PIPELINE, cluster, _fleet, doc_md=__doc__)
