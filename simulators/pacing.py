"""Placing and pacing simulated time against the wall clock, and the progress line.

``speed`` 1 is real time, 60 runs an hour a minute, ``None`` runs as fast as the broker
takes the messages (QoS 1 acknowledgements pace the publisher then).

The pacer never skips a message, so a publisher that cannot keep the asked pace falls
behind: the pacer measures by how much (``lag``, scenario seconds behind the schedule) and the
pace it actually keeps (``effective_speed()``, over the last few wall seconds), and warns once
when that stays under 90 % of the asked speed for more than ``slow_after`` seconds.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from kordon.durations import format_duration

log = logging.getLogger("kordon.simulators.pacing")

SLOW_RATIO = 0.9
WINDOW = 5.0  # wall seconds over which the effective speed is measured


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
    def __init__(
        self,
        speed: float | None,
        sim_start: float,
        *,
        slow_after: float = 3.0,
        warn: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.sim_start = sim_start
        self.monotonic = monotonic
        self.wall_start = monotonic()
        self.slow_after = slow_after
        self.warn = warn if warn is not None else log.warning
        self.lag = 0.0  # scenario seconds behind the schedule at the last event
        self.max_lag = 0.0
        self.warned = False
        self._position = sim_start
        self._samples: deque[tuple[float, float]] = deque([(self.wall_start, sim_start)])
        self._slow_since: float | None = None

    def scheduled(self, now: float | None = None) -> float | None:
        """The scenario time the schedule has reached (None running flat out)."""
        if self.speed is None:
            return None
        now = self.monotonic() if now is None else now
        return self.sim_start + (now - self.wall_start) * self.speed

    def delay(self, sim_time: float) -> float:
        """Seconds to wait before ``sim_time`` is due (0 when due or running flat out).

        Also the measurement point: the publisher has sent everything before ``sim_time``.
        """
        now = self.monotonic()
        if self.speed is None:
            self._observe(now, sim_time)
            return 0.0
        due = self.wall_start + (sim_time - self.sim_start) / self.speed
        wait = due - now
        if wait > 0:
            self.lag = 0.0
            scheduled = self.scheduled(now)
            assert scheduled is not None
            self._observe(now, max(self._position, scheduled))
            return wait
        self.lag = -wait * self.speed
        self.max_lag = max(self.max_lag, self.lag)
        self._observe(now, sim_time)
        return 0.0

    def effective_speed(self) -> float | None:
        """Scenario seconds published per wall second over the last ``WINDOW`` seconds."""
        if len(self._samples) < 2:
            return None
        (t0, p0), (t1, p1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.5:
            return None
        return (p1 - p0) / (t1 - t0)

    def _observe(self, now: float, position: float) -> None:
        self._position = max(self._position, position)
        samples = self._samples
        if now - samples[-1][0] >= 0.1:
            samples.append((now, self._position))
        else:
            samples[-1] = (samples[-1][0], self._position)
        while len(samples) > 2 and now - samples[1][0] >= WINDOW:
            samples.popleft()
        self._check(now)

    def _check(self, now: float) -> None:
        if self.speed is None or self.warned:
            return
        effective = self.effective_speed()
        window_full = now - self._samples[0][0] >= WINDOW * 0.8
        if effective is None or not window_full or effective >= SLOW_RATIO * self.speed:
            self._slow_since = None
            return
        if self._slow_since is None:
            self._slow_since = now
        if now - self._slow_since >= self.slow_after:
            self.warned = True
            self.warn(
                f"cannot keep {self.speed:g}x: publishing at {effective:.0f}x, "
                f"{format_duration(self.lag)} of scenario time behind schedule "
                "(the broker, its subscribers or this machine are too slow); "
                "nothing is skipped, the run will take longer"
            )


class Progress:
    """One line on stderr, rewritten at most once a second: simulated time, devices, messages,
    and with a pacer the speed actually kept and the lag behind the schedule."""

    def __init__(
        self,
        total_seconds: float,
        sim_start: float,
        stream: TextIO | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.total = total_seconds
        self.sim_start = sim_start
        self.stream = stream if stream is not None else sys.stderr
        self.pacer = pacer
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
        if self.pacer is not None:
            line += self._pace(self.pacer)
        end = "\r" if self.stream.isatty() else "\n"
        self.stream.write(line.ljust(100) + end)
        self.stream.flush()
        self._shown = True

    @staticmethod
    def _pace(pacer: Pacer) -> str:
        effective = pacer.effective_speed()
        if pacer.speed is None:
            return f"  speed {effective:,.0f}x (flat out)" if effective is not None else ""
        shown = f"{effective:,.0f}x" if effective is not None else "-"
        text = f"  speed {shown} of {pacer.speed:g}x"
        if pacer.lag >= 1.0:
            text += f"  lag {format_duration(pacer.lag)}"
        return text

    def finish(self) -> None:
        if self._shown and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()
