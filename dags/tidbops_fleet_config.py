"""
Fleet config problems, shown where a DBA looks: as this file's import error in the Airflow UI
(Browse → DAG import errors). Pipeline DAG files skip a bad cluster so the others keep loading; this file
fails with one line per problem, naming the cluster, the field and what would be valid. It defines no DAG.
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import fleet


class FleetConfigProblems(Exception):
    """The fleet config has entries that no DAG was built for."""


_fleet = fleet()
if _fleet.issues:
    lines = "\n".join(f"  - {issue}" for issue in _fleet.issues)
    raise FleetConfigProblems(f"{_fleet.path}: {len(_fleet.issues)} problem(s); those clusters have no DAGs:\n{lines}")
