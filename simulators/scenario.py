"""Scenario files: a fleet, a seed, a duration, a timeline of events and what alerts to expect.

A timeline entry is ``{at: <duration>, <action>: {<arguments>}}``; ``at`` is counted from the
start of the scenario and every duration has a unit (``90s``, ``10m``, ``3h``). Errors name the
file, the line and the key. The ``expect`` block is kept as data for the alert engine, which
verifies it; the simulator does not interpret it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kordon.durations import parse_duration
from kordon.fleet import (
    Duration,
    Fleet,
    FleetError,
    YamlDocument,
    describe_validation,
    parse_fleet,
    read_yaml,
)
from kordon.model.rehearsal import Expectation
from kordon.schedule import Schedule, ScheduleFormatError
from kordon.schedule import parse as parse_schedule
from simulators.library import FLEETS, default_fleet_path, library


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteTarget(_Args):
    """Which sites an event hits: ``site``, ``sites``, ``queue``, ``queues`` or ``all``."""

    site: str | None = None
    sites: list[str] | None = None
    queue: int | None = None
    queues: list[int] | None = None
    all: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> SiteTarget:
        given = [self.site, self.sites, self.queue, self.queues, self.all or None]
        if sum(value is not None for value in given) != 1:
            raise ValueError("name exactly one of site, sites, queue, queues or all: true")
        return self

    def resolve(self, fleet: Fleet) -> list[str]:
        if self.all:
            return list(fleet.sites)
        if self.site is not None:
            names = [self.site]
        elif self.sites is not None:
            names = list(self.sites)
        else:
            queues = [self.queue] if self.queue is not None else list(self.queues or [])
            return [name for name, site in fleet.sites.items() if site.queue in queues]
        unknown = [name for name in names if name not in fleet.sites]
        if unknown:
            raise ValueError(f"no site {unknown[0]!r} in fleet {fleet.name!r}")
        return names


class GridDown(SiteTarget):
    for_: Duration | None = Field(None, alias="for")


class GridUp(SiteTarget):
    pass


class RollingOutages(_Args):
    """Ukrainian-style stabilisation outages: in each block some queues are switched off."""

    block: Duration = 4 * 3600.0
    queues: int = Field(6, ge=1, le=12, description="queues in the schedule")
    queues_off: list[int] = Field(default_factory=lambda: [2], description="queues off per block")
    duration: Duration | None = Field(None, description="default: to the end of the scenario")

    @field_validator("queues_off")
    @classmethod
    def _off(cls, value: list[int]) -> list[int]:
        if not value or any(not 1 <= count <= 5 for count in value):
            raise ValueError("queues_off lists how many queues are off per block: 1 to 5 each")
        return value


class GeneratorTarget(SiteTarget):
    device: str | None = Field(None, description="a mobile scanner's own generator")


class GeneratorFuel(GeneratorTarget):
    fuel: Duration | None = Field(None, description="runtime left; default a full tank")


class Temperature(SiteTarget):
    outdoor_c: float | None = None
    indoor_c: float | None = None


class DeviceTarget(_Args):
    site: str
    device: str


class DeviceFault(DeviceTarget):
    code: str = Field("HV-101", pattern=r"^[A-Za-z0-9_.:-]{1,32}$")
    for_: Duration = Field(3600.0, alias="for")


class DeviceCrash(DeviceTarget):
    restart_after: Duration = 120.0


class DeviceHang(DeviceTarget):
    for_: Duration = Field(600.0, alias="for", description="until the watchdog reboots it")


class DevicePowerOff(DeviceTarget):
    for_: Duration | None = Field(None, alias="for")


class NetworkDown(SiteTarget):
    for_: Duration | None = Field(None, alias="for")


class BackhaulDown(_Args):
    site: str
    device: str | None = Field(None, description="default: every radio at the site")
    for_: Duration | None = Field(None, alias="for")


class BackhaulUp(_Args):
    site: str
    device: str | None = None


MalformedVariant = Literal[
    "truncated_json",
    "millisecond_ts",
    "string_numbers",
    "bad_enum",
    "missing_ts",
    "not_utf8",
    "nan",
    "bad_metric_name",
    "mixed",
]


class Malformed(DeviceTarget):
    """Firmware that sends bad payloads on the device's telemetry topic."""

    variant: MalformedVariant = "mixed"
    count: int = Field(1, ge=1, le=100_000)
    every: Duration = 10.0
    payload: str | None = Field(None, description="send this text instead of a variant")


