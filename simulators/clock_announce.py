"""The publisher's side of the stream clock (:mod:`kordon.streamclock`).

A publishing loop creates one :class:`ClockAnnouncer` on its :class:`FleetConnections` and
calls :meth:`ClockAnnouncer.tick` with each event's time just before it publishes the event
(everything earlier is then sent), and :meth:`ClockAnnouncer.stop` before closing::

    announcer = ClockAnnouncer.start(connections, "simulate", sites, speed, run.start)
    for event in run.events():
        ...wait for the pacer...
        announcer.tick(event.time)
        connections.handle(event)
    announcer.stop()

The announcer has its own MQTT connection (client id ``kordon-clock/{stream}``) whose last
will is the ``stopped`` announcement, retained, so a publisher that dies ends its clock too.
It re-announces every ``every`` wall seconds (also while the pacer waits, through the
connections' idle hook), at once when a new site appears or the speed changes, and in
``--fast`` mode (speed announced as 0: nothing to extrapolate) also every ``fast_step``
scenario seconds.

A loop that cannot keep its speed (the broker or the machine too slow) must not let followers
run ahead of what it has published: they would judge devices silent that are merely queued.
While it is behind schedule the announcer therefore announces the pace it actually keeps
(scenario seconds published per wall second over the last ``PACE_WINDOW`` seconds) instead of
the asked speed, and the asked speed again once it is back on schedule.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable

from kordon.model.topics import NAME_PATTERN
from kordon.streamclock import DEFAULT_EVERY, STOPPED, ClockAnnouncement, StreamPlan, announce
from simulators.mqtt import FleetConnections

log = logging.getLogger("kordon.simulators.clock")

FAST_STEP = 10.0  # scenario seconds between announcements when running flat out
PACE_WINDOW = 3.0  # wall seconds over which a loop behind schedule measures its pace
BEHIND = 0.25  # wall seconds behind schedule from which the measured pace is announced


def stream_id(kind: str) -> str:
    """A stream id unique per process and host, e.g. ``simulate-host-4711``."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:40] or "host"
    name = f"{kind}-{host}-{os.getpid()}"[:64]
    assert NAME_PATTERN.match(name), name
    return name


def site_of(topic: str) -> str | None:
    """The site of a device topic ``kordon/v1/{site}/{kind}/{device}/...`` (else None)."""
    parts = topic.split("/", 4)
    if len(parts) >= 5 and parts[:2] == ["kordon", "v1"] and NAME_PATTERN.match(parts[2]):
        return parts[2]
    return None


