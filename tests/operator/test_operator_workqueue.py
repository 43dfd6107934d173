"""The work queue: a burst of run-object wake-ups becomes one pass a moment later."""

from __future__ import annotations

import asyncio

from pht_operator.workqueues import WorkQueue


def queue(passes: list[str], pass_seconds: float = 0.0) -> WorkQueue:
    async def work(key: str) -> None:
        passes.append(key)
        await asyncio.sleep(pass_seconds)

    def failed(key: str, exc: BaseException) -> None:
        raise AssertionError(f"{key}: {exc}")

    return WorkQueue(work, workers=2, max_backoff=1.0, on_error=failed)


async def test_wake_ups_within_the_delay_become_one_pass_after_it() -> None:
    passes: list[str] = []
    work = queue(passes)
    work.start()
    try:
        for _ in range(5):
            work.add_soon("a", 0.2)
            await asyncio.sleep(0.02)
        assert passes == []  # gathered, not yet run
        await asyncio.sleep(0.25)
        assert passes == ["a"]
        work.add_soon("a", 0.1)  # a later burst gets a pass of its own
        await asyncio.sleep(0.2)
        assert passes == ["a", "a"]
    finally:
        await work.stop()


async def test_a_pass_that_starts_meanwhile_takes_the_gathered_wake_ups() -> None:
    passes: list[str] = []
    work = queue(passes)
    work.start()
    try:
        work.add_soon("a", 0.2)
        work.add("a")  # e.g. the Train itself changed: it runs now, reading the latest state
        await asyncio.sleep(0.05)
        assert passes == ["a"]
        await asyncio.sleep(0.3)
        assert passes == ["a"]  # no second pass for what the first one already read
    finally:
        await work.stop()


async def test_a_wake_up_during_a_pass_gets_one_more_pass() -> None:
    passes: list[str] = []
    work = queue(passes, pass_seconds=0.2)
    work.start()
    try:
        work.add("a")
        await asyncio.sleep(0.05)
        work.add_soon("a", 0.05)  # fires while the pass still runs
        await asyncio.sleep(0.5)
        assert passes == ["a", "a"]
    finally:
        await work.stop()
