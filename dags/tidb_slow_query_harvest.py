"""
### TiDB slow-query harvest — `tidb_slow_query_harvest__<cluster>`

Nightly (``schedules.slow_query_harvest``; off: manual runs only), for every cluster that is not scratch:
`harvest_slow_queries` reads the slow queries logged since the last harvest (the watermark in the
catalog) — from ``slow_query.table`` (default `INFORMATION_SCHEMA.CLUSTER_SLOW_QUERY`, read in 1-hour
windows in UTC) or from slow-log files (``slow_query.source: files``, ``slow_query.log_paths``: local
paths or `s3://` prefixes below the cluster's storage) — and stores daily aggregates per digest, plan,
database and user (`slow_query_daily`) → `report_slow_queries` reports each harvested UTC day against
the 7 days before it (top offenders, new digests, regressions ≥ 2× baseline, plan changes), stores it in
`slow_query_reports` and prints it in the task log → `suggest_guardrails` writes the guardrail decision
into the report; statements run only when ``slow_query.apply_guardrails`` is true and the server is a
real TiDB (dry run by default).

The window ends at the end of the run's data interval (a scheduled run: its run time; a manual run:
when triggered), or at ``until`` given in the run's conf (``{"until": "2026-11-21T00:00:00Z"}``).

**Runbook.**
- `harvest_slow_queries` failed on SQL: the connection `tidb_conn_id` or the table; on files: a path or
  the storage connection. Fix and clear the task: nothing was stored (one transaction), the watermark
  did not move, the retry reads the same window.
- "lies before the watermark": someone asked for a window already harvested that is not whole UTC
  days. Re-harvest whole days (`until` at midnight after moving the watermark back with
  `tidbops.slowlog.store.set_watermark`) to replace them.
- `report_slow_queries` failed: the aggregates are stored; clear the task to report again.
- Regressions/plan changes in the report: read the guardrail SQL in the report (`suggest_guardrails`
  log), test it, then run it by hand or set `slow_query.apply_guardrails: true`.
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import clusters_for, fleet
from tidbops_airflow.slow_query_dag import build_slow_query_harvest_dag

PIPELINE = "tidb_slow_query_harvest"

_fleet = fleet()
for cluster in clusters_for(PIPELINE):
    build_slow_query_harvest_dag(PIPELINE, cluster, _fleet, doc_md=__doc__)
