"""The ASGI applications of one station API process, sharing one :class:`StationState`.

* internal (port 8081, never behind an Ingress): operator registration and data loading, the
  SPARQL gateway, progress, result upload/completion/state, operator provenance events;
* external (port 8080): the FAIR Data Point at the root, steward and requester actions, and
  the steward console under ``/console/``;
* metrics (optional, e.g. port 9090): ``/metrics`` only, for a scraper holding the metrics token.

The first two serve ``/healthz`` and ``/readyz``; neither serves ``/metrics``, so neither the
Ingress nor a run can read the counters a run moves. The state is started and closed by whoever
runs the apps (:mod:`pht_station_api.servers`), not by any app, because they share it.
"""

from collections.abc import Callable

from fastapi import APIRouter, FastAPI

import pht_contract
from pht_station_api.bodylimits import RequestSizeLimit
from pht_station_api.console import mount_console
from pht_station_api.errors import install_error_handlers
from pht_station_api.metrics import Snapshot
from pht_station_api.routers import (
    fdp,
    health,
    progress,
    provenance,
    registration,
    results,
    sparql,
    stewards,
)
from pht_station_api.state import StationState


def _app(state: StationState, title: str, routers: list[APIRouter]) -> FastAPI:
    app = FastAPI(title=title, version=pht_contract.__version__)
    app.state.station = state
    install_error_handlers(app)
    app.add_middleware(RequestSizeLimit, max_bytes=state.settings.max_request_bytes)
    for router in routers:
        app.include_router(router)
    return app


def create_internal_app(state: StationState) -> FastAPI:
    routers = [
        registration.router,
        sparql.router,
        progress.router,
        results.router,
        provenance.router,
        health.router,
    ]
    return _app(state, "PHT station API (internal)", routers)


def create_external_app(state: StationState) -> FastAPI:
    routers = [stewards.router, health.router, fdp.router]
    app = _app(state, "PHT station API (external): FAIR Data Point", routers)
    mount_console(app, state.settings)
    return app


def create_metrics_app(state: StationState, clock: Callable[[], float] | None = None) -> FastAPI:
    """``/metrics`` behind the scrape token, as a snapshot per METRICS_SNAPSHOT_SECONDS tick."""
    app = _app(state, "PHT station API (metrics)", [health.metrics_router])
    seconds = state.settings.metrics_snapshot_seconds
    app.state.metrics_snapshot = (
        Snapshot(state.metrics.registry, seconds)
        if clock is None
        else Snapshot(state.metrics.registry, seconds, clock)
    )
    return app
