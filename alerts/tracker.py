"""What the engine knows about every device and site, fed by decoded readings and status.

The state is derived: after a restart it is rebuilt from the retained status messages and
fresh telemetry, so nothing here is persisted except the list of devices ever seen (so a
device that died while the engine was down is still noticed as silent).

Silence detection must not cost a pass over 100,000 devices per tick. Devices with the same
silence timeout sit in one ``OrderedDict`` ordered by last receipt (moved to the end on each
reading, O(1)), so a sweep only looks at the front of each and stops at the first device
that is still fresh: the cost is the number of devices that just went silent.

A device's ``last_seen`` is in its site's time (the wall clock, or the scenario clock of the
stream that plays the site: :mod:`kordon.streamclock`), so the buckets are also split by that
time base (``clock``: the stream id, None for the wall clock) and each is swept on its own
time. A site that changes its time base is dropped (:meth:`DeviceTracker.drop_site`) and its
devices come back, on the new base, when they publish again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from alerts.depletion import DischargeHistory
from kordon.fleet import OWN_GENERATOR_FEED, SITE_FEED, Fleet
from kordon.model.kinds import DeviceKind
from kordon.model.nut import figure

UPS, SCANNER, RADIO = DeviceKind.UPS, DeviceKind.SCANNER, DeviceKind.RADIO


class DeviceState:
    """One device. ``__slots__`` keeps it near 300 bytes (see bench/alerts.py)."""

    __slots__ = (
        "battery_since",
        "charge",
        "charging",
        "clock",
        "dark_at",
        "dark_end",
        "device",
        "eta",
        "fed_by",
        "grid_ok",
        "has_data",
        "history",
        "input_voltage",
        "interval",
        "kind",
        "last_seen",
        "lb_at",
        "lb_flag",
        "mains_at",
        "on_battery",
        "output_off",
        "power_source",
        "rate",
        "runtime",
        "seen_mains",
        "silent",
        "site",
        "timeout",
        "will_offline",
    )

    def __init__(self, site: str, kind: DeviceKind, device: str, fed_by: str | None) -> None:
        self.site = site
        self.kind = kind
        self.device = device
        self.fed_by = fed_by  # fleet topology; None when the device is not in the fleet file
        self.clock: str | None = None  # the stream whose time the site follows (None: wall)
        self.interval: float | None = None
        self.timeout = 0.0
        self.last_seen = 0.0
        self.silent = False
        self.will_offline = False
        self.on_battery = False  # UPS OB, radio on battery, scanner on its UPS
        self.grid_ok: bool | None = None  # what this device says about the site's grid
        self.seen_mains = False
        self.charging = False
        self.lb_flag = False
        self.output_off = False  # UPS "OFF": its output is off (ran flat, or switched off)
        self.charge: float | None = None
        self.runtime: float | None = None
        self.input_voltage: float | None = None
        self.power_source: str | None = None
        self.history: DischargeHistory | None = None
        self.has_data = False  # telemetry since the engine started: power rules may judge
        self.eta: float | None = None  # seconds to empty, from the fit
        self.rate: float | None = None  # %/min
        # What happened to its power, in event time (alerts.incident tells the story):
        self.battery_since: float | None = None  # start of the current or last discharge
        self.mains_at: float | None = None  # power back after that discharge
        self.lb_at: float | None = None  # first LB flag of that discharge
        self.dark_at: float | None = None  # it stopped for lack of power (UPS ran flat, ...)
        self.dark_end: float | None = None  # power back after that

    @property
    def dark(self) -> bool:
        """Out of power now: its own report (UPS ran flat, scanner unpowered) or silence
        while its power was failing."""
        return self.dark_at is not None and self.dark_end is None

    def picture(self) -> tuple[object, ...]:
        """What a site's incident text depends on, apart from running numbers: a change
        re-evaluates the site at once."""
        return (self.offline, self.grid_ok, self.on_battery, self.lb_flag, self.dark)

    @property
    def offline(self) -> bool:
        return self.silent or self.will_offline

    @property
    def name(self) -> str:
        return f"{self.site}/{self.device}"

    def apply(self, fields: dict[str, object]) -> None:
        """Take one reading's metrics (already validated by the kernel's decoder)."""
        self.has_data = True
        kind = self.kind
        if kind is UPS:
            status = fields.get("ups.status")
            if isinstance(status, str):
                flags = status.split()
                self.on_battery = "OB" in flags
                self.lb_flag = "LB" in flags
                self.output_off = "OFF" in flags
                self.charging = "CHRG" in flags or ("OL" in flags and "DISCHRG" not in flags)
                self.grid_ok = not self.on_battery
                if not self.on_battery:
                    self.seen_mains = True
            # A sentinel (65535 s, a negative runtime) is the unit saying "unknown": it
            # replaces the previous estimate rather than standing as a figure.
            if "battery.runtime" in fields:
                self.runtime = figure("battery.runtime", fields["battery.runtime"])
            if "input.voltage" in fields:
                self.input_voltage = figure("input.voltage", fields["input.voltage"])
        else:
            source = fields.get("power.source")
            if isinstance(source, str):
                self.power_source = source
                if source == "mains":
                    self.seen_mains = True
                    self.grid_ok = True
                elif source == "generator":
                    # A mobile scanner lives on its own generator: that says nothing about
                    # the grid. A site-fed device on generator means the grid is gone.
                    own = self.fed_by == OWN_GENERATOR_FEED
                    self.grid_ok = None if own or not (self.fed_by or self.seen_mains) else False
                else:  # battery, ups, none
                    self.grid_ok = False
                self.on_battery = source in ("battery", "ups")
                self.charging = source == "mains"
        if "battery.charge" in fields:
            self.charge = figure("battery.charge", fields["battery.charge"])


@dataclass(slots=True)
class SiteState:
    name: str
    devices: dict[str, DeviceState] = field(default_factory=dict)
    has_generator: bool | None = None

    def power_counts(self) -> tuple[int, int]:
        """(sensors that say anything about the grid, of which show it lost)."""
        sensors = lost = 0
        for state in self.devices.values():
            if state.grid_ok is None:
                continue
            sensors += 1
            if not state.grid_ok:
                lost += 1
        return sensors, lost

    def offline_count(self) -> int:
        return sum(1 for state in self.devices.values() if state.offline)


class DeviceTracker:
    """Every device and site, plus the silence sweep."""

    def __init__(self, fleet: Fleet | None) -> None:
        self.fleet = fleet
        self.devices: dict[tuple[str, str], DeviceState] = {}
        self.sites: dict[str, SiteState] = {}
        self._buckets: dict[
            tuple[float, str | None], OrderedDict[tuple[str, str], DeviceState]
        ] = {}
        self.new_devices: list[DeviceState] = []  # to remember in the store

    def get(self, site: str, device: str) -> DeviceState | None:
        return self.devices.get((site, device))

    def ensure(
        self,
        site: str,
        kind: DeviceKind,
        device: str,
        now: float,
        timeout_of: Callable[[DeviceState], float],
        clock: str | None = None,
    ) -> DeviceState:
        key = (site, device)
        state = self.devices.get(key)
        if state is not None:
            return state
        fed_by = None
        interval = None
        site_state = self.sites.get(site)
        if site_state is None:
            site_state = self.sites[site] = SiteState(site)
        if self.fleet is not None and site in self.fleet.sites:
            site_conf = self.fleet.sites[site]
            site_state.has_generator = site_conf.generator is not None
            params = site_conf.devices.get(device)
            if params is not None:
                fed_by = params.fed_by
                interval = params.interval
        state = DeviceState(site, kind, device, fed_by)
        state.interval = interval
        state.timeout = timeout_of(state)
        state.clock = clock
        state.last_seen = now
        self.devices[key] = state
        site_state.devices[device] = state
        self._bucket(state.timeout, clock)[key] = state
        self.new_devices.append(state)
        return state

    def _bucket(
        self, timeout: float, clock: str | None
    ) -> OrderedDict[tuple[str, str], DeviceState]:
        bucket = self._buckets.get((timeout, clock))
        if bucket is None:
            bucket = self._buckets[(timeout, clock)] = OrderedDict()
        return bucket

    def seen(self, state: DeviceState, now: float) -> bool:
        """A reading arrived; returns True when the device was silent until now."""
        was_silent = state.silent
        state.last_seen = now
        state.silent = False
        bucket = self._bucket(state.timeout, state.clock)
        key = (state.site, state.device)
        if key in bucket:
            bucket.move_to_end(key)
        else:
            bucket[key] = state
        return was_silent

    def restore_silent(self, state: DeviceState, last_seen: float) -> None:
        """A device that was offline when the engine stopped stays offline until it reports:
        a restart is no evidence that it came back."""
        state.last_seen = min(state.last_seen, last_seen)
        state.silent = True
        bucket = self._buckets.get((state.timeout, state.clock))
        if bucket is not None:
            bucket.pop((state.site, state.device), None)

    def sweep(
        self, now: float, now_of: Callable[[str], float] | None = None
    ) -> list[DeviceState]:
        """Devices whose silence just exceeded their timeout (marked silent, taken out).

        ``now`` is the wall clock's time; ``now_of(stream)`` the time at which a stream's
        devices are judged (its scenario time less the transit allowance)."""
        gone: list[DeviceState] = []
        for (timeout, clock), bucket in self._buckets.items():
            if not bucket:
                continue
            at = now if clock is None or now_of is None else now_of(clock)
            while bucket:
                key, state = next(iter(bucket.items()))
                if state.last_seen + timeout > at:
                    break
                del bucket[key]
                state.silent = True
                gone.append(state)
        return gone

    def next_deadline(self, clock: str | None = None) -> float | None:
        """The earliest silence deadline of the devices on time base ``clock``."""
        deadline = None
        for (timeout, base), bucket in self._buckets.items():
            if bucket and base == clock:
                state = next(iter(bucket.values()))
                due = state.last_seen + timeout
                if deadline is None or due < deadline:
                    deadline = due
        return deadline

    def drop_site(self, site: str) -> list[DeviceState]:
        """Forget a site and its devices (its time base changed); returns what was dropped."""
        found = self.sites.pop(site, None)
        if found is None:
            return []
        dropped = list(found.devices.values())
        for state in dropped:
            key = (site, state.device)
            self.devices.pop(key, None)
            bucket = self._buckets.get((state.timeout, state.clock))
            if bucket is not None:
                bucket.pop(key, None)
        if dropped:
            gone = set(map(id, dropped))
            self.new_devices = [s for s in self.new_devices if id(s) not in gone]
        return dropped

    def feed_down(self, state: DeviceState) -> str | None:
        """Why ``state``'s power is gone, if it is; ``None`` when power looks fine.

        Uses the fleet topology where it knows the feed: the device's UPS on battery or dark,
        or a site-fed device while the site has no grid. Its own last report counts too:
        a device that went dark while on battery died of power.
        """
        if state.on_battery or state.grid_ok is False:
            what = "its battery" if state.kind is not SCANNER else "its UPS feed"
            return f"{state.device} was running on {what} when it went dark"
        feed = state.fed_by
        site = self.sites.get(state.site)
        if feed and feed not in (SITE_FEED, OWN_GENERATOR_FEED):
            ups = self.devices.get((state.site, feed))
            if ups is not None and (ups.on_battery or ups.lb_flag):
                charge = f" at {ups.charge:.0f}%" if ups.charge is not None else ""
                dark = " and went dark" if ups.offline else ""
                return f"its UPS {feed} was on battery{charge}{dark}"
        elif site is not None and feed != OWN_GENERATOR_FEED:
            sensors, lost = site.power_counts()
            if lost and lost * 2 >= sensors:
                return f"site {state.site} has no grid power"
        return None