class ClockAnnouncer:
    def __init__(
        self,
        connections: FleetConnections,
        stream: str,
        sites: Iterable[str],
        speed: float | None,
        sim_start: float,
        *,
        every: float = DEFAULT_EVERY,
        fast_step: float = FAST_STEP,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        plan: StreamPlan | None = None,
    ) -> None:
        self.connections = connections
        self.stream = stream
        self.client_id = f"kordon-clock/{stream}"
        self.sites: dict[str, None] = dict.fromkeys(sites)
        self.plan = plan  # the outage schedule the stream's grid follows, if any
        self.speed = speed
        self.every = every
        self.fast_step = fast_step
        self.wall = wall
        self.monotonic = monotonic
        self.announced = 0
        self._sim = sim_start  # everything before this scenario time has been published
        self._anchor_mono = monotonic()
        self._last_mono = -float("inf")
        self._last_sim = -float("inf")
        self._stopped = False
        self._schedule = (self._anchor_mono, sim_start)  # (mono, sim) the pace counts from
        self._samples: deque[tuple[float, float]] = deque([(self._anchor_mono, sim_start)])
        self.topic = self._announcement(sim_start).topic

    @classmethod
    def start(
        cls,
        connections: FleetConnections,
        kind: str,
        sites: Iterable[str],
        speed: float | None,
        sim_start: float,
        plan: StreamPlan | None = None,
        **options: float,
    ) -> ClockAnnouncer:
        """Connect the announcer (will: ``stopped``, retained) and announce the start."""
        announcer = cls(connections, stream_id(kind), sites, speed, sim_start, plan=plan,
                        **options)
        will = announcer._announcement(sim_start).stopped().encode()
        connections.connect(announcer.client_id, None, keepalive=10.0, will=(announcer.topic, will))
        connections.idle_hooks.append(announcer.idle)
        announcer._announce(sim_start)
        return announcer

    # ------------------------------------------------------------------ the hooks
    def tick(self, sim_time: float, topic: str | None = None) -> None:
        """The loop is about to publish the event at ``sim_time`` (on ``topic``)."""
        if self._stopped:
            return
        now = self.monotonic()
        self._sim = max(self._sim, sim_time)
        self._anchor_mono = now
        samples = self._samples
        samples.append((now, self._sim))
        while len(samples) > 2 and now - samples[1][0] >= PACE_WINDOW:
            samples.popleft()
        changed = False
        if topic is not None:
            site = site_of(topic)
            if site is not None and site not in self.sites:
                self.sites[site] = None
                changed = True
        fast_due = self.speed is None and self._sim - self._last_sim >= self.fast_step
        if changed or fast_due or now - self._last_mono >= self.every:
            self._announce(self._sim)

    def idle(self, waiting: bool) -> None:
        """While the loop waits: for the pacer (on schedule, time moves at ``speed``) or for
        the broker (behind: time stands at the event being published)."""
        if self._stopped:
            return
        now = self.monotonic()
        if now - self._last_mono < self.every:
            return
        sim = self._sim
        if waiting and self.speed:
            # On schedule, everything up to the schedule's position has been published; not
            # beyond it (the loop may have spent a while publishing since the last event).
            mono0, sim0 = self._schedule
            sim = max(sim, min(sim + (now - self._anchor_mono) * self.speed,
                               sim0 + (now - mono0) * self.speed))
        self._announce(sim)

    def set_speed(self, speed: float | None) -> None:
        if speed != self.speed:
            self.speed = speed
            self._anchor_mono = self.monotonic()
            self._schedule = (self._anchor_mono, self._sim)
            self._samples = deque([(self._anchor_mono, self._sim)])
            self._announce(self._sim)

    def pace(self) -> float | None:
        """The speed to announce: the asked one on schedule, the measured one behind it."""
        speed = self.speed
        if not speed:
            return speed
        now = self.monotonic()
        mono0, sim0 = self._schedule
        behind = (mono0 + (self._sim - sim0) / speed) < now - BEHIND
        if not behind:
            return speed
        (first_mono, first_sim), (last_mono, last_sim) = self._samples[0], self._samples[-1]
        if last_mono - first_mono < 0.5:
            return speed
        measured = (last_sim - first_sim) / (last_mono - first_mono)
        return min(speed, max(measured, 0.001))

    def stop(self) -> None:
        """Say ``stopped``, clear the retained clock and close the connection cleanly."""
        if self._stopped:
            return
        self._stopped = True
        if self.in_hooks():
            self.connections.idle_hooks.remove(self.idle)
        sent = self.connections.send(
            self.client_id, self.topic, self._announcement(self._sim, STOPPED).encode(), 1, False
        )
        if sent:
            self.connections.send(self.client_id, self.topic, b"", 1, True)
            self.connections.disconnect(self.client_id)

    def in_hooks(self) -> bool:
        return self.idle in self.connections.idle_hooks

    # ------------------------------------------------------------------ internals
    def _announcement(self, sim: float, state: str = "running") -> ClockAnnouncement:
        return announce(
            self.stream,
            self.sites,
            sim,
            self.pace(),
            every=self.every,
            wall=self.wall(),
            state="stopped" if state == STOPPED else "running",
            plan=None if state == STOPPED else self.plan,
        )

    def _announce(self, sim: float) -> None:
        self._last_mono = self.monotonic()
        self._last_sim = sim
        payload = self._announcement(sim).encode()
        if self.connections.send(self.client_id, self.topic, payload, 1, True):
            self.announced += 1
        else:
            log.debug("stream clock %s: no connection", self.stream)