ACTIONS: dict[str, type[_Args]] = {
    "grid_down": GridDown,
    "grid_up": GridUp,
    "rolling_outages": RollingOutages,
    "generator_fails_to_start": GeneratorTarget,
    "generator_out_of_fuel": GeneratorTarget,
    "generator_refuel": GeneratorFuel,
    "temperature": Temperature,
    "device_fault": DeviceFault,
    "estop": DeviceTarget,
    "estop_reset": DeviceTarget,
    "device_crash": DeviceCrash,
    "device_hang": DeviceHang,
    "device_power_off": DevicePowerOff,
    "device_power_on": DeviceTarget,
    "network_down": NetworkDown,
    "network_up": SiteTarget,
    "backhaul_down": BackhaulDown,
    "backhaul_up": BackhaulUp,
    "malformed": Malformed,
}


class TimelineEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: float
    action: str
    args: Any
    line: int | None = None


class ScheduleFile(_Args):
    """``schedule: {file: PATH, format: auto|json|hourly|ical}``: the site feeds follow it."""

    file: str
    format: Literal["auto", "json", "hourly", "ical"] = "auto"


class _ScenarioHead(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    description: str = ""
    fleet: str = "default"
    seed: int = Field(1, ge=0)
    start: datetime | None = Field(None, description="RFC 3339; sets the time of day")
    duration: Duration
    tick: Duration = Field(10.0, gt=0, description="physics step")
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="'site/device' or 'site': parameters to replace"
    )
    timeline: list[dict[str, Any]] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    schedule: ScheduleFile | None = Field(
        None, description="an outage schedule the grid follows (each site by its group)"
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2024-12-14T06:00:00+02:00")
        return value


class Scenario(BaseModel):
    """A loaded scenario: its fleet with overrides applied, and the timeline in time order."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    description: str
    path: str
    fleet: Fleet
    seed: int
    start: float | None
    duration: float
    tick: float
    timeline: list[TimelineEvent]
    expect: list[Expectation]
    schedule: Schedule | None = None
    schedule_file: str | None = None

    @property
    def expectations(self) -> list[dict[str, Any]]:
        """The ``expect`` block as plain dicts, for consumers that do not import pydantic."""
        return [e.model_dump(exclude_none=True) for e in self.expect]

    def with_seed(self, seed: int) -> Scenario:
        return self.model_copy(update={"seed": seed})


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    found = library().get(str(name_or_path))
    if found is None:
        names = ", ".join(library())
        raise FleetError(
            f"no scenario file {str(name_or_path)!r} and no library scenario of that "
            f"name; the library has: {names}"
        )
    return found


def _resolve_fleet_path(value: str, scenario_path: Path) -> Path:
    if value == "default":
        return default_fleet_path()
    candidate = Path(value)
    if not candidate.is_absolute():
        relative = scenario_path.parent / candidate
        if relative.exists():
            return relative
    if candidate.exists():
        return candidate
    shipped = FLEETS / f"{value}.yaml"
    if shipped.exists():
        return shipped
    return relative if not candidate.is_absolute() else candidate


def load_scenario(name_or_path: str | Path, fleet: Fleet | None = None) -> Scenario:
    """Load a scenario by path or library name; ``fleet`` replaces the one the file names."""
    path = resolve_scenario_path(name_or_path)
    document = read_yaml(path)
    return parse_scenario(document, fleet)


def parse_scenario(document: YamlDocument, fleet: Fleet | None = None) -> Scenario:
    if not isinstance(document.data, dict):
        raise document.error([], "a scenario file is a mapping with duration: and timeline:")
    try:
        head = _ScenarioHead.model_validate(document.data)
    except ValidationError as exc:
        raise describe_validation(document, exc) from None
    path = Path(document.path)
    if fleet is None:
        fleet_path = _resolve_fleet_path(head.fleet, path)
        try:
            fleet = parse_fleet(read_yaml(fleet_path))
        except FleetError as exc:
            raise FleetError(
                f"{document.error(['fleet'], 'the fleet file has errors')}\n{exc}"
            ) from None
    fleet = _apply_overrides(document, fleet, head.overrides)
    timeline = [
        _parse_entry(document, fleet, index, entry) for index, entry in enumerate(head.timeline)
    ]
    for event in timeline:
        if event.at > head.duration:
            raise document.error(
                ["timeline", timeline.index(event), "at"],
                f"at {event.at:.0f} s is after the end of the scenario ({head.duration:.0f} s)",
            )
    timeline.sort(key=lambda e: e.at)  # stable: same-time events keep file order
    schedule, schedule_file = _load_schedule(document, head, fleet)
    return Scenario(
        name=head.name or path.stem,
        description=head.description,
        path=str(path),
        fleet=fleet,
        seed=head.seed,
        start=head.start.timestamp() if head.start is not None else None,
        duration=head.duration,
        tick=head.tick,
        timeline=timeline,
        expect=head.expect,
        schedule=schedule,
        schedule_file=schedule_file,
    )


def _load_schedule(
    document: YamlDocument, head: _ScenarioHead, fleet: Fleet
) -> tuple[Schedule | None, str | None]:
    if head.schedule is None:
        return None, None
    path = Path(head.schedule.file)
    if not path.is_absolute():
        path = Path(document.path).parent / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise document.error(["schedule", "file"], f"cannot read {path}: {exc.strerror}") from None
    try:
        schedule = parse_schedule(data, head.schedule.format, fleet.timezone)
    except ScheduleFormatError as exc:
        raise document.error(["schedule", "file"], f"{path.name}: {exc}") from None
    return schedule, str(path)


def _apply_overrides(
    document: YamlDocument, fleet: Fleet, overrides: dict[str, dict[str, Any]]
) -> Fleet:
    if not overrides:
        return fleet
    raw = fleet.model_dump(mode="python", by_alias=True, exclude_unset=True)
    for target, values in overrides.items():
        site, _, device = target.partition("/")
        if site not in raw["sites"]:
            raise document.error(["overrides", target], f"no site {site!r} in the fleet")
        node = raw["sites"][site]
        if device:
            if device not in node.get("devices", {}):
                raise document.error(["overrides", target], f"no device {device!r} at {site!r}")
            node = node["devices"][device]
        node.update(values)
    try:
        return Fleet.model_validate(raw)
    except ValidationError as exc:
        messages = "; ".join(e["msg"] for e in exc.errors())
        raise document.error(
            ["overrides"], f"the overridden fleet is invalid: {messages}"
        ) from None


def _parse_entry(document: YamlDocument, fleet: Fleet, index: int, entry: Any) -> TimelineEvent:
    loc: list[str | int] = ["timeline", index]
    if not isinstance(entry, dict) or "at" not in entry:
        raise document.error(loc, "each timeline entry is {at: <duration>, <action>: {...}}")
    actions = [key for key in entry if key != "at"]
    if len(actions) != 1:
        raise document.error(
            loc, f"name exactly one action besides at; the actions are {', '.join(ACTIONS)}"
        )
    action = actions[0]
    model = ACTIONS.get(action)
    if model is None:
        raise document.error([*loc, action], f"unknown action; use one of {', '.join(ACTIONS)}")
    try:
        at = parse_duration(entry["at"])
    except ValueError as exc:
        raise document.error([*loc, "at"], str(exc)) from None
    try:
        args = model.model_validate(entry[action] or {})
    except ValidationError as exc:
        raise describe_validation_at(document, [*loc, action], exc) from None
    try:
        _check_targets(fleet, action, args)
    except ValueError as exc:
        raise document.error([*loc, action], str(exc)) from None
    return TimelineEvent(at=at, action=action, args=args, line=document.line_of([*loc, "at"]))


def describe_validation_at(
    document: YamlDocument, prefix: list[str | int], exc: ValidationError
) -> FleetError:
    lines = []
    for error in exc.errors():
        loc = prefix + ["for" if part == "for_" else part for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key; see docs/simulators.md for the arguments of this action"
        lines.append(str(document.error(loc, message)))
    return FleetError("\n".join(lines))


def _check_targets(fleet: Fleet, action: str, args: Any) -> None:
    if isinstance(args, SiteTarget):
        sites = args.resolve(fleet)
        if not sites:
            raise ValueError("no site of the fleet matches this target")
    site = getattr(args, "site", None)
    device = getattr(args, "device", None)
    if isinstance(site, str) and site not in fleet.sites:
        raise ValueError(f"no site {site!r} in fleet {fleet.name!r}")
    if isinstance(site, str) and device is not None and device not in fleet.sites[site].devices:
        raise ValueError(f"no device {device!r} at site {site!r}")
    kind = fleet.sites[site].devices[device].kind if isinstance(site, str) and device else None
    if isinstance(args, DeviceFault) and kind == "ups":
        raise ValueError("device_fault applies to scanners (fault state) and radios (high VSWR)")
    if isinstance(args, BackhaulDown | BackhaulUp) and kind not in (None, "radio"):
        raise ValueError("backhaul events apply to radio base stations")
    if action in ("estop", "estop_reset") and kind != "scanner":
        raise ValueError("an emergency stop belongs to a scanner")
    if isinstance(args, GeneratorTarget) and args.device is not None:
        params = fleet.sites[site].devices[args.device]
        if getattr(params, "generator", None) is None:
            raise ValueError(f"{args.device!r} has no generator of its own; drop device:")
