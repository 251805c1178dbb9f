"""The stream clock: scenario time announced on the MQTT contract, and the follower of it.

A publisher that plays a scenario at speed N (``kordon simulate``, ``replay``, ``demo``)
announces its scenario clock on a retained control topic, one per stream::

    kordon/v1/clock/{stream}   (QoS 1, retained; last will: the same payload, "stopped")
    {"stream": "sim-host-4711", "sites": ["chop", "solotvyno"], "sim": 1734328801.2,
     "wall": 1734350000.5, "speed": 60.0, "every": 1.0, "state": "running"}

A stream whose grid follows an outage schedule (a scenario with ``schedule:``) adds its plan,
so that followers forecast its sites against the cuts the stream will play, not against the
configured (real) schedule sources: ``"plan": {"groups": {site: group},
"schedule": kordon.schedule.model.schedule_to_dict(...)}`` (times already moved to the run).

``sim`` is the scenario time up to which the stream has published everything, ``wall`` the
publisher's wall clock when it said so, ``speed`` how fast ``sim`` advances per wall second
(0: held, e.g. ``--fast``, where nothing can be extrapolated), ``every`` how often (wall
seconds) it re-announces; it also announces on any change of speed or sites, and ``stopped``
when it ends (or the broker sends that as its last will).

A follower (:class:`StreamClocks`) computes the time of a site the stream announced as
``sim + (receipt_age) * speed``: it anchors each live announcement to its *own* monotonic
clock at receipt, so the clocks of publisher and follower hosts need not agree (a skew of one
second at 600x would be ten scenario minutes). A retained announcement delivered on subscribe
is aged by ``wall_now - wall`` (the only estimate there is), until the next live one arrives.

Rules (documented in docs/simulators.md and docs/mqtt.md):

* Scenario time applies only to the sites a live stream announced; every other site (real
  devices) is judged on the wall clock. Two live streams claiming one site: the stream first
  heard most recently wins (ties: the greater stream id).
* A site's time never goes backwards while one stream holds it (re-anchoring to an announcement
  that is behind the extrapolation holds the clock until the announcement catches up).
* A stream is stale when nothing was heard from it for ``max(stale_after, 3 x every)`` wall
  seconds, or it said ``stopped``: its sites return to the wall clock. Returning keeps the
  site's time monotonic (``max(wall, last scenario time)``).
* Every change of a site's time base (wall -> stream, stream -> wall, stream -> other stream)
  is a :class:`Switch`, reported once by :meth:`StreamClocks.poll`, so the consumer (the alert
  engine) can freeze or clear that site's state quietly instead of paging on a time jump.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from kordon.clock import WALL_CLOCK, Clock
from kordon.model.topics import NAME_PATTERN, TopicError, clock_topic, parse_clock_topic
from kordon.schedule.model import Schedule, schedule_from_dict, schedule_to_dict

RUNNING = "running"
STOPPED = "stopped"
DEFAULT_EVERY = 1.0
DEFAULT_STALE_AFTER = 5.0
MAX_SITES = 10_000
MAX_SPEED = 1_000_000.0
MAX_PAYLOAD = 256 * 1024
_EARLIEST = 946_684_800.0  # 2000-01-01: an unset clock, as the collector's rule


class ClockError(ValueError):
    """An announcement that does not follow the contract; the message says what is wrong."""


@dataclass(frozen=True, slots=True, eq=False)
class StreamPlan:
    """The outage schedule a stream's grid follows, and each of its sites' group in it."""

    groups: dict[str, str]  # site -> queue group
    schedule: Schedule

    def to_dict(self) -> dict[str, object]:
        return {"groups": dict(self.groups),
                "schedule": schedule_to_dict(self.schedule, set(self.groups.values()))}

    @classmethod
    def from_dict(cls, data: object) -> StreamPlan:
        if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
            raise ClockError("plan must be an object with groups {site: group} and a schedule")
        groups = data["groups"]
        for site, group in groups.items():
            if not NAME_PATTERN.match(site) or not isinstance(group, str):
                raise ClockError(f"plan: site {site!r} or its group {group!r} is not valid")
        try:
            schedule = schedule_from_dict(data.get("schedule"))
        except ValueError as exc:
            raise ClockError(f"plan: {exc}") from None
        return cls(dict(groups), schedule)


@dataclass(frozen=True, slots=True)
class ClockAnnouncement:
    stream: str
    sim: float
    wall: float
    speed: float
    state: Literal["running", "stopped"] = RUNNING
    sites: tuple[str, ...] = ()
    every: float = DEFAULT_EVERY
    plan: StreamPlan | None = field(default=None, compare=False)

    @property
    def topic(self) -> str:
        return clock_topic(self.stream)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def encode(self) -> bytes:
        document: dict[str, object] = {
            "stream": self.stream,
            "sites": list(self.sites),
            "sim": round(self.sim, 3),
            "wall": round(self.wall, 3),
            "speed": self.speed,
            "every": self.every,
            "state": self.state,
        }
        if self.plan is not None:
            document["plan"] = self.plan.to_dict()
        return orjson.dumps(document)

    def stopped(self, sim: float | None = None, wall: float | None = None) -> ClockAnnouncement:
        return ClockAnnouncement(
            self.stream,
            self.sim if sim is None else sim,
            self.wall if wall is None else wall,
            self.speed,
            STOPPED,
            self.sites,
            self.every,
        )

    @classmethod
    def decode(cls, payload: bytes | str, topic: str | None = None) -> ClockAnnouncement:
        """Parse and validate; ``topic`` (if given) must name the same stream."""
        if isinstance(payload, str):
            payload = payload.encode()
        if len(payload) > MAX_PAYLOAD:
            raise ClockError(f"clock announcement of {len(payload)} bytes (limit {MAX_PAYLOAD})")
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ClockError(f"clock announcement is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ClockError("clock announcement must be a JSON object")
        stream = data.get("stream")
        if not isinstance(stream, str) or not NAME_PATTERN.match(stream):
            raise ClockError(f"stream {stream!r} does not match {NAME_PATTERN.pattern}")
        if topic is not None:
            try:
                named = parse_clock_topic(topic)
            except TopicError as exc:
                raise ClockError(str(exc)) from None
            if named != stream:
                raise ClockError(f"stream {stream!r} announced on the topic of {named!r}")
        sim = _number(data, "sim", _EARLIEST, None)
        wall = _number(data, "wall", _EARLIEST, None)
        speed = _number(data, "speed", 0.0, MAX_SPEED)
        every = _number(data, "every", 0.01, 3600.0, DEFAULT_EVERY)
        state = data.get("state")
        if state not in (RUNNING, STOPPED):
            raise ClockError(f"state {state!r} is not 'running' or 'stopped'")
        sites = data.get("sites", [])
        if not isinstance(sites, list) or len(sites) > MAX_SITES:
            raise ClockError(f"sites must be a list of at most {MAX_SITES} site names")
        for site in sites:
            if not isinstance(site, str) or not NAME_PATTERN.match(site):
                raise ClockError(f"site {site!r} does not match {NAME_PATTERN.pattern}")
        raw_plan = data.get("plan")
        plan = None if raw_plan is None else StreamPlan.from_dict(raw_plan)
        return cls(stream, sim, wall, speed, state, tuple(dict.fromkeys(sites)), every, plan)


def _number(
    data: dict[str, Any], key: str, low: float, high: float | None, default: float | None = None
) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClockError(f"{key} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        bound = f"{low:g}..{high:g}" if high is not None else f">= {low:g}"
        raise ClockError(f"{key} {value!r} is out of range ({bound})")
    return value


@dataclass(frozen=True, slots=True)
class Switch:
    """A site changed its time base: ``before``/``after`` are stream ids, None = wall clock."""

    site: str
    before: str | None
    after: str | None
    at: float  # the site's time (after the switch) when it was noticed


@dataclass(slots=True)
class _Stream:
    last: ClockAnnouncement
    first_heard: float  # follower monotonic
    heard: float  # follower monotonic, last announcement
    anchor_mono: float
    anchor_sim: float
    order: int  # tie-break of first_heard: a counter of streams seen


@dataclass(slots=True)
class _Site:
    owner: str | None = None
    last: float = -math.inf  # the last time returned for this site under its owner
    reported_owner: str | None = None  # what poll() last reported
    seen: bool = field(default=False)


class SiteClock:
    """One site's clock (the kernel ``Clock`` protocol) backed by :class:`StreamClocks`."""

    __slots__ = ("clocks", "site")

    def __init__(self, clocks: StreamClocks, site: str) -> None:
        self.clocks = clocks
        self.site = site

    def now(self) -> float:
        return self.clocks.now(self.site)


