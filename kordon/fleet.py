"""The fleet file: sites, their devices, device parameters and the power topology.

The simulators build their device models from it and the alert engine reads it for topology
(which UPS feeds which scanner, which sites share an outage queue), so it lives in the kernel.
Parameters describe the hardware, so every one has a default that matches common equipment:
an operator lists devices first and tunes numbers later.

Errors name the file, the line and the dotted key, because the person who reads them is editing
YAML by hand::

    fleet.yaml:41: sites.chop.devices.scanner-2.fed_by: no UPS 'ups-9' at site 'chop'

Power topology, per site::

    grid ──┐
           ├─ ATS ── site AC bus ─┬─ UPS ── scanners / radios with ``fed_by: <ups id>``
    generator ┘                   └─ scanners / radios with ``fed_by: site``

A mobile scanner with ``fed_by: generator`` runs from its own generator (``generator:`` block).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kordon.durations import Duration
from kordon.model.kinds import DeviceKind
from kordon.model.topics import NAME_PATTERN

SITE_FEED = "site"
OWN_GENERATOR_FEED = "generator"


class FleetError(ValueError):
    """A fleet (or scenario) file that cannot be used. The message names file, line and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeneratorParams(_Model):
    """A diesel generator behind an automatic transfer switch (ATS)."""

    start_delay: Duration = Field(10.0, description="grid loss to generator on the bus")
    start_failure_probability: float = Field(0.02, ge=0, le=1)
    fuel: Duration = Field(8 * 3600.0, description="runtime on a full tank")
    retransfer_delay: Duration = Field(60.0, description="grid stable this long before ATS")
    voltage: float = 228.0
    frequency: float = 50.0


class GridParams(_Model):
    voltage: float = Field(230.0, gt=0)
    frequency: float = Field(50.0, gt=0)


class _Device(_Model):
    interval: Duration = Field(10.0, gt=0, description="telemetry interval")
    keepalive: Duration = Field(30.0, gt=0, description="MQTT keep-alive of the device")
    model: str = ""


class RatedRuntime(_Model):
    """One point of the datasheet's runtime table: a new battery at 25 °C, from full."""

    load: float = Field(gt=0, le=150, description="% of rated power")
    runtime: Duration = Field(gt=0, description="time from full to empty at that load")


class UpsParams(_Device):
    """An online double-conversion UPS. Defaults: a 3 kVA unit fitted to the Liebert GXT3 table.

    Battery learning (docs/alerts.md, ReplaceBattery): ``rated_runtime`` seeds the runtime curve
    (two points fix NUT's power law; none: the UPS's own runtime table, read from what it
    reports); ``replace_battery_below`` is the health line; ``autonomy`` overrides the site's;
    evidence from before ``battery_installed`` is the old battery's and is not used.
    """

    kind: Literal["ups"] = "ups"
    rated_power_w: float = Field(2700.0, gt=0)
    battery_wh: float = Field(900.0, gt=0, description="nameplate energy at the 20-hour rate")
    blocks: int = Field(6, ge=1, description="12 V blocks in series")
    peukert: float = Field(1.15, ge=1.0, le=1.5)
    efficiency: float = Field(0.90, gt=0, le=1)
    idle_w: float | None = Field(None, ge=0, description="inverter losses; default 2.6 % of rated")
    base_load_w: float = Field(0.0, ge=0, description="load of equipment not in the fleet")
    battery_health: float = Field(1.0, gt=0, le=1.2, description="capacity left vs nameplate")
    charge_low: float = Field(20.0, ge=0, le=100, description="battery.charge.low, %")
    runtime_low: Duration = Field(180.0, description="battery.runtime.low")
    recharge_ratio: float = Field(10.0, gt=0, description="recharge time / discharge time")
    indoor: bool = Field(True, description="battery at indoor temperature, else outdoor")
    firmware_rb: bool = Field(
        True,
        description="the firmware's self-test flags RB below 60 % capacity (false: it never "
        "does, as on units whose self-test is off)",
    )
    rated_runtime: list[RatedRuntime] = Field(
        default_factory=list, max_length=2, description="datasheet runtime at one or two loads"
    )
    replace_battery_below: float = Field(
        80.0, gt=0, le=100,
        description="learned health (% of rated capacity) that calls for a new battery",
    )
    autonomy: Duration | None = Field(
        None, description="runtime this UPS must give at its load; default the site's"
    )
    battery_installed: date | None = Field(None, description="when the battery was fitted")
    fed_by: str = SITE_FEED

    @property
    def inverter_idle_w(self) -> float:
        return self.idle_w if self.idle_w is not None else 0.026 * self.rated_power_w


