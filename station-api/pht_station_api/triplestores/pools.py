"""A pool of killable query workers.

Each query borrows one idle worker process; a query that outlives its timeout gets its worker
killed (SIGKILL: Oxigraph cannot be interrupted politely) and a fresh one started in its place.
After the operator loads data the pool is *recycled*: read-only handles see the store as it was
when opened, so every worker is replaced (busy ones when they come back).
"""

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from pht_station_api.errors import QueryTimeout, StoreUnavailable
from pht_station_api.triplestores.jobs import Backend, QueryJob, QueryOutcome
from pht_station_api.triplestores.workers import worker_main

log = logging.getLogger(__name__)
_CONTEXT = multiprocessing.get_context("spawn")
START_TIMEOUT_SECONDS = 60.0


class _Worker:
    def __init__(self, backend: Backend, generation: int) -> None:
        parent, child = _CONTEXT.Pipe()
        self.conn: Connection = parent
        self.generation = generation
        self.process: BaseProcess = _CONTEXT.Process(
            target=worker_main, args=(child, backend), daemon=True, name="pht-query-worker"
        )
        self.process.start()
        child.close()

    def wait_ready(self) -> None:
        if not self.conn.poll(START_TIMEOUT_SECONDS):
            self.kill()
            raise StoreUnavailable("a query worker did not start")
        try:
            status, detail = self.conn.recv()
        except (EOFError, OSError):
            status, detail = "failed", "the worker exited"
        if status != "ready":
            self.kill()
            raise StoreUnavailable(f"the data store could not be opened ({detail})")

    def call(self, job: QueryJob, timeout: float) -> QueryOutcome:
        try:
            self.conn.send(job)
            finished = self.conn.poll(timeout)
            outcome = self.conn.recv() if finished else None
        except (EOFError, OSError) as exc:
            raise StoreUnavailable("the query worker died") from exc
        if outcome is None:
            raise TimeoutError
        assert isinstance(outcome, QueryOutcome)
        return outcome

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


class WorkerPool:
    def __init__(self, backend: Backend, size: int) -> None:
        self.backend = backend
        self.size = size
        self._idle: asyncio.Queue[_Worker] | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self) -> _Worker:
        worker = _Worker(self.backend, self._generation)
        with self._lock:
            self._all.add(worker)
        try:
            worker.wait_ready()
        except Exception:
            with self._lock:
                self._all.discard(worker)
            raise
        return worker

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        workers = await asyncio.gather(*(asyncio.to_thread(self._spawn) for _ in range(self.size)))
        for worker in workers:
            self._idle.put_nowait(worker)

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill()

    async def _replace(self, worker: _Worker) -> None:
        """Retire a worker and start another; keep trying (backing off) while the pool is open.

        The pool never shrinks for good: a store that is briefly unavailable costs queries a
        503 (no worker free in time), not a station that hangs once every worker is lost.
        """
        await asyncio.to_thread(self._retire, worker)
        delay = 0.5
        while self._idle is not None:
            try:
                fresh = await asyncio.to_thread(self._spawn)
            except StoreUnavailable:
                log.warning("a query worker could not be started; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if self._idle is None:
                await asyncio.to_thread(self._retire, fresh)
            else:
                self._idle.put_nowait(fresh)
            return

    def _replace_later(self, worker: _Worker) -> None:
        task = asyncio.get_running_loop().create_task(self._replace(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, job: QueryJob, timeout: float) -> QueryOutcome:
        """Run a job on a free worker; waiting for one counts against the same timeout."""
        if self._idle is None:
            raise StoreUnavailable("the query workers are not started")
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            worker = await asyncio.wait_for(self._idle.get(), timeout)
        except TimeoutError:
            raise StoreUnavailable("no query worker became free in time; try again") from None
        remaining = max(0.1, timeout - (loop.time() - started))
        try:
            outcome = await asyncio.to_thread(worker.call, job, remaining)
        except TimeoutError:
            self._replace_later(worker)
            raise QueryTimeout(
                f"the query ran longer than the policy's {timeout:g} s and was stopped"
            ) from None
        except StoreUnavailable:
            self._replace_later(worker)
            raise
        if worker.generation != self._generation:
            self._replace_later(worker)
        else:
            self._idle.put_nowait(worker)
        return outcome

    async def recycle(self) -> None:
        """Replace every worker so that all see the store as it is now."""
        self._generation += 1
        if self._idle is None:
            return
        stale: list[_Worker] = []
        while not self._idle.empty():
            stale.append(self._idle.get_nowait())
        await asyncio.gather(*(self._replace(worker) for worker in stale))

    def pids(self) -> list[int]:
        """Process ids of the live workers (for health checks and tests)."""
        with self._lock:
            return sorted(w.process.pid for w in self._all if w.process.pid is not None)

    async def close(self) -> None:
        self._idle = None
        for task in list(self._tasks):
            task.cancel()
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            await asyncio.to_thread(worker.kill)
