"""Run both listeners of one station API in one process (what ``pht api`` does).

The two uvicorn servers share one event loop and one :class:`StationState`; the state is
started before either accepts a request and closed after both stopped. While it runs, the
process holds the embedded store's writer lock so that ``pht load`` cannot write behind it.
"""

import asyncio
import contextlib
import logging

import uvicorn

from pht_station_api.app import create_external_app, create_internal_app
from pht_station_api.settings import Settings
from pht_station_api.state import build_state
from pht_station_api.stores.loading import writer_lock

log = logging.getLogger(__name__)


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
            internal = uvicorn.Server(
                uvicorn.Config(
                    create_internal_app(state),
                    host=settings.INTERNAL_HOST,
                    port=settings.INTERNAL_PORT,
                    log_level="info",
                    access_log=False,
                )
            )
            external = uvicorn.Server(
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
            await asyncio.gather(internal.serve(), external.serve())
        finally:
            await state.close()
