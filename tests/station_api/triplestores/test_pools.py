"""The worker pool degrades to clear 503s, never to a hang, and heals when the store returns."""

import asyncio
import io
import os
import signal
from pathlib import Path

import pyoxigraph as ox
import pytest

from pht_station_api.errors import StoreUnavailable
from pht_station_api.triplestores.jobs import EmbeddedBackend, QueryJob
from pht_station_api.triplestores.pools import WorkerPool

ASK = QueryJob("ASK { ?s ?p ?o }", "ASK", ("urn:g",), ("urn:g",), "json", 1)


def make(path: Path) -> None:
    store = ox.Store(str(path))
    store.bulk_load(
        io.BytesIO(b"<urn:a> <urn:b> <urn:c> ."),
        format=ox.RdfFormat.N_TRIPLES,
        to_graph=ox.NamedNode("urn:g"),
    )
    store.flush()
    del store


@pytest.mark.timeout(60)
async def test_lost_workers_give_503_then_the_pool_heals(tmp_path: Path) -> None:
    path = tmp_path / "store"
    make(path)
    pool = WorkerPool(EmbeddedBackend(str(path)), 1)
    await pool.start()
    try:
        assert (await pool.run(ASK, 5)).body.startswith(b"{")
        hidden = tmp_path / "hidden"
        path.rename(hidden)  # the volume goes away: new workers cannot open the store
        os.kill(pool.pids()[0], signal.SIGKILL)  # and the running worker dies
        with pytest.raises(StoreUnavailable):
            await pool.run(ASK, 5)  # the dead worker is noticed …
        with pytest.raises(StoreUnavailable):
            await pool.run(ASK, 1)  # … and no replacement can start: 503, not a hang
        hidden.rename(path)  # the volume is back
        for _ in range(40):
            try:
                outcome = await pool.run(ASK, 1)
                break
            except StoreUnavailable:
                await asyncio.sleep(0.5)
        else:
            pytest.fail("the pool did not heal")
        assert outcome.error is None and b"true" in outcome.body
    finally:
        await pool.close()
