"""What both bridges need around their poll loops: backoff, interruptible waits, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("bridges")


class Backoff:
    """Exponential delays with full jitter, so bridges that lost one upsd do not retry in step."""

    def __init__(self, first: float = 1.0, limit: float = 30.0) -> None:
        self.first = first
        self.limit = limit
        self._attempt = 0

    def reset(self) -> None:
        self._attempt = 0

    def next(self) -> float:
        ceiling = min(self.limit, self.first * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return random.uniform(ceiling / 2, ceiling)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; ``True`` when it was."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` until it ends or ``stop`` is set (then cancel it); ``True`` if stopped.

    A connect or an SNMP request can hang for its whole timeout; shutting down must not.
    """
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        task.result()  # re-raise what the work raised
        return stop.is_set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return True


def run_until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> int:
    """Run ``main(stop)`` in a fresh event loop; SIGINT and SIGTERM set ``stop``."""

    async def _runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(_runner())
    return 0
