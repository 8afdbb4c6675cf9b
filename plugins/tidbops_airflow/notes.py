"""The run note: a few Markdown lines on the DAG run, set through this Airflow's REST API (best effort).

Airflow renders notes as Markdown and stores at most ``NOTE_MAX`` characters, so a note holds the
essentials in a few short lines (what happened first: ``DRY RUN``, ``RESTORE``, ``REFUSED``) and the whole
story stays in the task log. Text that comes from elsewhere (a reason typed by a person, an error, a
path) goes through ``md`` so that Markdown shows it as written: ``<br log file>`` is not eaten as an HTML
tag, ``*`` and ``_`` do not turn into emphasis. ``restore_note`` and ``refused_note`` are the on-demand
restore's notes; retention writes its own (``tidbops.retention.RetentionReport.note_markdown``).

The API is reached with the http connection ``tidbops_airflow_api`` (login/password of an Airflow user
allowed to edit DAG runs); without it the note is skipped and said so in the log.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from tidbops.restore import RestorePlan

NOTE_MAX = 1000  # Airflow's dag_run_note.content is a String(1000)
NOTE_CONN_ID = "tidbops_airflow_api"
NOTE_ATTEMPTS, NOTE_TIMEOUT, NOTE_BACKOFF = 3, 15.0, 2.0  # a busy API server (SQLite metadata DB) answers late
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")
_MORE = "\n\n… (the rest is in the task log)"


def md(text: object, limit: int | None = None) -> str:
    """``text`` as Markdown shows it: one line, its Markdown and HTML characters escaped, cut at ``limit``."""
    line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return _MD_SPECIAL.sub(r"\\\1", line)


def fit(text: str, limit: int = NOTE_MAX) -> str:
    """``text`` cut to ``limit`` characters on a line boundary, saying where the rest is."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(_MORE)]
    cut = head.rfind("\n")
    return (head[:cut] if cut > 0 else head).rstrip() + _MORE


def restore_note(
    plan: RestorePlan, *, requested_by: str | None, outcome: str | None = None, error: str | None = None
) -> str:
    """The on-demand restore's note: the outcome first, then who, why, what.

    The first words say what the run is: ``DRY RUN`` (nothing changed), ``RESTORE`` (planned, running),
    then, once recorded (``outcome``: the ``restores`` status), ``RESTORED`` or ``RESTORE FAILED`` with the
    first line of ``error``. The reason comes before anything long, so it is never the part cut off; the
    BR command lines and every detail of the plan are in ``plan_restore``'s log.
    """
    from tidbops.timefmt import show_tso

    pair = f"{md(plan.source)} → {md(plan.target)}"
    if plan.dry_run:
        head = f"**DRY RUN** (nothing changed): {pair}"
    elif outcome == "succeeded":
        head = f"**RESTORED** {pair}"
    elif outcome is not None:
        first = (error or "").strip().splitlines()[0] if (error or "").strip() else outcome
        head = f"**RESTORE FAILED** {pair}: {md(first, 300)}"
    else:
        head = f"**RESTORE** {pair} (running)"
    point = show_tso(plan.restore_ts)
    request: Mapping[str, Any] = plan.request
    who = md(requested_by) if requested_by else "unknown"
    tables = ", ".join(plan.tables) if plan.tables else "all"
    backups = ", ".join(plan.backups_used)
    lines = [
        head,
        "",
        f"- Reason: {md(request.get('reason') or '', 300)} (requested by {who})",
        f"- Point: {point} (TSO {plan.restore_ts}), {plan.mode}; asked {md(request.get('restore_point') or '', 60)}",
        f"- Tables: {md(tables, 160)}",
        f"- Backups: {md(backups, 200)}" + (" + log" if plan.log_storage_uri else ""),
        f"- Target: {md(plan.target)}, "
        + (f"drops {md(', '.join(plan.wipe), 120)} first" if plan.wipe else "empty, nothing dropped"),
    ]
    if plan.expected_seconds is not None:
        lines.append(f"- Expected restore time: ~{plan.expected_seconds:.0f}s")
    lines.append(f"- Restore id `{plan.restore_id}`; the BR command lines are in the `plan_restore` log.")
    return fit("\n".join(lines))


def refused_note(guardrail: str, message: str, *, source: str | None, target: str | None) -> str:
    """The note of a request a guardrail refused: one line saying so, then the reason and what would do."""
    pair = f"{md(source or '?')} → {md(target or '?')}"
    return fit(f"**REFUSED** ({md(guardrail)}): {pair}; nothing ran\n\n{md(message, 800)}")


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
    note = fit(text)
    path = f"/api/v2/dags/{quote(str(ti.dag_id), safe='')}/dagRuns/{quote(str(ti.run_id), safe='')}"
    for attempt in range(1, NOTE_ATTEMPTS + 1):
        try:
            with httpx.Client(base_url=base, timeout=NOTE_TIMEOUT) as client:
                token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
                token.raise_for_status()
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                answer = client.patch(path, json={"note": note}, params={"update_mask": "note"}, headers=headers)
                answer.raise_for_status()
            return True
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
            transient = status is None or status >= 500 or status == 429  # a busy API server, not a refusal
            if attempt < NOTE_ATTEMPTS and transient and not isinstance(exc, KeyError | ValueError):
                log.info("the run's note was not set (%s); trying again", exc)
                time.sleep(NOTE_BACKOFF * attempt)
                continue
            log.warning("the run's note was not set (%s); the task log has everything", exc)
            return False
    return False
