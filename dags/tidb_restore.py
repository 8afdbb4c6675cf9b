"""
### TiDB on-demand restore — `tidb_restore`

Manual runs only: **Trigger DAG** opens a form (source, restore point, target, tables, dry run,
confirm, validate after, reason). The same request works from the REST API
(`POST /api/v2/dags/tidb_restore/dagRuns` with `{"logical_date": null, "conf": {...}}`) and, plan only,
from `tidbops restore --dry-run …`.

Tasks: `plan_restore` (every guardrail, then the plan: backups, BR command lines with secrets redacted,
what is dropped from a scratch target, the expected time from past drills; printed in the log; the
run's note says what the run is, DRY RUN, RESTORE (then RESTORED or RESTORE FAILED) or REFUSED, with
the reason; **a dry run stops here**) → `choose_target` → `restore__<target>` (`br restore full` of the
chain, or `br restore point`; pool `br_<target>`; a scratch target is wiped first, any other must be
empty) → `validate` (with *validate after*: the restored tables against the source as of the point) →
`record_restore` (always: the catalog's `restores` row with who, why, request, plan, outcome, times) →
`assert_restore_succeeded` (a refused or failed request is a failed run: one line, no traceback).
Each restore is an event of the Asset `x-tidb://<target>/restores` (Assets view).

**Guardrails** (each refuses before anything runs, saying what would be valid): unknown clusters; a
target not allowed for the source (`restore.allowed_targets`, default: the scratch clusters), or the
source itself without `restore.allow_in_place`; a production target (or a real restore into a cluster
not marked scratch) without `confirm` = the target's name; a malformed restore point, one outside the
restorable window, or a backup id that is not succeeded and verified; a target that is not empty (only
scratch clusters are wiped); table filters outside BR's syntax; a log backup task running on the target.

**Runbook.**
- `plan_restore` failed with "restore refused (…)": the message says what would be valid; nothing ran.
  Trigger again with the field fixed.
- `restore__<target>` failed: BR's error is in the log. The target holds a partial restore: a scratch
  target is wiped by the next run; any other must be emptied by a DBA before the next run.
- `validate` failed: the restored data differs from the source as of the point (tables and key ranges
  listed), or the source's history at the point is gone (older than its GC safepoint).
- `record_restore` failed: the catalog does not answer; it retries, and its log holds the record.
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import fleet
from tidbops_airflow.restore_dag import build_restore_dag

build_restore_dag(fleet(), doc_md=__doc__)