class ScannerPower(_Model):
    """Power draw per state, W. Assumed for a 6 MeV linac gantry; see docs/simulators.md.

    ``off`` draws nothing from the feed (and is not a key: YAML 1.1 reads ``off`` as false).
    """

    self_test: float = 4000.0
    warmup: float = 18000.0
    ready: float = 9000.0
    scanning: float = 28000.0
    fault: float = 3000.0
    estop: float = 2000.0


class ScannerParams(_Device):
    kind: Literal["scanner"] = "scanner"
    mobile: bool = False
    fed_by: str = SITE_FEED
    generator: GeneratorParams | None = Field(None, description="own generator (fed_by: generator)")
    self_test: Duration = Field(120.0, description="power-on self-test")
    warmup: Duration = Field(15 * 60.0, le=30 * 60.0, description="X-ray source warm-up")
    scans_per_hour: float = Field(30.0, ge=0, description="vehicles per hour at peak")
    scan_duration: Duration = Field(60.0, gt=0)
    power: ScannerPower = ScannerPower()
    mtbf: Duration = Field(500 * 3600.0, gt=0, description="mean time between random faults")
    repair: Duration = Field(45 * 60.0, description="mean time a random fault lasts")
    holdup: Duration = Field(
        300.0, description="control PC on its internal battery before a clean shutdown"
    )


class RadioParams(_Device):
    """A radio base station with its DC plant (rectifier and battery)."""

    kind: Literal["radio"] = "radio"
    plant_voltage: Literal[13.6, 48.0] = 13.6
    battery_ah: float = Field(100.0, gt=0)
    battery_health: float = Field(1.0, gt=0, le=1.2)
    peukert: float = Field(1.2, ge=1.0, le=1.5)
    standby_a: float | None = Field(None, ge=0, description="default 1 A at 13.6 V")
    tx_a: float | None = Field(None, ge=0, description="default 11 A at 13.6 V")
    tx_power_w: float = Field(25.0, gt=0, description="RF output at full power")
    terminals: int = Field(40, ge=0, description="terminals registered at peak")
    recharge_hours: float = Field(10.0, gt=0)
    fed_by: str = SITE_FEED

    @property
    def blocks(self) -> int:
        return 1 if self.plant_voltage == 13.6 else 4

    @property
    def standby_current(self) -> float:
        return self.standby_a if self.standby_a is not None else 13.6 / self.plant_voltage

    @property
    def tx_current(self) -> float:
        return self.tx_a if self.tx_a is not None else 11.0 * 13.6 / self.plant_voltage


DeviceParams = Annotated[UpsParams | ScannerParams | RadioParams, Field(discriminator="kind")]


class ScheduleSourceParams(_Model):
    """Where an outage schedule is published (fleet ``schedules:``; docs/schedules.md)."""

    url: str = Field(
        description="http(s):// URL, or a file path (relative to the fleet file's folder)"
    )
    format: Literal["auto", "json", "hourly", "ical"] = "auto"
    refresh: Duration = Field(900.0, gt=0, description="how often the source is read again")
    max_age: Duration = Field(
        6 * 3600.0, gt=0, description="no good read for this long: the schedule is unknown"
    )
    group: str | None = Field(None, description="the group of a one-group feed (iCalendar)")
    timezone: str | None = Field(None, description="the schedule's zone; default the fleet's")


