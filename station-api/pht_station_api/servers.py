"""Run the listeners of one station API in one process (what ``pht api`` does).

The uvicorn servers (internal, external and, when ``METRICS_PORT`` is set, metrics) share one
event loop and one :class:`StationState`; the state is started before any accepts a request and
closed after all stopped. While it runs, the process holds the embedded store's writer lock so
that ``pht load`` cannot write behind it. A metrics listener without a scrape token is refused
at start-up: metrics are never served to whoever happens to reach the port.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from pht_station_api.app import create_external_app, create_internal_app, create_metrics_app
from pht_station_api.settings import Settings
from pht_station_api.state import build_state
from pht_station_api.triplestores.loading import writer_lock

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`serve`.

    uvicorn's own handling stops only the server that installed its handler last and then
    re-raises the signal, which would kill the process before the shared state is closed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: FastAPI, host: str, port: int) -> _Server:
    return _Server(uvicorn.Config(app, host=host, port=port, log_level="info", access_log=False))


def check_metrics_settings(settings: Settings) -> None:
    if settings.metrics_port is not None and not settings.read_metrics_token():
        raise ValueError(
            "PHT_API_METRICS_PORT is set but no scrape token is: set PHT_API_METRICS_TOKEN_FILE "
            "(or PHT_API_METRICS_TOKEN), or unset PHT_API_METRICS_PORT"
        )


async def serve(settings: Settings) -> None:
    check_metrics_settings(settings)
    lock: contextlib.AbstractContextManager[None] = (
        writer_lock(settings.store)
        if settings.store and not settings.sparql_endpoint
        else contextlib.nullcontext()
    )
    with lock:
        state = build_state(settings)
        await state.start()
        try:
            servers = [
                _server(create_internal_app(state), settings.internal_host, settings.internal_port),
                _server(create_external_app(state), settings.external_host, settings.external_port),
            ]
            if settings.metrics_port is not None:
                servers.append(
                    _server(create_metrics_app(state), settings.metrics_host, settings.metrics_port)
                )
            log.info(
                "station API %s: internal %s:%d, external %s:%d",
                settings.station_name,
                settings.internal_host,
                settings.internal_port,
                settings.external_host,
                settings.external_port,
            )
            if settings.metrics_port is not None:
                log.info("metrics %s:%d", settings.metrics_host, settings.metrics_port)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, _stop, *servers)
            await asyncio.gather(*(server.serve() for server in servers))
        finally:
            await state.close()


def _stop(*servers: uvicorn.Server) -> None:
    for server in servers:
        server.should_exit = True
