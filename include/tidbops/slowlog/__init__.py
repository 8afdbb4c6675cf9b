"""TiDB slow queries: parse ``tidb-slow.log`` files, aggregate them per day and digest, report on them.

``parser`` (streaming, bytes in, typed entries out), ``histogram`` (mergeable log-scale histogram of
query times), ``aggregate`` (mergeable daily rows per digest/plan/db/user) and ``report`` (top-N, new
digests, regressions, plan changes, guardrail SQL) are pure; nothing here talks to a database or to
Airflow. Import the submodule you need: importing this package loads nothing else.
"""