class SiteSchedule(_Model):
    """A site's place in an outage schedule: which source, which queue group."""

    source: str = Field(description="a name under the fleet's schedules:")
    group: str | None = Field(None, description="queue group, e.g. '3.1'; default the queue")


class Site(_Model):
    title: str = ""
    queue: int = Field(1, ge=1, le=12, description="rolling-outage queue of the site's feeder")
    ambient_c: float = Field(5.0, description="outdoor temperature")
    indoor_c: float = Field(22.0, description="equipment room temperature")
    grid: GridParams = GridParams()
    generator: GeneratorParams | None = None
    schedule: SiteSchedule | None = Field(
        None, description="outage-schedule source and group; none: the schedule is unknown"
    )
    autonomy: Duration | None = Field(
        None, description="runtime the site's UPS units must give at their load (e.g. 30m "
        "for scanners); default none required"
    )
    devices: dict[str, DeviceParams] = Field(default_factory=dict)

    @property
    def schedule_group(self) -> str:
        """The site's queue group in its schedule: ``schedule.group``, else the queue."""
        if self.schedule is not None and self.schedule.group:
            return self.schedule.group
        return str(self.queue)

    @field_validator("devices")
    @classmethod
    def _device_names(cls, devices: dict[str, Any]) -> dict[str, Any]:
        for name in devices:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"device name {name!r} does not match {NAME_PATTERN.pattern}")
        return devices


class Fleet(_Model):
    name: str = "fleet"
    timezone: str = "Europe/Kyiv"
    schedules: dict[str, ScheduleSourceParams] = Field(
        default_factory=dict, description="outage-schedule sources the sites refer to"
    )
    sites: dict[str, Site]

    @field_validator("sites")
    @classmethod
    def _site_names(cls, sites: dict[str, Site]) -> dict[str, Site]:
        if not sites:
            raise ValueError("a fleet needs at least one site")
        for name in sites:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"site name {name!r} does not match {NAME_PATTERN.pattern}")
        return sites

    @model_validator(mode="after")
    def _topology(self) -> Fleet:
        for site_name, site in self.sites.items():
            for device_name, device in site.devices.items():
                _check_feed(site_name, site, device_name, device)
            if site.schedule is not None and site.schedule.source not in self.schedules:
                known = ", ".join(self.schedules) or "none declared under schedules:"
                raise ValueError(
                    f"sites.{site_name}.schedule.source: no schedule source "
                    f"{site.schedule.source!r}; the fleet's sources: {known}"
                )
        return self

    def devices(self) -> Iterator[DeviceEntry]:
        """Every device in file order."""
        for site_name, site in self.sites.items():
            for device_name, params in site.devices.items():
                yield DeviceEntry(site_name, device_name, DeviceKind(params.kind), params)

    def fed_by(self, site: str, device: str) -> str:
        """``site``, ``generator`` or the name of the UPS that feeds the device."""
        return self.sites[site].devices[device].fed_by

    def fed_devices(self, site: str, ups: str) -> list[str]:
        """Devices whose power comes through the UPS: what goes dark when it runs flat."""
        return [name for name, p in self.sites[site].devices.items() if p.fed_by == ups]

    def autonomy(self, site: str, device: str) -> float | None:
        """Runtime the UPS must give at its load (its own override, else its site's)."""
        site_conf = self.sites.get(site)
        if site_conf is None:
            return None
        params = site_conf.devices.get(device)
        if isinstance(params, UpsParams) and params.autonomy is not None:
            return params.autonomy
        return site_conf.autonomy

    def sites_in_queue(self, queue: int) -> list[str]:
        return [name for name, site in self.sites.items() if site.queue == queue]


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    site: str
    device: str
    kind: DeviceKind
    params: UpsParams | ScannerParams | RadioParams


class _FeedError(ValueError):
    pass


