"""Current state of every device, held in memory so the board and ``GET /devices`` are fast.

Two sources feed it. The telemetry store (InfluxDB, or SQLite in the demo) is read at start
and every ``api.refresh_interval`` (the latest point of every series and the latest
availability), so the API is right even if it missed messages. Between reads, the live MQTT
follower (:mod:`api.live`) applies readings as devices send them, so the board reacts to a
power cut within a second rather than at the next read. Both merge per metric by timestamp,
so an older value never overwrites a newer one whichever arrives last.

Each device is judged on its site's clock (:class:`~kordon.streamclock.StreamClocks`, fed by
the live follower): the wall clock for real devices, the scenario clock of the stream that
announced the site while one plays (``kordon simulate``, ``replay``, ``demo``), so a replayed
device that reported a scenario second ago is online and "last reading just now", not
"16 h ago". A stream's clock is extrapolated between announcements and its readings cross the
broker in wall time, so silence on a stream is allowed ``STREAM_GRACE`` wall seconds times its
speed on top of the usual limit.

The response for the full device list is built once per change (at most every
``_REBUILD_EVERY`` seconds) and shared by all readers: with 5,000 devices, rebuilding it per
request would cost more than the 50 ms budget of the endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from api.battery import learned_tte
from kordon.clock import Clock
from kordon.fleet import Fleet
from kordon.model.kinds import DeviceKind
from kordon.model.nut import figure
from kordon.model.payload import FieldValue, Reading
from kordon.storage.telemetry import TelemetryStore
from kordon.streamclock import StreamClocks

DEFAULT_INTERVAL = 10.0  # seconds between readings of a device that is not in the fleet file
_REBUILD_EVERY = 0.5
_STALE_SNAPSHOT = 5.0
# Wall seconds of delay a stream's readings may show before their device counts as silent:
# a stream's clock is extrapolated between announcements (every second) and runs ahead of a
# publisher that falls behind until the next one; readings cross broker and follower in wall
# time. At 300x this is 15 scenario minutes: a device that stops is silent after 3 s.
STREAM_GRACE = 3.0


def clock_view(now: float, stream: str | None, speed: float) -> dict[str, Any]:
    """A site's clock as the API shows it (``SiteClock`` in api/schemas.py)."""
    return {
        "source": "stream" if stream is not None else "wall",
        "stream": stream,
        "now": iso(now),
        "speed": speed,
    }


