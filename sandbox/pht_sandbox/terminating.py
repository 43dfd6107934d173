"""SIGTERM stops the station in a box the way Ctrl-C does.

The station in a box starts its components (station API, operator, control-plane processes,
trains) in sessions of their own, so a terminal's Ctrl-C reaches only ``pht``, which then stops
each of them. Python's default answer to SIGTERM (what ``kill``, ``timeout`` and process
supervisors send) ends ``pht`` at once and leaves those processes running. Here SIGTERM is
turned into the same interruption as Ctrl-C, so the same clean-up runs.

Signal handlers belong to the main thread: elsewhere these helpers change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def raise_on_sigterm() -> Callable[[], None]:
    """From now on SIGTERM raises :class:`KeyboardInterrupt`; returns what undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _interrupt)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is _interrupt:
            signal.signal(signal.SIGTERM, previous)

    return restore


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` as Ctrl-C does."""
    restore = raise_on_sigterm()
    try:
        yield
    finally:
        restore()


def stops_on_sigterm(
    main: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """For the coroutine a command runs: SIGTERM cancels it as ``asyncio.run`` does on Ctrl-C,
    and it then ends with :class:`KeyboardInterrupt` (its clean-up has run by then)."""

    @functools.wraps(main)
    async def stopping(*args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main(*args, **kwargs))
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            task.cancel()

        handled = False
        if threading.current_thread() is threading.main_thread():
            loop.add_signal_handler(signal.SIGTERM, terminate)
            handled = True
        try:
            return await task
        except asyncio.CancelledError:
            if terminated:
                raise KeyboardInterrupt("signal SIGTERM") from None
            raise
        finally:
            if handled:
                loop.remove_signal_handler(signal.SIGTERM)

    return stopping