def _check_feed(site_name: str, site: Site, device_name: str, device: Any) -> None:
    feed = device.fed_by
    where = f"sites.{site_name}.devices.{device_name}.fed_by"
    if isinstance(device, UpsParams):
        if feed != SITE_FEED:
            raise ValueError(f"{where}: a UPS is fed by 'site' (the grid/generator bus)")
        return
    if feed == SITE_FEED:
        return
    if feed == OWN_GENERATOR_FEED:
        if not isinstance(device, ScannerParams) or device.generator is None:
            raise ValueError(
                f"{where}: 'generator' needs a scanner with its own generator: block "
                "(or use 'site' for the site's generator)"
            )
        return
    target = site.devices.get(feed)
    if not isinstance(target, UpsParams):
        ups = [n for n, d in site.devices.items() if isinstance(d, UpsParams)]
        raise ValueError(
            f"{where}: no UPS {feed!r} at site {site_name!r}; use 'site', 'generator' or one of "
            f"{ups or 'the UPS units of the site (none declared)'}"
        )


# --------------------------------------------------------------------------- YAML with lines


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed YAML plus its node tree, so validation errors can point at a line."""

    path: str
    data: Any
    root: yaml.Node | None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the deepest key of ``loc`` present in the file."""
        node, line = self.root, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        node, line = value, key.start_mark.line + 1
                        break
                # a part not in the file (a union tag, a default) leaves the node as it is
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                node = node.value[part]
                line = node.start_mark.line + 1
        if line is None and self.root is not None:
            line = self.root.start_mark.line + 1
        return line

    def error(self, loc: Sequence[str | int], message: str) -> FleetError:
        line = self.line_of(loc)
        key = ".".join(str(part) for part in loc) or "(top level)"
        return FleetError(f"{self.path}:{line}: {key}: {message}")


def read_yaml(path: str | Path, text: str | None = None) -> YamlDocument:
    """Read a YAML file; refuse duplicate keys, which PyYAML would silently overwrite."""
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FleetError(f"{name}: cannot read: {exc.strerror}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else "?"
        raise FleetError(f"{name}:{line}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise FleetError(f"{name}: not valid YAML: {exc}") from None
    if root is not None:
        _refuse_duplicate_keys(name, root)
    return YamlDocument(name, data, root)


def _refuse_duplicate_keys(name: str, root: yaml.Node) -> None:
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise FleetError(
                            f"{name}:{line}: {key.value}: duplicate key "
                            f"(first on line {seen[key.value]})"
                        )
                    seen[key.value] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def describe_validation(document: YamlDocument, exc: ValidationError) -> FleetError:
    """One line per problem: ``file:line: dotted.key: message``."""
    lines = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if part not in _UNION_TAGS]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against docs/simulators.md"
        elif error["type"] == "union_tag_invalid":
            message = "kind must be ups, scanner or radio"
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(str(document.error(loc, message)))
    return FleetError("\n".join(lines))


_UNION_TAGS = frozenset(kind.value for kind in DeviceKind)


def parse_fleet(document: YamlDocument) -> Fleet:
    if not isinstance(document.data, Mapping):
        raise document.error([], "a fleet file is a mapping with a sites: key")
    try:
        return Fleet.model_validate(document.data)
    except ValidationError as exc:
        raise _with_topology_lines(document, exc) from None


def _with_topology_lines(document: YamlDocument, exc: ValidationError) -> FleetError:
    """Topology errors are raised at the top level; point them at the offending key."""
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        head, sep, rest = message.partition(": ")
        if sep and head.startswith("sites.") and not error["loc"]:
            loc: list[str | int] = head.split(".")
            # device names may contain dots; fall back to the line of the site then
            return document.error(loc, rest)
    return describe_validation(document, exc)


def load_fleet(path: str | Path) -> Fleet:
    """Load and validate a fleet file. Raises :class:`FleetError` naming line and key."""
    return parse_fleet(read_yaml(path))


def device_names(fleet: Fleet, kinds: Iterable[DeviceKind] | None = None) -> list[str]:
    wanted = set(kinds) if kinds is not None else set(DeviceKind)
    return [f"{e.site}/{e.device}" for e in fleet.devices() if e.kind in wanted]
