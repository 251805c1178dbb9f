"""Site time: the clock each site is judged on, and where each followed stream's time stands.

Every site is judged on its own clock. Without ``clocks`` (``scenario verify``) that is the
``wall_now`` the engine's caller passes (the verifier's simulated clock). The live role passes a
:class:`~kordon.streamclock.StreamClocks`: a site that a live stream (``kordon simulate``,
``replay``, ``demo``) announced is judged on that stream's scenario time — ``for``,
keep-firing, silence timeouts, depletion windows, silences, group timers, escalation,
``startsAt``/``endsAt`` — and every other site on ``wall_now``, the wall clock.

A stream's time, as the engine uses it, is what the stream has *evidenced*: the newest
timestamp of its readings received so far (never beyond the follower's extrapolated clock
plus a margin), or its announced ``sim`` less ``TRANSIT_MAX`` wall seconds of the stream
(everything before ``sim`` was handed to the broker, but may still be queued behind other
connections), so time moves on even when no device of the stream publishes. Unlike the
extrapolated clock it cannot run ahead of a publisher that stalls or falls behind its speed,
which would judge every queued device silent; it advances with every message, as the
verifier's clock does. Readings travel on different connections and arrive out of order,
so the timers (``for``, keep-firing, silence, groups) run on a *watermark*: that time less
a transit allowance of ``speed x TRANSIT`` scenario seconds (or 1.5 times the lateness of
the stream's readings seen lately, at most ``speed x TRANSIT_MAX``), by which every reading
is taken to have arrived; a device's conditions hold from its reading's own time, so a
``for`` of 30 s means 30 s of the device's readings, as in the verifier.
A site whose time base changes is settled quietly (:mod:`alerts.settle`,
:meth:`alerts.engine.Engine.sync`); :meth:`SiteTime.switch` moves it to the new clock and says
from when its messages count again (``cutoff``).

The names say which clock a time is on: ``wall_now`` (the live role's wall clock, or the
verifier's), ``site_now`` (a site's time), ``stream_now`` (a stream's evidenced time),
``reading_at`` (a reading's own timestamp) and ``watermark``. This module keeps only this
bookkeeping: it reads the stream clocks and holds no alert, device or store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from alerts.state import Alert
from kordon.model.payload import DecodeLimits, Reading
from kordon.streamclock import StreamClocks, Switch

# Clock announcements and readings travel on different connections: a stream's devices are
# judged silent only this many wall seconds (times its speed, in scenario time) later.
TRANSIT = 0.5
# ... or more, as far as a stream's readings were seen arriving behind its newest (publishers
# queue a device's first readings until its connection is up): 1.5 times the largest lateness
# of the last LATE_WINDOW to 2 x LATE_WINDOW readings, at most TRANSIT_MAX wall seconds.
LATE_WINDOW = 1000
TRANSIT_MAX = 2.0


@dataclass(frozen=True, slots=True)
class Arrival:
    """How a message that just reached a site is timed, decided before it is decoded."""

    stream: str | None  # the stream whose time the site is judged on; None: the wall clock
    site_now: float  # the site's time: its stream's watermark, else the wall clock
    limits: DecodeLimits  # what a reading's timestamp may be
    future_from: float  # the time a reading's "future" is measured from
    stream_now: float  # the stream's evidenced time before this message (else the wall clock)


class SiteTime:
    """The time each site is judged at; see the module docstring."""

    def __init__(self, clocks: StreamClocks | None, limits: DecodeLimits, wall_now: float) -> None:
        self.clocks = clocks
        self.limits = limits  # decoding limits of a site on the wall clock
        # The wall clock of the engine's current tick: dispatcher groups and silences ask
        # their site's time without being handed a clock (group_now, alert_now).
        self.wall_now = wall_now
        self.streamed: dict[str, str] = {}  # site -> stream whose scenario time it is judged on
        # Sites once settled -> messages stamped before this are not news there.
        self.cutoff: dict[str, float] = {}
        self._evidence: dict[str, float] = {}  # stream -> its time, as evidenced (docstring)
        self._late: dict[str, list[float]] = {}  # stream -> [max now, max before, count]
        self._speeds: dict[str, float] = {}  # stream -> its speed, as of the last sync
        self._stream_sites: dict[str, set[str]] = {}  # stream -> the sites it holds

    # ------------------------------------------------------------------ asking the time
    def time_of(self, site: str, wall_now: float) -> float:
        """The time ``site`` is judged at: its stream's watermark, else ``wall_now``."""
        stream = self.streamed.get(site)
        if stream is None:
            return wall_now
        return self.watermark(stream, self._evidence.get(stream, wall_now))

    def now_of(self, wall_now: float) -> Callable[[str], float] | None:
        """``time_of`` for ``wall_now`` as a function of the site, or None while every site is
        on the wall clock (the callers' cheap path)."""
        if not self.streamed:
            return None
        return lambda site: self.time_of(site, wall_now)

    def group_now(self, site: str) -> float:
        """A dispatcher group's "now": its site's time at the current tick."""
        return self.time_of(site, self.wall_now)

    def alert_now(self, alert: Alert) -> float:
        """An alert's "now" for silences: its site's time at the current tick."""
        return self.time_of(alert.key[1], self.wall_now)

    def silence_now(self, stream: str) -> float:
        """When a stream's devices are judged silent: its watermark."""
        if stream not in self._stream_sites:
            return -float("inf")  # nothing of it is tracked any more
        return self.watermark(stream, self._evidence.get(stream, -float("inf")))

    def watermark(self, stream: str, stream_now: float) -> float:
        """The stream's time up to which every reading is taken to have arrived: its
        evidenced time less the transit allowance. Timers (``for``, keep-firing, silence,
        groups) run on it; a condition holds from the time of the reading that set it."""
        return stream_now - self._allowance(stream, self._speeds.get(stream, 1.0))

    def speed(self) -> float:
        """The fastest stream followed (0 when none): the role ticks that often."""
        if self.clocks is None or not self._stream_sites:
            return 0.0
        return max(
            (self.clocks.speed(next(iter(sites))) for sites in self._stream_sites.values()
             if sites),
            default=0.0,
        )

    # ------------------------------------------------------------------ messages
    def arrival(self, site: str, wall_now: float) -> Arrival:
        """How a message reaching ``site`` at ``wall_now`` is timed. A streamed site decodes
        against the follower's extrapolated clock, with a margin of two wall seconds of the
        stream, since its readings are stamped on the stream's clock, not the wall's."""
        stream = self.streamed.get(site)
        if stream is None:
            return Arrival(None, wall_now, self.limits, wall_now, wall_now)
        assert self.clocks is not None
        margin = max(self.limits.max_future_seconds, 2.0 * self.clocks.speed(site))
        stream_now = self._evidence.get(stream, wall_now)
        return Arrival(
            stream,
            self.watermark(stream, stream_now),
            dataclasses.replace(self.limits, max_future_seconds=margin),
            self.clocks.now(site),
            stream_now,
        )

    def admit(self, arrival: Arrival, readings: Iterable[Reading]) -> float:
        """The time a device whose ``readings`` just arrived was seen and is judged at.

        On the wall clock that is the time of receipt. A streamed device was last seen at its
        newest reading's own time (``reading_at``), and its conditions hold from it; the
        stream's time moves on to it, and how far it lagged the stream's time goes into the
        transit allowance."""
        if arrival.stream is None:
            return arrival.site_now
        reading_at = max(r.ts_ns for r in readings) / 1e9
        self._lateness(arrival.stream, arrival.stream_now - reading_at)
        self._advance(arrival.stream, reading_at)
        return reading_at

    # ------------------------------------------------------------------ clock changes
    def switches(self) -> list[Switch]:
        """The sites whose time base changed since the last call (``StreamClocks.poll``)."""
        return self.clocks.poll() if self.clocks is not None else []

    def switch(self, switch: Switch, wall_now: float) -> tuple[str | None, float]:
        """Move ``switch.site`` to its new time base and set its ``cutoff``; returns the stream
        it left (None: the wall clock) and the last time of its old clock (its alerts end
        then). A stream that starts counts from its announced time; one that holds no site any
        more is forgotten."""
        assert self.clocks is not None
        site = switch.site
        old = self.streamed.pop(site, None)
        last = wall_now if old is None else self._evidence.get(old, switch.at)
        if old is not None:
            sites = self._stream_sites.get(old)
            if sites is not None:
                sites.discard(site)
                if not sites:
                    del self._stream_sites[old]
                    self._evidence.pop(old, None)
                    self._late.pop(old, None)
                    self._speeds.pop(old, None)
        if switch.after is not None:
            self.streamed[site] = switch.after
            self._stream_sites.setdefault(switch.after, set()).add(site)
            self._speeds[switch.after] = self.clocks.speed(site)
            announced = self.clocks.announced(site)
            start = self._advance(switch.after, switch.at if announced is None else announced)
            # Readings in flight from just before the start are the stream's too.
            self.cutoff[site] = start - TRANSIT * max(self.clocks.speed(site), 1.0)
        else:
            self.cutoff[site] = max(switch.at, last)
        return old, last

    def follow(self) -> None:
        """Take each stream's speed and announced time (after ``switches`` were settled)."""
        if self.clocks is None:
            return
        for stream, sites in self._stream_sites.items():
            site = next(iter(sites))
            self._speeds[stream] = self.clocks.speed(site)
            announced = self.clocks.announced(site)
            if announced is not None:
                # What was announced may still be queued behind the readings: it counts only
                # TRANSIT_MAX wall seconds late (time moves on when no device publishes).
                self._advance(stream, announced - TRANSIT_MAX * self.clocks.speed(site))

    # ------------------------------------------------------------------ bookkeeping
    def _advance(self, stream: str, stream_now: float) -> float:
        current = self._evidence.get(stream)
        if current is None or stream_now > current:
            self._evidence[stream] = current = stream_now
        return current

    def _lateness(self, stream: str, late: float) -> None:
        """A reading ``late`` scenario seconds behind its stream's time: the largest of a
        window of LATE_WINDOW readings, and of the window before, make the allowance."""
        window = self._late.get(stream)
        if window is None:
            window = self._late[stream] = [0.0, 0.0, 0.0]
        if late > window[0]:
            window[0] = late
        window[2] += 1
        if window[2] >= LATE_WINDOW:
            window[1], window[0], window[2] = window[0], 0.0, 0.0

    def _allowance(self, stream: str, speed: float) -> float:
        """Scenario seconds a stream's device is given beyond its silence timeout."""
        window = self._late.get(stream)
        seen = 1.5 * max(window[0], window[1]) if window is not None else 0.0
        return max(TRANSIT * speed, min(seen, TRANSIT_MAX * speed))
