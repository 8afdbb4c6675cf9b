"""The tidbops Airflow plugin: registers the platform with Airflow (macros now; UI views later)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


def tso_to_iso(tso: int) -> str:
    """Jinja macro ``{{ macros.tidbops.tso_to_iso(ts) }}``: a TiDB TSO as an ISO-8601 UTC time."""
    from tidbops.tso import to_datetime

    return to_datetime(int(tso)).isoformat()


class TiDBOpsPlugin(AirflowPlugin):
    name = "tidbops"
    macros = [tso_to_iso]  # noqa: RUF012 (AirflowPlugin API)
