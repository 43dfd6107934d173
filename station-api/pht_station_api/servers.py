"""Run both listeners of one station API in one process (what ``pht api`` does).

The two uvicorn servers share one event loop and one :class:`StationState`; the state is
started before either accepts a request and closed after both stopped. While it runs, the
process holds the embedded store's writer lock so that ``pht load`` cannot write behind it.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.settings import Settings
from pht_station_api.state import build_state
from pht_station_api.stores.loading import writer_lock

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to :func:`serve`.

    uvicorn's own handling stops only the server that installed its handler last and then
    re-raises the signal, which would kill the process before the shared state is closed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    lock: contextlib.AbstractContextManager[None] = (
        writer_lock(settings.STORE)
        if settings.STORE and not settings.SPARQL_ENDPOINT
        else contextlib.nullcontext()
    )
    with lock:
        state = build_state(settings)
        await state.start()
        try:
            internal = _Server(
                uvicorn.Config(
                    create_internal_app(state),
                    host=settings.INTERNAL_HOST,
                    port=settings.INTERNAL_PORT,
                    log_level="info",
                    access_log=False,
                )
            )
            external = _Server(
                uvicorn.Config(
                    create_external_app(state),
                    host=settings.EXTERNAL_HOST,
                    port=settings.EXTERNAL_PORT,
                    log_level="info",
                    access_log=False,
                )
            )
            log.info(
                "station API %s: internal %s:%d, external %s:%d",
                settings.STATION_NAME,
                settings.INTERNAL_HOST,
                settings.INTERNAL_PORT,
                settings.EXTERNAL_HOST,
                settings.EXTERNAL_PORT,
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, _stop, internal, external)
            await asyncio.gather(internal.serve(), external.serve())
        finally:
            await state.close()


def _stop(*servers: uvicorn.Server) -> None:
    for server in servers:
        server.should_exit = True
