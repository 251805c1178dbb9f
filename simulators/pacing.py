"""Placing and pacing simulated time against the wall clock, and the progress line.

``speed`` 1 is real time, 60 runs an hour a minute, ``None`` runs as fast as the broker
takes the messages (QoS 1 acknowledgements pace the publisher then).
"""

from __future__ import annotations

import math
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from kordon.durations import format_duration


def choose_start(
    scenario_start: float | None,
    duration: float,
    requested: str | None,
    live: bool,
    speed: float | None,
    now: float,
) -> float | None:
    """Where simulated time begins.

    Recording keeps the scenario's ``start`` (reproducible files). Live publishing must not
    send timestamps from the future (the collector refuses them): at real time it starts now;
    faster than real time it ends by now, keeping the scenario's time of day when it has one.
    """
    if requested:
        if requested == "now":
            return now
        parsed = datetime.fromisoformat(requested)
        if parsed.tzinfo is None:
            raise ValueError("--start needs a UTC offset, e.g. 2024-12-14T06:00:00+02:00")
        return parsed.timestamp()
    if not live:
        return scenario_start
    if speed == 1.0:
        return now
    latest = now - duration
    if scenario_start is None:
        return latest
    whole_days = math.floor((latest - scenario_start) / 86400.0)
    return scenario_start + whole_days * 86400.0


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
