"""
Fleet config problems, shown where a DBA looks: as this file's import error in the Airflow UI (Airflow 3:
the Home page's "Dag Import Errors" button). Pipeline DAG files skip a bad cluster so the others keep
loading; this file fails with one line per problem, naming the cluster, the field and what would be
valid. It defines no DAG.
"""

from __future__ import annotations

from tidbops_airflow.dagbuilder import FleetConfigProblems, fleet, fleet_problems

_problems = fleet_problems(fleet())
if _problems:
    raise FleetConfigProblems(_problems)
