"""The run note: a few Markdown lines on the DAG run, set through this Airflow's REST API (best effort).

Airflow renders notes as Markdown and stores at most ``NOTE_MAX`` characters, so callers write short
Markdown and keep the whole story in the task log. The API is reached with the http connection
``tidbops_airflow_api`` (login/password of an Airflow user allowed to edit DAG runs); without it the
note is skipped and said so in the log.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

NOTE_MAX = 1000  # Airflow's dag_run_note.content is a String(1000)
NOTE_CONN_ID = "tidbops_airflow_api"


def set_run_note(context: Any, text: str, *, conn_id: str = NOTE_CONN_ID, log: logging.Logger | Any) -> bool:
    """Set the running DAG run's note to ``text`` (cut to ``NOTE_MAX``); False when it could not be set."""
    import httpx
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("no connection %r: the run's note is not set (the task log has everything)", conn_id)
        return False
    if conn.password:
        mask_secret(conn.password)
    base = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8080}"
    ti = context["ti"]
    note = text if len(text) <= NOTE_MAX else text[: NOTE_MAX - 40] + "\n\n… (the rest is in the task log)"
    try:
        with httpx.Client(base_url=base, timeout=10.0) as client:
            token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            answer = client.patch(
                f"/api/v2/dags/{quote(str(ti.dag_id), safe='')}/dagRuns/{quote(str(ti.run_id), safe='')}",
                json={"note": note},
                params={"update_mask": "note"},
                headers=headers,
            )
            answer.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("the run's note was not set (%s); the task log has everything", exc)
        return False
    return True
