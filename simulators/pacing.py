"""Pacing simulated time against the wall clock, and the progress line.

``speed`` 1 is real time, 60 runs an hour a minute, ``None`` runs as fast as the broker
takes the messages (QoS 1 acknowledgements pace the publisher then).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from kordon.durations import format_duration


class Pacer:
    def __init__(self, speed: float | None, sim_start: float) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.sim_start = sim_start
        self.wall_start = time.monotonic()

    def delay(self, sim_time: float) -> float:
        """Seconds to wait before ``sim_time`` is due (0 when due or running flat out)."""
        if self.speed is None:
            return 0.0
        due = self.wall_start + (sim_time - self.sim_start) / self.speed
        return max(0.0, due - time.monotonic())


class Progress:
    """One line on stderr, rewritten at most once a second: simulated time, devices, messages."""

    def __init__(
        self, total_seconds: float, sim_start: float, stream: TextIO | None = None
    ) -> None:
        self.total = total_seconds
        self.sim_start = sim_start
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def update(self, sim_time: float, devices: int, messages: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 1.0:
            return
        self._last = now
        wall = max(now - self.started, 1e-9)
        stamp = datetime.fromtimestamp(sim_time, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        elapsed = format_duration(sim_time - self.sim_start)
        line = (
            f"sim {stamp} (+{elapsed} of {format_duration(self.total)})  "
            f"devices {devices}  messages {messages:,}  {messages / wall:,.0f} msg/s"
        )
        end = "\r" if self.stream.isatty() else "\n"
        self.stream.write(line.ljust(100) + end)
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()
