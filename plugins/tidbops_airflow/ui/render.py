"""The pages' Jinja2 environment (autoescaped) and the few filters the templates share.

Links are relative, so the pages work under any Airflow base URL and inside Airflow's iframe: ``root`` is
the way from the current page to the app (``./`` or ``../``), ``airflow`` the way to Airflow's own UI
(``root + ../``). Links into Airflow's UI open in the top window (``target="_top"``), not in the iframe.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tidbops.catalog.info import human_size
from tidbops_airflow.ui.charts import seconds, when

TEMPLATES = Path(__file__).parent / "templates"


def ago(value: float | None) -> str:
    return "-" if value is None else f"{seconds(value)} ago"


def dag_runs(airflow: str, dag_id: str | None, run_id: str | None = None) -> str:
    """Airflow 3's UI route of a DAG's runs (``dags/<id>/runs``) or of one run (``dags/<id>/runs/<run_id>``)."""
    if not dag_id:
        return ""
    path = f"{airflow}dags/{quote(dag_id, safe='')}/runs"
    return f"{path}/{quote(run_id, safe='')}" if run_id else path


def is_web_link(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(("http://", "https://"))


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, seconds=seconds, ago=ago, size=human_size, q=lambda v: quote(str(v), safe=""))
    env.globals.update(dag_runs=dag_runs, is_web_link=is_web_link, urlencode=urlencode)
    return env


def links(depth: int) -> tuple[str, str]:
    """``(root, airflow)`` of a page ``depth`` path segments below the app's root."""
    return "../" * depth or "./", "../" * (depth + 1)


def page(request: Request, template: str, depth: int, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template``; ``depth`` is how many path segments below the app's root the page sits."""
    root, airflow = links(depth)
    context = {"user": None, "active": None, "status_code": status_code, **context}
    html = environment().get_template(template).render(root=root, airflow=airflow, **context)
    return HTMLResponse(html, status_code=status_code)
