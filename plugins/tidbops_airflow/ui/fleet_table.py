"""The fleet table's rows as HTML, written in Python: a 500-cluster fleet is 5,000 cells, and a Jinja
template spends most of its time on per-expression overhead there (about three times as long).

Every cell carries ``data-col`` (what the browser test and the sorting script read) and, when sortable,
``data-sort`` (a number, or the name; empty when unknown, which sorts last). Every text from the catalog
or the config is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

from tidbops.catalog.info import human_size
from tidbops.fleetview.models import BackupBrief, ClusterPolicy, FleetRow
from tidbops_airflow.ui.charts import seconds, when
from tidbops_airflow.ui.render import ago, dag_runs

_RAG_ORDER = {"green": 0, "amber": 1, "red": 2}


def _num(value: float | None) -> str:
    """A sort key: whole seconds or bytes are enough to order by."""
    return "" if value is None else str(round(value))


def _td(col: str, body: str, sort: str | None = None, css: str = "") -> str:
    """A cell; ``sort`` is a number from ``_num`` or an already escaped name."""
    sort_attr = "" if sort is None else f' data-sort="{sort}"'
    class_attr = f' class="{css}"' if css else ""
    return f'<td data-col="{col}"{sort_attr}{class_attr}>{body}</td>'


def _status(word: str) -> str:
    w = escape(word)
    return f'<span class="st-{w}">{w}</span>'


def _backup(col: str, b: BackupBrief | None) -> str:
    if b is None:
        return _td(col, '<span class="muted">never</span>', "")
    check = (
        " · verified" if b.verified else ' · <span class="st-failed">verify failed</span>' if b.verify_failed else ""
    )
    body = f'{_status(b.status)} · {ago(b.age_s)}<br><span class="small">{human_size(b.size_bytes)}{check}</span>'
    return _td(col, body, _num(b.age_s))


def _window(row: FleetRow, policy: ClusterPolicy) -> str:
    log = row.log
    if not policy.log_backup:
        return _td("window", '<span class="muted">log backup off</span>', "")
    if log is None:
        return _td("window", '<span class="muted">not checked yet</span>', "")
    if log.window_start is None or log.window_end is None:
        return _td("window", f"{_status(log.status)}, no window yet", "")
    span = (log.window_end - log.window_start).total_seconds()
    promise = f" (promised {seconds(row.window_promise_s)})" if row.window_promise_s else ""
    body = (
        f'{when(log.window_start)}<br>→ {when(log.window_end)}<br><span class="small">{seconds(span)}{promise}</span>'
    )
    return _td("window", body, _num(span))


def _lag(row: FleetRow) -> str:
    log = row.log
    if log is None or log.lag_s is None:
        return _td("lag", '<span class="muted">-</span>', "", "num")
    over = row.max_checkpoint_lag_s is not None and log.lag_s > row.max_checkpoint_lag_s
    body = f'<span class="{"st-failed" if over else ""}">{seconds(log.lag_s)}</span>'
    if row.max_checkpoint_lag_s:
        body += f'<br><span class="small">limit {seconds(row.max_checkpoint_lag_s)}</span>'
    if log.frozen:
        body += '<br><span class="st-failed small">frozen</span>'
    return _td("lag", body, _num(log.lag_s), "num")


def _drill(row: FleetRow, policy: ClusterPolicy) -> str:
    d = row.last_drill
    if d is None:
        return _td("drill", f'<span class="muted">{"never" if policy.drills else "no drill target"}</span>', "")
    body = f"{_status(d.status)} · RTO {seconds(d.rto_s)}"
    body += f'<br><span class="small">{ago(d.age_s)} → {escape(d.target)}</span>'
    return _td("drill", body, _num(d.age_s))


def _restore(row: FleetRow, now: datetime) -> str:
    r = row.last_restore
    if r is None:
        return _td("restore", '<span class="muted">none</span>', "")
    age = (now - r.requested_at).total_seconds()
    body = f"{_status(r.status)}{' (dry run)' if r.dry_run else ''} → {escape(r.target)}<br>"
    body += f'<span class="small">{ago(age)}{f" by {escape(r.requested_by)}" if r.requested_by else ""}</span>'
    return _td("restore", body, _num(age))


def fleet_rows_html(
    rows: Sequence[FleetRow],
    policies: dict[str, ClusterPolicy],
    run_links: dict[str, list[tuple[str, str]]],
    airflow: str,
    root: str,
    now: datetime,
) -> Markup:
    out: list[str] = []
    for row in rows:
        policy = policies[row.cluster]
        name = escape(row.cluster)
        env = escape(row.env) + (" · production" if row.production else "")
        reasons = "".join(f"<li>{escape(r)}</li>" for r in row.reasons)
        rag = f'<span class="pill rag-{row.rag}">{row.rag}</span>' + (
            f'<ul class="reasons">{reasons}</ul>' if reasons else ""
        )
        runs = " · ".join(
            f'<a href="{escape(dag_runs(airflow, dag_id))}" target="_top">{escape(label)}</a>'
            for label, dag_id in run_links[row.cluster]
        )
        out.append(
            f'<tr data-cluster="{name}" data-rag="{row.rag}">'
            + _td("cluster", f'<a href="{root}clusters/{name}">{name}</a><br><span class="small">{env}</span>', name)
            + _td("rag", rag, str(_RAG_ORDER[row.rag]))
            + _backup("last-full", row.last_full)
            + _backup("last-incremental", row.last_incremental)
            + _window(row, policy)
            + _lag(row)
            + _drill(row, policy)
            + _restore(row, now)
            + _td("storage", human_size(row.storage_bytes), str(row.storage_bytes), "num")
            + _td("runs", runs, None, "small")
            + "</tr>"
        )
    # every text above that comes from the catalog or the config went through html.escape
    return Markup("\n".join(out))  # noqa: S704


def _age_key(value: float | None) -> tuple[bool, float]:
    return (value is None, value or 0.0)  # unknown last


def _window_span(row: FleetRow) -> float | None:
    log = row.log
    if log is None or log.window_start is None or log.window_end is None:
        return None
    return (log.window_end - log.window_start).total_seconds()


#: the fleet page's columns a user may sort by (``?sort=``), and the key of each; unknown values sort last
SORT_KEYS: dict[str, Callable[[FleetRow], Any]] = {
    "cluster": lambda r: r.cluster,
    "status": lambda r: (_RAG_ORDER[r.rag], len(r.reasons)),
    "last-full": lambda r: _age_key(None if r.last_full is None else r.last_full.age_s),
    "last-incremental": lambda r: _age_key(None if r.last_incremental is None else r.last_incremental.age_s),
    "window": lambda r: _age_key(_window_span(r)),
    "lag": lambda r: _age_key(None if r.log is None else r.log.lag_s),
    "drill": lambda r: _age_key(None if r.last_drill is None else r.last_drill.age_s),
    "restore": lambda r: _age_key(None if r.last_restore is None else -r.last_restore.requested_at.timestamp()),
    "storage": lambda r: r.storage_bytes,
}
#: the direction a column sorts in first: the worst (red, oldest, biggest) on top
FIRST_ORDER = {"cluster": "asc", "status": "desc", "storage": "desc", "lag": "desc"}


def sort_rows(rows: Sequence[FleetRow], sort: str, order: str) -> list[FleetRow]:
    """``rows`` sorted by a column of ``SORT_KEYS`` (then by name); unknown values stay last either way."""
    key = SORT_KEYS[sort]
    by_name = sorted(rows, key=lambda r: r.cluster)
    if sort == "cluster":
        return by_name[::-1] if order == "desc" else by_name
    known: list[FleetRow] = []
    unknown: list[FleetRow] = []
    for row in by_name:
        k = key(row)
        (unknown if isinstance(k, tuple) and k and k[0] is True else known).append(row)
    return sorted(known, key=key, reverse=order == "desc") + unknown  # stable: ties stay by name