def iso(ts: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC with millisecond precision (or None)."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class DeviceState:
    site: str
    device: str
    kind: DeviceKind
    in_fleet: bool = False
    interval: float = DEFAULT_INTERVAL
    fed_by: str | None = None
    model: str = ""
    values: dict[str, FieldValue] = field(default_factory=dict)
    value_ns: dict[str, int] = field(default_factory=dict)
    last_seen_ns: int | None = None
    availability: str | None = None
    availability_ns: int = 0

    @property
    def id(self) -> str:
        return f"{self.site}:{self.device}"

    def merge(self, ts_ns: int, fields: dict[str, Any]) -> bool:
        """Take the fields newer than what we hold; return whether anything changed."""
        changed = False
        for name, value in fields.items():
            if value is None or name == "seq":
                continue
            if ts_ns >= self.value_ns.get(name, -1):
                if self.values.get(name) != value:
                    changed = True
                self.values[name] = value
                self.value_ns[name] = ts_ns
        if self.last_seen_ns is None or ts_ns > self.last_seen_ns:
            self.last_seen_ns = ts_ns
            changed = True
        return changed

    def power_source(self) -> str | None:
        """``mains``, ``battery``, ``ups``, ``generator`` or ``none`` (None: not reported)."""
        if self.kind is DeviceKind.UPS:
            flags = str(self.values.get("ups.status", "")).split()
            if "OFF" in flags:
                return "none"
            if "OB" in flags:
                return "battery"
            if "OL" in flags or "BYPASS" in flags:
                return "mains"
            return None
        source = self.values.get("power.source")
        return str(source) if source is not None else None

    def state(self, now: float, offline_after: float, grace: float = 0.0) -> str:
        """``online``, ``offline``, ``stale`` (silent too long) or ``unknown`` (never heard).
        ``now`` is the site's time; ``grace`` extra seconds of silence allowed (streams)."""
        if self.availability == "offline" and (
            self.last_seen_ns is None or self.availability_ns >= self.last_seen_ns
        ):
            return "offline"
        if self.last_seen_ns is None:
            return "online" if self.availability == "online" else "unknown"
        silent = now - self.last_seen_ns / 1e9
        if silent > max(offline_after * self.interval, 30.0) + grace:
            return "stale"
        return "online"

    def time_to_empty(self) -> float | None:
        """Seconds of battery left as the UPS predicts it (``battery.runtime``), if on battery
        or reported at all; radios report charge only."""
        return figure("battery.runtime", self.values.get("battery.runtime"))

    def view(
        self,
        now: float,
        offline_after: float,
        grace: float = 0.0,
        clock: dict[str, Any] | None = None,
        learned_tte: float | None = None,
    ) -> dict[str, Any]:
        """``learned_tte``: time to empty by the learned battery curve (api/battery.py),
        shown instead of the UPS's own when on battery and more pessimistic."""
        charge = self.values.get("battery.charge")
        tte, tte_source = self.time_to_empty(), "ups"
        if learned_tte is not None and self.power_source() == "battery" and (
            tte is None or learned_tte < tte
        ):
            tte, tte_source = learned_tte, "learned"
        status = self.values.get("ups.status")
        return {
            "id": self.id,
            "site": self.site,
            "device": self.device,
            "kind": self.kind.value,
            "model": self.model,
            "in_fleet": self.in_fleet,
            "state": self.state(now, offline_after, grace),
            "availability": self.availability,
            "last_seen": iso(self.last_seen_ns / 1e9) if self.last_seen_ns else None,
            "power_source": self.power_source(),
            "fed_by": self.fed_by,
            "battery_charge": figure("battery.charge", charge),
            "time_to_empty": tte,
            "time_to_empty_source": tte_source if tte is not None else None,
            "ups_status": str(status) if status is not None else None,
            "clock": clock if clock is not None else clock_view(now, None, 1.0),
        }


_SITE_POWER_TEXT = {
    "grid": "On grid",
    "generator": "On generator",
    "ups": "On UPS battery",
    "dark": "Dark: no power",
    "unknown": "No recent data",
}


class DeviceStates:
    """Every device the API knows: from the fleet file, the telemetry store and the live
    stream."""

    def __init__(
        self,
        clock: Clock,
        fleet: Fleet | None,
        offline_after: float = 3.0,
        clocks: StreamClocks | None = None,
    ) -> None:
        self.clock = clock
        # Every site's time: the wall clock, or the scenario clock of a live stream.
        self.clocks = clocks if clocks is not None else StreamClocks(wall=clock)
        self.fleet = fleet
        self.offline_after = offline_after
        # (site, device) -> the learned battery model (api/battery.py); set by the role.
        self.learned: Callable[[str, str], Mapping[str, Any] | None] | None = None
        self._devices: dict[tuple[str, str], DeviceState] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._built_version = -1
        self._built_at = 0.0
        self._views: list[dict[str, Any]] = []
        self._encoded = b"[]"
        self._build_lock = threading.Lock()
        self._by_id: dict[str, dict[str, Any]] = {}
        self._names: dict[str, list[str]] = {}
        self.last_refresh: float | None = None
        self.last_refresh_error: str | None = None
        if fleet is not None:
            for entry in fleet.devices():
                self._devices[(entry.site, entry.device)] = DeviceState(
                    entry.site,
                    entry.device,
                    entry.kind,
                    in_fleet=True,
                    interval=entry.params.interval,
                    fed_by=entry.params.fed_by,
                    model=entry.params.model,
                )

    # --- writers --------------------------------------------------------------------------
    def _get(self, site: str, kind: DeviceKind, device: str) -> DeviceState:
        state = self._devices.get((site, device))
        if state is None:
            state = DeviceState(site, device, kind)
            self._devices[(site, device)] = state
        return state

    def apply_readings(
        self, site: str, kind: DeviceKind, device: str, readings: Iterable[Reading]
    ) -> None:
        with self._lock:
            state = self._get(site, kind, device)
            for reading in readings:
                if state.merge(reading.ts_ns, reading.fields):
                    self._version += 1

    def apply_availability(
        self, site: str, kind: DeviceKind, device: str, value: str, ts_ns: int
    ) -> None:
        with self._lock:
            state = self._get(site, kind, device)
            if ts_ns >= state.availability_ns:
                if state.availability != value:
                    self._version += 1
                state.availability = value
                state.availability_ns = ts_ns

    def refresh(self, store: TelemetryStore, lookback: float) -> None:
        """Read the latest point of every series and the latest availability from the store."""
        # A stream's sites live in its scenario time, often hours or days back.
        oldest = min(
            [self.clock.now()]
            + [s["sim"] for s in self.clocks.streams() if s["state"] != "stopped"]
        )
        since_ns = int((oldest - lookback) * 1e9)
        points = [
            (kind, point) for kind in DeviceKind for point in store.latest(kind.value, since_ns)
        ]
        statuses = store.statuses(since_ns)
        with self._lock:
            for kind, point in points:
                state = self._get(point.site, kind, point.device)
                # The latest point gives the time a device was last heard; the last values
                # fill in fields it did not carry (a device may send some metrics only when
                # they change), where we have none: their times are unknown.
                for name, value in point.last_values.items():
                    if name != "seq" and name not in state.values:
                        state.values[name] = value
                        state.value_ns[name] = 0
                        self._version += 1
                if state.merge(point.ts_ns, dict(point.fields)):
                    self._version += 1
        for status in statuses:
            try:
                kind = DeviceKind(status.kind)
            except ValueError:
                continue
            self.apply_availability(status.site, kind, status.device, status.state, status.ts_ns)
        self.last_refresh = time.monotonic()

    # --- readers --------------------------------------------------------------------------
    def site_clock(self, site: str) -> tuple[float, str | None, float]:
        """``(now, stream, speed)``: the site's time and the stream it follows (None: wall)."""
        return self.clocks.site_clock(site)

    def clock_of(self, site: str) -> dict[str, Any]:
        """The site's clock as the API shows it, at this instant."""
        return clock_view(*self.site_clock(site))

    def rebuild(self, force: bool = False) -> None:
        """Build the shared snapshot if anything changed. The role calls this every
        ``_REBUILD_EVERY`` seconds from a thread of its own, so requests never pay for it."""
        with self._build_lock:
            now_mono = time.monotonic()
            if (
                not force
                and self._built_version == self._version
                and (now_mono - self._built_at < _REBUILD_EVERY)
            ):
                return
            with self._lock:
                version = self._version
                states = sorted(self._devices.values(), key=lambda s: (s.site, s.kind, s.device))
            # Each site judged on its own clock, read once per snapshot.
            clocks: dict[str, tuple[float, float, dict[str, Any]]] = {}
            for site in {s.site for s in states}:
                now, stream, speed = self.site_clock(site)
                grace = STREAM_GRACE * speed if stream is not None else 0.0
                clocks[site] = (now, grace, clock_view(now, stream, speed))
            offline_after = self.offline_after
            with self._lock:
                views = []
                for s in states:
                    now, grace, clock = clocks[s.site]
                    views.append(s.view(now, offline_after, grace, clock, self._learned_tte(s)))
            by_id = {v["id"]: v for v in views}
            names: dict[str, list[str]] = {}
            for v in views:
                names.setdefault(v["device"], []).append(v["id"])
            encoded = orjson.dumps(views)
            self._views, self._by_id, self._names, self._encoded = views, by_id, names, encoded
            self._built_version, self._built_at = version, now_mono

    def _learned_tte(self, state: DeviceState) -> float | None:
        if self.learned is None or state.kind is not DeviceKind.UPS:
            return None
        return learned_tte(self.learned(state.site, state.device), state.values)

    def _fresh(self) -> None:
        # Safety net for callers without the rebuilding thread (and the first request).
        if time.monotonic() - self._built_at > _STALE_SNAPSHOT:
            self.rebuild()

    def views(self) -> list[dict[str, Any]]:
        """Every device's view, sorted by site, kind and name. Shared: do not modify."""
        self._fresh()
        return self._views

    def encoded_views(self) -> bytes:
        """:meth:`views` as JSON, encoded once per snapshot."""
        self._fresh()
        return self._encoded

    def resolve(self, ident: str) -> list[str]:
        """Device ids matching ``site:device`` or a bare device name."""
        self._fresh()
        if ident in self._by_id:
            return [ident]
        return list(self._names.get(ident, []))

    def view(self, device_id: str) -> dict[str, Any] | None:
        self._fresh()
        return self._by_id.get(device_id)

    def detail(self, device_id: str) -> tuple[DeviceState, dict[str, Any]] | None:
        site, _, device = device_id.partition(":")
        with self._lock:
            state = self._devices.get((site, device))
            if state is None:
                return None
            values = dict(state.values)
            times = dict(state.value_ns)
        latest = {
            name: {"value": value, "time": iso(times[name] / 1e9) if times.get(name) else None}
            for name, value in sorted(values.items())
        }
        return state, latest

    def sites(self) -> list[dict[str, Any]]:
        """One summary per site: how it is powered, its UPS reserve, its devices' states."""
        by_site: dict[str, list[dict[str, Any]]] = {}
        for view in self.views():
            by_site.setdefault(view["site"], []).append(view)
        names = list(self.fleet.sites) if self.fleet is not None else []
        names += sorted(name for name in by_site if name not in set(names))
        return [self._site(name, by_site.get(name, [])) for name in names]

    def _site(self, name: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
        counts = {"total": len(devices), "online": 0, "offline": 0, "stale": 0, "unknown": 0}
        for device in devices:
            counts[device["state"]] += 1
        ups = [d for d in devices if d["kind"] == "ups" and d["state"] == "online"]
        charges = [d["battery_charge"] for d in ups if d["battery_charge"] is not None]
        on_battery = [d for d in ups if d["power_source"] == "battery"]
        runtimes = [d["time_to_empty"] for d in on_battery if d["time_to_empty"] is not None]
        power = _site_power(devices)
        site = self.fleet.sites.get(name) if self.fleet is not None else None
        return {
            "site": name,
            "title": site.title if site is not None else "",
            "clock": self.clock_of(name),
            "in_fleet": site is not None,
            "power": power,
            "power_text": _SITE_POWER_TEXT[power],
            "devices": counts,
            "ups": {
                "total": sum(1 for d in devices if d["kind"] == "ups"),
                "on_battery": len(on_battery),
                "min_charge": min(charges) if charges else None,
                "min_time_to_empty": min(runtimes) if runtimes else None,
            },
        }


def _site_power(devices: list[dict[str, Any]]) -> str:
    # A mobile scanner on its own generator says nothing about the site's supply.
    live = [
        d
        for d in devices
        if d["state"] == "online" and d["power_source"] is not None and d["fed_by"] != "generator"
    ]
    if not live:
        heard = any(d["state"] != "unknown" for d in devices)
        return "dark" if heard and all(d["state"] == "offline" for d in devices) else "unknown"
    sources = {d["power_source"] for d in live}
    if sources <= {"none"}:
        return "dark"
    if sources & {"battery", "ups"}:
        return "ups"
    if "generator" in sources:
        return "generator"
    return "grid"
