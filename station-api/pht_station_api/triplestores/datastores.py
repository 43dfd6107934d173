"""The data store as the rest of the API sees it: query, live figures, health, load.

One class for both backends: queries always go through the killable worker pool; only the
embedded store can be loaded through the API (a remote endpoint belongs to the hospital).
"""

import asyncio
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyoxigraph as ox

from pht_station_api.errors import LoadFailed, QueryTimeout, StoreUnavailable
from pht_station_api.gateway.parsing import POOL as PARSE_POOL
from pht_station_api.triplestores.jobs import Backend, EmbeddedBackend, QueryJob, QueryOutcome
from pht_station_api.triplestores.loading import load_rdf
from pht_station_api.triplestores.pools import WorkerPool

COUNT_QUERY = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
PING_TIMEOUT_SECONDS = 5.0
STATISTICS_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class StoreStatistics:
    triples: int
    #: Seconds since the epoch of the last change we can observe (None: unknown).
    last_modified: float | None


class DataStore:
    def __init__(self, backend: Backend, workers: int) -> None:
        self.backend = backend
        self.pool = WorkerPool(backend, workers)
        self._statistics: dict[tuple[str, ...], tuple[float, float | None, StoreStatistics]] = {}
        self._load_lock = asyncio.Lock()
        self.loaded_at: float | None = None

    @property
    def embedded(self) -> bool:
        return isinstance(self.backend, EmbeddedBackend)

    async def start(self) -> None:
        if isinstance(self.backend, EmbeddedBackend):
            await asyncio.to_thread(ensure_store, Path(self.backend.path))
        await self.pool.start()
        # The gateway's query checkers are worker processes too; started with the store, a
        # train's first query does not wait for one to boot.
        await asyncio.to_thread(PARSE_POOL.start)

    async def close(self) -> None:
        await self.pool.close()

    async def query(self, job: QueryJob, timeout: float) -> QueryOutcome:
        return await self.pool.run(job, timeout)

    async def ping(self) -> bool:
        job = QueryJob("ASK { }", "ASK", (), (), "json", 1)
        try:
            outcome = await self.pool.run(job, PING_TIMEOUT_SECONDS)
        except (StoreUnavailable, QueryTimeout):
            return False
        return outcome.error is None

    def _modified(self) -> float | None:
        if isinstance(self.backend, EmbeddedBackend):
            path = Path(self.backend.path)
            try:
                return max(entry.stat().st_mtime for entry in path.iterdir())
            except (OSError, ValueError):
                return None
        return self.loaded_at

    async def statistics(self, graphs: tuple[str, ...]) -> StoreStatistics:
        """Triples in the given graphs and the last change: cached until the store changes."""
        modified = self._modified()
        cached = self._statistics.get(graphs)
        now = time.monotonic()
        if cached is not None:
            at, seen_modified, value = cached
            fresh = now - at < STATISTICS_TTL_SECONDS or self.embedded
            if fresh and seen_modified == modified:
                return value
        job = QueryJob(COUNT_QUERY, "SELECT", graphs, (), "tsv", 1)
        outcome = await self.pool.run(job, 60.0)
        if outcome.error is not None:
            raise StoreUnavailable("the data store could not count its triples")
        lines = outcome.body.decode().splitlines()
        triples = int(lines[1].split("^^")[0].strip('"')) if len(lines) > 1 else 0
        value = StoreStatistics(triples, modified)
        self._statistics[graphs] = (now, modified, value)
        return value

    async def load(self, data: bytes, fmt: str, graph: str) -> int:
        """Load through the API: this process is already the store's only writer."""
        if not isinstance(self.backend, EmbeddedBackend):
            raise LoadFailed("this station reads a remote SPARQL endpoint: load data there")
        path = Path(self.backend.path)
        async with self._load_lock:
            try:
                count = await asyncio.to_thread(load_rdf, path, _reader(data), fmt, graph)
            except (SyntaxError, ValueError) as exc:
                raise LoadFailed(f"the RDF or graph IRI is invalid: {exc}") from None
            except OSError as exc:
                raise LoadFailed(f"the store refused the load: {type(exc).__name__}") from None
            self.loaded_at = time.time()
            self._statistics.clear()
            await self.pool.recycle()
        return count


def ensure_store(path: Path) -> None:
    """Create an empty store on first start (a fresh volume) so read-only workers can open it.

    Safe because the caller is the store's only writer (it holds the writer lock).
    """
    if path.is_dir() and any(path.iterdir()):
        return
    path.mkdir(parents=True, exist_ok=True)
    store = ox.Store(str(path))
    store.flush()
    del store


def _reader(data: bytes) -> IO[bytes]:
    return io.BytesIO(data)
