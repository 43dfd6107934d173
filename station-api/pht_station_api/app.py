"""The two ASGI applications of one station API process, sharing one :class:`StationState`.

* internal (port 8081, never behind an Ingress): operator registration and data loading, the
  SPARQL gateway, progress, result upload/completion/state, operator provenance events;
* external (port 8080): the FAIR Data Point at the root, steward and requester actions.

Both serve ``/healthz``, ``/readyz`` and ``/metrics``. The state is started and closed by
whoever runs the apps (:mod:`pht_station_api.servers`), not by either app, because they share it.
"""

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response

from pht_station_api.errors import install_error_handlers
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


def _count_requests(app: FastAPI, state: StationState, listener: str) -> None:
    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        state.metrics.request_done(listener, response.status_code)
        return response


def _app(state: StationState, title: str, listener: str, routers: list[APIRouter]) -> FastAPI:
    app = FastAPI(title=title, version="0.1.0")
    app.state.station = state
    install_error_handlers(app)
    _count_requests(app, state, listener)
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
    return _app(state, "PHT station API (internal)", "internal", routers)


def create_external_app(state: StationState) -> FastAPI:
    routers = [stewards.router, health.router, fdp.router]
    return _app(state, "PHT station API (external): FAIR Data Point", "external", routers)
