"""The data protection view: fleet, cluster and audit pages and their JSON API, inside Airflow's API server.

Mounted at ``/tidbops`` by ``plugins/tidbops_plugin.py`` and linked from Airflow's navigation ("Data
protection", shown in an iframe at ``/plugin/data-protection``). Server-rendered HTML, no build step:

* ``GET /`` fleet: one row per source cluster (``GET /api/fleet``);
* ``GET /clusters/{cluster}``: backup chain, drills, restores, alerts, slow queries (``GET /api/clusters/{cluster}``);
* ``GET /audit``: every catalog event, filtered and paginated (``GET /api/audit``; ``GET /api/audit/export``
  streams every matching event, up to ``EXPORT_MAX_ROWS``, as CSV or a JSON array);
* ``GET /health`` (no login, no data); ``GET /metrics`` (``tidbops_airflow.ui.metrics``, its own credentials);
* ``GET /docs``, ``GET /openapi.json``: the JSON API documented.

Who sees what is in ``tidbops_airflow.ui.access``: an Airflow login (401 without), the auth manager's
permission on the custom view ``tidbops`` (403 without), and per cluster its DAGs' read permission (an
invisible cluster is a 404, exactly like an unknown one). Bad input: an unknown cluster is a 404 naming
the clusters the user may see; a bad filter a 422 naming the field and what is valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import chain, islice
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import get_route_path

from tidbops.catalog.store import Catalog
from tidbops.fleetview.models import AuditEvent, AuditPage, ClusterPolicy, ClusterView, FleetRow
from tidbops.fleetview.queries import audit_csv, audit_page, cluster_view, fleet_rows, iter_audit
from tidbops.redact import redact
from tidbops_airflow.dagbuilder import dag_id_for
from tidbops_airflow.ui import state
from tidbops_airflow.ui.access import Viewer, ViewerDep
from tidbops_airflow.ui.charts import backup_timeline, rto_chart
from tidbops_airflow.ui.filters import CATEGORIES, MAX_LIMIT, AuditFilters, ExportFilters
from tidbops_airflow.ui.fleet_table import FIRST_ORDER, SORT_KEYS, fleet_rows_html, sort_rows
from tidbops_airflow.ui.metrics import router as metrics_router
from tidbops_airflow.ui.render import links, page

EXPORT_MAX_ROWS = 100_000
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid Airflow login (bearer token or the UI's cookie)"},
    403: {"description": "the auth manager refuses this user the custom view `tidbops`"},
    503: {"description": "the catalog database does not answer"},
}

app = FastAPI(
    title="tidbops data protection",
    version="1",
    description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    docs_url="/docs",
    redoc_url=None,
    openapi_url="/openapi.json",
)
app.include_router(metrics_router)


# ------------------------------------------------------------------------------------------------ errors


def _route_path(request: Request) -> str:
    return get_route_path(request.scope) or "/"


def _wants_html(request: Request) -> bool:
    path = _route_path(request)
    return not path.startswith(("/api/", "/metrics", "/health", "/openapi", "/docs"))


def _depth(request: Request) -> int:
    return max(_route_path(request).count("/") - 1, 0)


_HEADINGS = {401: "not logged in", 403: "not allowed", 404: "not found", 422: "bad request", 503: "catalog unavailable"}


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if not _wants_html(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    heading = _HEADINGS.get(exc.status_code, "error")
    return page(
        request,
        "error.html",
        _depth(request),
        status_code=exc.status_code,
        heading=heading,
        problems=[str(exc.detail)] if exc.detail else [],
    )


@app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if not _wants_html(request):
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
    problems = [f"{_where(e.get('loc', ()))}{str(e.get('msg', '')).removeprefix('Value error, ')}" for e in errors]
    return page(request, "error.html", _depth(request), status_code=422, heading="bad request", problems=problems)


def _where(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path")]
    return f"{'.'.join(parts)}: " if parts else ""


def _invalid(field: str, value: Any, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}])


# ------------------------------------------------------------------------------------------------- data


def _catalog(viewer: Viewer) -> Catalog:
    try:
        return state.catalog(viewer.fleet)
    except state.CatalogUnavailable as exc:
        raise StarletteHTTPException(503, detail=str(exc)) from None


@contextmanager
def _answering() -> Iterator[None]:
    """A catalog read that fails (the database went away after it was opened) is a 503 naming the driver's
    error, never the URL."""
    try:
        yield
    except DBAPIError as exc:
        orig = exc.orig if exc.orig is not None else exc
        detail = f"the catalog does not answer ({type(orig).__name__}: {redact(state.first_line(orig))})"
        raise StarletteHTTPException(503, detail=detail) from None


def run_links(policy: ClusterPolicy) -> list[tuple[str, str]]:
    """The cluster's main DAGs, for links to their runs in Airflow's UI."""
    links = [("full", "tidb_backup_full"), ("incremental", "tidb_backup_incremental")]
    if policy.log_backup:
        links.append(("log", "tidb_log_backup_check"))
    if policy.drills:
        links.append(("drill", "tidb_restore_drill"))
    links.append(("verify", "tidb_verify"))
    return [(label, dag_id_for(pipeline, policy.cluster)) for label, pipeline in links]


def _fleet(viewer: Viewer, now: datetime) -> list[FleetRow]:
    with _answering():
        return fleet_rows(_catalog(viewer), viewer.policies, now)


def _cluster(viewer: Viewer, cluster: str, now: datetime) -> tuple[ClusterPolicy, ClusterView]:
    policy = viewer.policy(cluster)
    with _answering():
        return policy, cluster_view(_catalog(viewer), policy, now)


def _audit_query(viewer: Viewer, filters: AuditFilters) -> Any:
    if filters.cluster is not None and filters.cluster not in viewer.clusters:
        known = ", ".join(viewer.clusters) or "none"
        raise _invalid("cluster", filters.cluster, f"no cluster {filters.cluster!r} you may see; valid: {known}")
    return filters.query(viewer.audit_scope())


# ------------------------------------------------------------------------------------------------ pages


@app.get("/health", summary="Liveness (no login, no data)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/icon.svg", include_in_schema=False)
def icon() -> Response:
    """The nav icon: a shield (no data, no login)."""
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#6b7385" '
        'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M12 2 4 5v6c0 5 3.4 9.4 8 11 '
        '4.6-1.6 8-6 8-11V5z"/><path d="m9 12 2 2 4-4"/></svg>'
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


FLEET_PAGE_SIZE = 100
FLEET_PAGE_MAX = 500


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def fleet_page(
    request: Request,
    viewer: ViewerDep,
    sort: Annotated[str, Query(description=f"one of {', '.join(SORT_KEYS)}")] = "status",
    order: Annotated[str | None, Query(description="asc or desc (default: the worst first)")] = None,
    page_no: Annotated[int, Query(alias="page", ge=1, description="1 and up")] = 1,
    per_page: Annotated[int, Query(ge=1, le=FLEET_PAGE_MAX, description=f"1 to {FLEET_PAGE_MAX}")] = FLEET_PAGE_SIZE,
) -> HTMLResponse:
    """The fleet, worst first by default, ``per_page`` clusters a page: sorted on the server, so a sort
    covers every cluster, and a page of a 500-cluster fleet is written in a few milliseconds."""
    if sort not in SORT_KEYS:
        raise _invalid("sort", sort, f"unknown column {sort!r}; valid: {', '.join(SORT_KEYS)}")
    if order not in (None, "asc", "desc"):
        raise _invalid("order", order, "valid: asc, desc")
    direction = order or FIRST_ORDER.get(sort, "desc")
    now = state.now()
    rows = _fleet(viewer, now)
    pages = max(1, -(-len(rows) // per_page))
    if page_no > pages:
        raise _invalid("page", page_no, f"there are {pages} page(s) of {per_page} clusters")
    shown = sort_rows(rows, sort, direction)[(page_no - 1) * per_page : page_no * per_page]
    root, airflow = links(0)
    policies = {p.cluster: p for p in viewer.policies}
    rows_html = fleet_rows_html(shown, policies, {p.cluster: run_links(p) for p in viewer.policies}, airflow, root, now)
    counts = {rag: sum(1 for r in rows if r.rag == rag) for rag in ("red", "amber", "green")}
    return page(
        request,
        "fleet.html",
        0,
        active="fleet",
        user=viewer.name,
        rows=rows,
        shown=len(shown),
        first=(page_no - 1) * per_page + 1,
        counts=counts,
        rows_html=rows_html,
        now=now,
        hidden=not viewer.sees_all,
        sort=sort,
        order=direction,
        page_no=page_no,
        pages=pages,
        per_page=per_page,
        columns=FLEET_COLUMNS,
        first_order=FIRST_ORDER,
    )


#: the fleet table's headings: (label, sort column or None, css class)
FLEET_COLUMNS = (
    ("Cluster", "cluster", ""),
    ("Status", "status", ""),
    ("Last full", "last-full", ""),
    ("Last incremental", "last-incremental", ""),
    ("Restorable window", "window", ""),
    ("Checkpoint lag", "lag", "num"),
    ("Last drill", "drill", ""),
    ("Last restore", "restore", ""),
    ("Storage", "storage", "num"),
    ("Airflow runs", None, ""),
)


@app.get("/clusters/{cluster}", response_class=HTMLResponse, include_in_schema=False)
def cluster_page(request: Request, cluster: str, viewer: ViewerDep) -> HTMLResponse:
    now = state.now()
    policy, view = _cluster(viewer, cluster, now)
    return page(
        request,
        "cluster.html",
        1,
        active="fleet",
        user=viewer.name,
        view=view,
        policy=policy,
        now=now,
        run_links=run_links(policy),
        timeline=backup_timeline(view.backups, view.summary.log, now),
        rto=rto_chart(view.drills),
    )


@app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_html(request: Request, filters: Annotated[AuditFilters, Query()], viewer: ViewerDep) -> HTMLResponse:
    query = _audit_query(viewer, filters)
    with _answering():
        result = audit_page(_catalog(viewer), query)
    return page(
        request,
        "audit.html",
        0,
        active="audit",
        user=viewer.name,
        page=result,
        filters=filters,
        sees_all=viewer.sees_all,
        clusters=viewer.clusters,
        categories=CATEGORIES,
        max_limit=MAX_LIMIT,
        since=filters.params().get("since", ""),
        until=filters.params().get("until", ""),
        export_params=lambda fmt: {**filters.params(before_id=None, limit=None), "format": fmt},
        next_params=filters.params(before_id=result.next_cursor),
        first_params=filters.params(before_id=None),
    )


# ------------------------------------------------------------------------------------------------- JSON

_FLEET_ROWS = TypeAdapter(list[FleetRow])


def _json(body: str | bytes) -> Response:
    """The models as the queries built them: serialised once, not validated again against
    ``response_model`` (which only documents the shape in the OpenAPI)."""
    return Response(content=body, media_type="application/json")


@app.get(
    "/api/fleet",
    response_model=list[FleetRow],
    summary="The fleet: one row per cluster you may see",
    responses=ERRORS,
)
def fleet_json(viewer: ViewerDep) -> Response:
    return _json(_FLEET_ROWS.dump_json(_fleet(viewer, state.now())))


@app.get(
    "/api/clusters/{cluster}",
    response_model=ClusterView,
    summary="One cluster: its row, backups, drills, restores, alerts and slow queries",
    responses={**ERRORS, 404: {"description": "no such cluster (or not one you may see); the detail lists yours"}},
)
def cluster_json(cluster: str, viewer: ViewerDep) -> Response:
    return _json(_cluster(viewer, cluster, state.now())[1].model_dump_json())


@app.get(
    "/api/audit",
    response_model=AuditPage,
    summary="One page of the audit, newest first",
    description="Pass `next_cursor` as `before_id` for the next page. `limit` is 1–1000.",
    responses={**ERRORS, 422: {"description": "a bad filter: the field and what is valid"}},
)
def audit_json(filters: Annotated[AuditFilters, Query()], viewer: ViewerDep) -> Response:
    query = _audit_query(viewer, filters)
    with _answering():
        return _json(audit_page(_catalog(viewer), query).model_dump_json())


@app.get(
    "/api/audit/export",
    summary="Every event the filters match, as a CSV or JSON download",
    description=f"Newest first, at most {EXPORT_MAX_ROWS} events; `limit` is ignored, `before_id` starts the "
    "export below that event.",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {
            "description": "an attachment",
            "content": {"text/csv": {}, "application/json": {"schema": {"type": "array", "items": {}}}},
        },
        422: {"description": "a bad filter: the field and what is valid"},
    },
)
def audit_export(filters: Annotated[ExportFilters, Query()], viewer: ViewerDep) -> StreamingResponse:
    query = _audit_query(viewer, filters)
    events = iter_audit(_catalog(viewer), query, max_rows=EXPORT_MAX_ROWS)
    with _answering():  # the first read happens now: a catalog outage is a 503, not a cut file
        first = list(islice(events, 1))
    rows = chain(first, events)
    stamp = state.now().strftime("%Y%m%dT%H%M%SZ")
    if filters.format == "csv":
        body: Iterator[str] = audit_csv(rows)
        media = "text/csv; charset=utf-8"
    else:
        body = _json_array(rows)
        media = "application/json"
    return StreamingResponse(
        _chunks(body),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="tidbops-audit-{stamp}.{filters.format}"'},
    )


def _chunks(lines: Iterator[str], size: int = 64 * 1024) -> Iterator[str]:
    """Lines joined into chunks of about ``size`` characters: the response sends (and Starlette hops to
    a thread for) each chunk, not each of up to 100,000 lines."""
    batch: list[str] = []
    length = 0
    for line in lines:
        batch.append(line)
        length += len(line)
        if length >= size:
            yield "".join(batch)
            batch, length = [], 0
    if batch:
        yield "".join(batch)


def _json_array(rows: Iterable[AuditEvent]) -> Iterator[str]:
    yield "["
    for n, event in enumerate(rows):
        yield ("\n" if n == 0 else ",\n") + event.model_dump_json()
    yield "\n]\n"
