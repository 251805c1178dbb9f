"""Clocks. Every component takes one, so a replay can run on simulated time.

Live mode uses :class:`WallClock`; scenario replay uses :class:`SimulatedClock`, which only
moves when the scenario engine advances it, so a 24-hour scenario runs in seconds and gives
the same alerts every time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()


class SimulatedClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a simulated clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError("a simulated clock cannot go backwards")
            self._now = float(when)


WALL_CLOCK = WallClock()
