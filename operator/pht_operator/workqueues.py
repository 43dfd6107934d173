"""A deduplicating work queue: many wake-ups of one Train become one reconcile pass.

Watch events for a Train, its Job, its Pods, approvals and policy changes all just *enqueue the
Train's uid*. A uid is in the queue at most once and is never reconciled by two workers at the
same time (a wake-up during a pass schedules exactly one more pass). Failed passes are retried
with exponential backoff up to the poll interval. Updates of a run's Job and Pods come in
bursts (a pod scheduled, started, its Job's counts): :meth:`WorkQueue.add_soon` gathers a
burst into one pass a moment later. This is what keeps passes level-triggered and
the number of API calls bounded by the number of Trains, not the number of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("pht_operator.workqueues")


class WorkQueue:
    def __init__(
        self,
        work: Callable[[str], Awaitable[None]],
        *,
        workers: int,
        max_backoff: float,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self._work = work
        self._workers = workers
        self._max_backoff = max_backoff
        self._on_error = on_error
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._failures: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        #: Wake-ups gathered by :meth:`add_soon`, apart from the retry timers.
        self._soon: dict[str, asyncio.TimerHandle] = {}

    def add(self, key: str) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_soon(self, key: str, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds, counted from the first of several calls: the
        wake-ups in between become the one pass (a key already queued is left as it is)."""
        if key in self._queued or key in self._soon:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._soon.pop(key, None)
            self.add(key)

        self._soon[key] = loop.call_later(delay, fire)

    def add_later(self, key: str, delay: float) -> None:
        if key in self._timers:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self._workers)]

    async def stop(self) -> None:
        for timer in [*self._timers.values(), *self._soon.values()]:
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            soon = self._soon.pop(key, None)
            if soon is not None:  # this pass reads what the gathered wake-ups announced
                soon.cancel()
            self._active.add(key)
            try:
                await self._work(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                self._on_error(key, exc)
                self.add_later(key, min(self._max_backoff, 0.1 * 2**failures))
            else:
                self._failures.pop(key, None)
            finally:
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)
