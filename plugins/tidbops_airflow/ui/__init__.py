"""The data protection view in Airflow's UI: a FastAPI app of pages, JSON API and metrics.

``access`` says who sees what, ``app`` the routes, ``filters`` the audit's query parameters, ``charts``
the inline SVG, ``render`` the templates, ``state`` the fleet config and catalog, ``metrics`` ``/metrics``.

``LazyApp`` is what the plugin mounts: the plugin module is imported by every Airflow process (the
scheduler, the dag-processor, the CLI, and with ``lazy_load_plugins = False`` before workers fork), but
only the API server serves the view, so the app (FastAPI, the queries, the templates: about half a
second of imports) is imported on its first request, not when the plugin loads.

At that first request ``LazyApp`` also moves every object the API server holds by then (Airflow's whole
app, about a million objects) out of the cyclic garbage collector's reach (``gc.freeze``): a full
collection otherwise walks them all and stalls whichever request triggered it by about 0.3 s, which was
the tail of the fleet page and of ``/metrics`` in ``bench/bench_fleet_page.py``. Objects made later are
collected as usual. ``TIDBOPS_UI_GC_FREEZE=0`` turns it off.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


class LazyApp:
    """An ASGI app that imports ``tidbops_airflow.ui.app.app`` on its first call and hands every call to it."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    @property
    def app(self) -> Any:
        if self._app is None:
            from tidbops_airflow.ui.app import app  # the import lock makes this happen once

            if os.environ.get("TIDBOPS_UI_GC_FREEZE", "1").strip().lower() not in ("0", "false", "no", "off"):
                gc.collect()  # what is garbage now is freed, not frozen
                gc.freeze()
            self._app = app
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