class StreamClocks:
    """Follows every stream clock on the broker; answers the time of any site. Thread-safe.

    ``now(site)`` is the scenario time of a site a live stream announced, the wall clock
    otherwise; ``now()`` is the wall clock. Feed it with :meth:`handle` (topic and payload of
    ``kordon/v1/clock/+``) or :meth:`feed`.
    """

    def __init__(
        self,
        wall: Clock = WALL_CLOCK,
        monotonic: Callable[[], float] = time.monotonic,
        stale_after: float = DEFAULT_STALE_AFTER,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self._sites: dict[str, _Site] = {}
        self._order = 0

    # ------------------------------------------------------------------ input
    def handle(
        self, topic: str, payload: bytes, retained: bool = False
    ) -> ClockAnnouncement | None:
        """A message of ``kordon/v1/clock/+``. An empty payload (a retained message being
        cleared) forgets the stream; a bad one raises :class:`ClockError`."""
        if not payload:
            try:
                stream = parse_clock_topic(topic)
            except TopicError as exc:
                raise ClockError(str(exc)) from None
            self.forget(stream)
            return None
        announcement = ClockAnnouncement.decode(payload, topic)
        self.feed(announcement, retained=retained)
        return announcement

    def feed(self, announcement: ClockAnnouncement, retained: bool = False) -> None:
        mono = self.monotonic()
        # A live announcement is anchored at receipt (host clocks need not agree); a retained
        # one may be old: age it by the publisher's wall clock, the only estimate there is.
        age = 0.0
        if retained:
            age = max(0.0, self.wall.now() - announcement.wall)
        with self._lock:
            stream = self._streams.get(announcement.stream)
            if not announcement.running:
                if stream is not None:
                    stream.last = announcement
                    stream.heard = mono
                return
            if retained and stream is not None:
                return  # a live announcement is better than any retained one
            if retained and age > self._stale_limit(announcement):
                return  # the residue of a stream that died without a will
            anchor_mono = mono - age
            anchor_sim = announcement.sim
            if stream is None or not stream.last.running:
                self._order += 1
                self._streams[announcement.stream] = _Stream(
                    announcement, mono, mono, anchor_mono, anchor_sim, self._order
                )
            else:
                stream.last = announcement
                stream.heard = mono
                stream.anchor_mono = anchor_mono
                stream.anchor_sim = anchor_sim
            for site in announcement.sites:
                self._sites.setdefault(site, _Site())

    def forget(self, stream: str) -> None:
        with self._lock:
            self._streams.pop(stream, None)

    # ------------------------------------------------------------------ queries
    def now(self, site: str | None = None) -> float:
        """Scenario time of ``site`` if a live stream announced it, else the wall clock."""
        wall = self.wall.now()
        if site is None:
            return wall
        with self._lock:
            entry = self._sites.get(site)
            if entry is None:
                return wall
            return self._site_now(site, entry, wall, self.monotonic())

    def clock(self, site: str) -> SiteClock:
        return SiteClock(self, site)

    def source(self, site: str) -> str | None:
        """The stream whose time ``site`` follows now (None: the wall clock)."""
        with self._lock:
            entry = self._sites.get(site)
            if entry is None:
                return None
            self._site_now(site, entry, self.wall.now(), self.monotonic())
            return entry.owner

    def site_clock(self, site: str) -> tuple[float, str | None, float]:
        """``(now, stream, speed)`` of ``site`` at one instant: its time, the stream it follows
        (None: the wall clock, speed 1) and how fast that stream's time runs (0: held)."""
        wall, mono = self.wall.now(), self.monotonic()
        with self._lock:
            entry = self._sites.get(site)
            if entry is None:
                return wall, None, 1.0
            now = self._site_now(site, entry, wall, mono)
            stream = self._streams.get(entry.owner) if entry.owner is not None else None
            if stream is None:
                return now, None, 1.0
            return now, entry.owner, stream.last.speed

    def plan(self, site: str) -> tuple[str, str, Schedule] | None:
        """``(stream, group, schedule)`` when the live stream that holds ``site`` announced the
        outage schedule its grid follows and gave the site a group in it; else None."""
        with self._lock:
            owner = self._owner(site, self.monotonic()) if site in self._sites else None
            plan = owner.last.plan if owner is not None else None
            if plan is None or site not in plan.groups:
                return None
            return owner.last.stream, plan.groups[site], plan.schedule  # type: ignore[union-attr]

    def simulated(self, site: str) -> bool:
        return self.source(site) is not None

    def announced(self, site: str) -> float | None:
        """The scenario time the stream that holds ``site`` last announced (everything before
        it was published), without extrapolation; None on the wall clock."""
        with self._lock:
            mono = self.monotonic()
            owner = self._owner(site, mono) if site in self._sites else None
            return None if owner is None else owner.last.sim

    def speed(self, site: str) -> float:
        """How fast ``site``'s time runs per wall second: 1.0 on the wall clock, the owning
        stream's announced speed otherwise (0: held)."""
        with self._lock:
            mono = self.monotonic()
            owner = self._owner(site, mono) if site in self._sites else None
            return 1.0 if owner is None else owner.last.speed

    def poll(self) -> list[Switch]:
        """Every site whose time base changed since the last poll (each change reported once)."""
        wall, mono = self.wall.now(), self.monotonic()
        switches = []
        with self._lock:
            for name, entry in self._sites.items():
                at = self._site_now(name, entry, wall, mono)
                if entry.owner != entry.reported_owner:
                    switches.append(Switch(name, entry.reported_owner, entry.owner, at))
                    entry.reported_owner = entry.owner
        return switches

    def streams(self) -> list[dict[str, Any]]:
        """What the follower knows, for the API and logs."""
        wall, mono = self.wall.now(), self.monotonic()
        out = []
        with self._lock:
            for name, stream in sorted(self._streams.items()):
                live = self._live(stream, mono)
                out.append(
                    {
                        "stream": name,
                        "state": stream.last.state if live or not stream.last.running else "stale",
                        "sites": list(stream.last.sites),
                        "speed": stream.last.speed,
                        "sim": self._extrapolate(stream, mono) if live else stream.last.sim,
                        "heard_ago": mono - stream.heard,
                        "owns": sorted(
                            site
                            for site, entry in self._sites.items()
                            if self._site_now(site, entry, wall, mono) and entry.owner == name
                        ),
                    }
                )
        return out

    # ------------------------------------------------------------------ internals
    def _stale_limit(self, announcement: ClockAnnouncement) -> float:
        return max(self.stale_after, 3.0 * announcement.every)

    def _live(self, stream: _Stream, mono: float) -> bool:
        return stream.last.running and mono - stream.heard <= self._stale_limit(stream.last)

    @staticmethod
    def _extrapolate(stream: _Stream, mono: float) -> float:
        return stream.anchor_sim + max(0.0, mono - stream.anchor_mono) * stream.last.speed

    def _owner(self, site: str, mono: float) -> _Stream | None:
        best: _Stream | None = None
        for stream in self._streams.values():
            if (
                site in stream.last.sites
                and self._live(stream, mono)
                and (
                    best is None
                    or (stream.first_heard, stream.order) > (best.first_heard, best.order)
                )
            ):
                best = stream
        return best

    def _site_now(self, site: str, entry: _Site, wall: float, mono: float) -> float:
        owner = self._owner(site, mono)
        owner_id = owner.last.stream if owner is not None else None
        if owner_id != entry.owner:
            # A new time base. Returning to the wall clock keeps time monotonic (max below);
            # a stream taking the site starts its own time, usually in the past.
            if owner is not None:
                entry.last = -math.inf
            entry.owner = owner_id
        value = wall if owner is None else self._extrapolate(owner, mono)
        if value < entry.last:
            value = entry.last
        entry.last = value
        return value


def announce(
    stream: str,
    sites: Iterable[str],
    sim: float,
    speed: float | None,
    *,
    every: float = DEFAULT_EVERY,
    wall: float | None = None,
    state: Literal["running", "stopped"] = RUNNING,
    plan: StreamPlan | None = None,
) -> ClockAnnouncement:
    """Build an announcement (``speed`` None, i.e. as fast as possible, is announced as 0)."""
    return ClockAnnouncement(
        stream,
        float(sim),
        time.time() if wall is None else float(wall),
        0.0 if speed is None else float(speed),
        state,
        tuple(dict.fromkeys(sites)),
        every,
        plan,
    )
