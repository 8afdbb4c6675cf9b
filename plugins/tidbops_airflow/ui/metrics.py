"""``GET /tidbops/metrics``: the fleet's Prometheus metrics (``tidbops.metrics``), for a Prometheus scrape job.

Not behind the Airflow login (Prometheus cannot log in to Airflow): behind the credentials of the Airflow
connection ``tidbops_metrics`` (``AIRFLOW_CONN_TIDBOPS_METRICS``, ``airflow connections add``, or any
secrets backend), read at every scrape so a rotated token takes effect at once:

* ``Authorization: Bearer <the connection's password>`` (Prometheus' ``authorization`` block), or
* HTTP basic auth with the connection's login and password (``basic_auth``), when it has a login.

Credentials are compared in constant time. Without that connection (or with no password in it) the
endpoint is off: 403 with how to turn it on; never open by default. Missing or wrong credentials: 401.

The catalog and the fleet config are those the DAGs and the pages use (``tidbops_airflow.ui.state``).
Each scrape reads the catalog once; a catalog that does not answer still gives a 200 with
``tidbops_metrics_scrape_error 1`` (an alert, not a target down). A fleet config that cannot be used at
all gives a 500 with its one line (no cluster is known, so there is nothing honest to export).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, status
from fastapi.responses import Response

from tidbops.catalog.store import Catalog
from tidbops.fleetview.queries import policies_from_fleet
from tidbops.metrics import CONTENT_TYPE, render_metrics
from tidbops.redact import redact
from tidbops_airflow.ui import state

log = logging.getLogger(__name__)

METRICS_CONN_ID = "tidbops_metrics"
REALM = 'realm="tidbops metrics"'
HOW_TO_ENABLE = (
    f"the metrics endpoint is off: it needs the Airflow connection {METRICS_CONN_ID!r} whose password is the "
    f"scrape token (and whose login, if set, allows basic auth), e.g. `airflow connections add {METRICS_CONN_ID} "
    f"--conn-type http --conn-password <token>` or AIRFLOW_CONN_{METRICS_CONN_ID.upper()}; see the README, "
    "'Metrics and alerts'"
)

router = APIRouter()


@dataclass(frozen=True)
class ScrapeCredentials:
    """What a scrape must present: the token (bearer, or the basic-auth password) and, for basic auth, the login."""

    password: str = field(repr=False)
    login: str | None = None

    def accepts(self, authorization: str | None) -> bool:
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return _same(value, self.password)
        if scheme.lower() == "basic" and self.login:
            try:
                login, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            # both compared, always: no early exit that tells which one was wrong
            return bool(sep) & _same(login, self.login) & _same(password, self.password)
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def scrape_credentials(conn_id: str = METRICS_CONN_ID) -> ScrapeCredentials | None:
    """The credentials of the metrics connection, or ``None`` when it is not configured (no password).

    ``airflow.sdk.BaseHook.get_connection`` works in the API server: its process runs in Airflow's
    "server" context, whose secrets backends are the environment variables, any configured backend and
    the metadata database (``airflow connections add``).
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    if not conn.password:
        return None
    return ScrapeCredentials(password=conn.password, login=conn.login or None)


@router.get(
    "/metrics",
    summary="The fleet's Prometheus metrics",
    description="Prometheus text format, read from the catalog at scrape time. Authenticated with the "
    f"Airflow connection `{METRICS_CONN_ID}`: `Authorization: Bearer <its password>`, or basic auth with its "
    "login and password. See the README, 'Metrics and alerts'.",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE.split(";")[0]: {}}, "description": "the metrics"},
        401: {"description": "no or wrong credentials"},
        403: {"description": f"the endpoint is off: no connection `{METRICS_CONN_ID}` with a password"},
    },
)
def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
    credentials = scrape_credentials()
    if credentials is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=HOW_TO_ENABLE)
    if not credentials.accepts(authorization):
        challenges = f"Bearer {REALM}" + (f", Basic {REALM}" if credentials.login else "")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"a scrape needs the credentials of the Airflow connection {METRICS_CONN_ID!r} "
            "(Authorization: Bearer <its password>, or basic auth with its login and password)",
            headers={"WWW-Authenticate": challenges},
        )
    fleet = state.fleet()
    if not fleet.clusters and not fleet.ok:  # the file cannot be used at all: no metrics is the honest answer
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, detail=redact(str(fleet.issues[0])))
    catalog: Catalog | None
    try:
        catalog = state.catalog(fleet)
    except state.CatalogUnavailable as exc:  # already redacted: the driver's error, never the URL
        log.warning("metrics: cannot open the catalog: %s", exc)
        catalog = None
    body = render_metrics(catalog, policies_from_fleet(fleet), state.now())
    return Response(content=body, media_type=CONTENT_TYPE)
