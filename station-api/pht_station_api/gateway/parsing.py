"""Killable parse workers: a train's query is analysed in another process, under a deadline.

rdflib's SPARQL parser is pure Python and some texts take it minutes; run on the event loop
(or in a thread, which holds the GIL) one such query stalls both listeners. Here each analysis
borrows an idle worker process; one that outlives the deadline is killed and replaced, and the
query is refused as too complex. Waiting for a worker is bounded as well, so a burst of
queries meets a retryable refusal rather than a queue. Workers start on first use, so an API
that never checks a query never pays for them; the station starts them with its store so a
train's first query does not wait for a worker to boot.
"""

import atexit
import contextlib
import multiprocessing
import queue
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

from pht_station_api.errors import QueryCheckBusy, QueryTooComplex, StoreUnavailable
from pht_station_api.gateway.verdicts import ParseJob, Verdict, verdict_of

_CONTEXT = multiprocessing.get_context("spawn")
#: Analysis workers: a train may hold at most one at a time (see ``executions``), so one
#: train flooding the gateway leaves the others a worker.
PARSE_WORKERS: Final = 2
#: The longest any analysis may take. Typical queries take milliseconds to a second; a
#: text that needs longer is refused as too complex (approved texts are checked once per
#: train and then cached).
PARSE_TIMEOUT_SECONDS: Final = 10.0
#: How long a query waits for a free worker before it is refused as busy.
WAIT_SECONDS: Final = 2.0
START_TIMEOUT_SECONDS: Final = 60.0


def _serve(conn: Connection) -> None:
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(verdict_of(job))


class _Worker:
    def __init__(self) -> None:
        parent, child = _CONTEXT.Pipe()
        self.conn: Connection = parent
        self.process: BaseProcess = _CONTEXT.Process(
            target=_serve, args=(child,), daemon=True, name="pht-parse-worker"
        )
        self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            started = self.conn.poll(START_TIMEOUT_SECONDS) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            started = False
        if not started:
            self.kill()
            raise StoreUnavailable("a query checker did not start")
        self.ready = True

    def call(self, job: ParseJob, timeout: float) -> Verdict | None:
        """The verdict, or ``None`` when the deadline passed (the caller kills the worker)."""
        try:
            self.conn.send(job)
            if not self.conn.poll(timeout):
                return None
            verdict = self.conn.recv()
        except (EOFError, OSError):
            raise StoreUnavailable("a query checker died") from None
        assert isinstance(verdict, Verdict)
        return verdict

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


class ParsePool:
    """A fixed number of analysis workers; :meth:`analyse` blocks, so call it off the loop."""

    def __init__(self, size: int = PARSE_WORKERS) -> None:
        self.size = size
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for _ in range(self.size):
                self._idle.put(_Worker())

    def start(self) -> None:
        """Start every worker and wait until each is ready (blocking: call it off the loop)."""
        self._start()
        ready: list[_Worker] = []
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                break
            try:
                worker.wait_ready()
            except StoreUnavailable:
                worker = _Worker()
            ready.append(worker)
        for worker in ready:
            self._idle.put(worker)

    def analyse(
        self, job: ParseJob, timeout: float = PARSE_TIMEOUT_SECONDS, wait: float = WAIT_SECONDS
    ) -> Verdict:
        self._start()
        try:
            worker = self._idle.get(timeout=wait)
        except queue.Empty:
            raise QueryCheckBusy("every query checker is busy; retry shortly") from None
        try:
            worker.wait_ready()
            verdict = worker.call(job, timeout)
        except BaseException:
            worker.kill()
            self._idle.put(_Worker())
            raise
        if verdict is None:
            worker.kill()
            self._idle.put(_Worker())
            raise QueryTooComplex(
                f"checking the query took longer than {timeout:g} s; simplify the query"
            )
        self._idle.put(worker)
        return verdict

    def close(self) -> None:
        with self._lock:
            self._closed = True
            while True:
                try:
                    self._idle.get_nowait().kill()
                except queue.Empty:
                    break


#: One pool per API process: analysis is stateless, so every app instance may share it.
POOL: Final = ParsePool()
atexit.register(POOL.close)
