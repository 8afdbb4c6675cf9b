"""The restore engine: one way to plan, run and check a restore, behind two front doors.

A **drill** (``tidbops.drill``: choose a point, restore into a scratch cluster, prove it, measure the RTO)
and an **on-demand restore** (``tidbops.restore``: a DBA's request behind guardrails, audited) restore the
same way; what they share lives here, once:

* ``recovery.plan``: what a restore restores (``RecoveryPlan``, which ``DrillPlan`` and ``RestorePlan``
  extend): its BR steps (a snapshot chain, or one PITR ``point`` step) and their BR command lines;
* ``recovery.scratch``: the target: only a cluster marked ``scratch: true`` is ever wiped; a target that
  is not must be empty;
* ``recovery.holds``: the backups a restore reads are held (retention keeps them) until it is recorded;
* ``recovery.run``: the BR runs, in order, timed (the RTO's restore part);
* ``recovery.history``, ``recovery.validate``, ``recovery.fingerprints``: the restored data compared with
  the source as of the restore point (schema, row counts and fingerprints per key chunk; the expectation
  suites), or with the fingerprints recorded right after the backup when that history is gone.

The Airflow glue is as shared: both DAGs restore with ``BRRestoreOperator`` and validate with
``ValidateRestoreOperator`` (``tidbops_airflow.operators.recovery``). Nothing here imports Airflow, and
importing this package imports none of its modules.
"""
