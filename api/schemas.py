"""Response and request bodies, for validation and for the OpenAPI document.

The hot list endpoints build plain dicts and serialise them with orjson (see
:mod:`api.state`); these models describe the same shapes, and the contract tests and
schemathesis hold the two together.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[A-Za-z0-9_.-]{1,64}$"
DEVICE_ID = r"^[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_.-]{1,64})?$"

DeviceStateName = Literal["online", "offline", "stale", "unknown"]
PowerSource = Literal["mains", "battery", "ups", "generator", "none"]
SitePower = Literal["grid", "generator", "ups", "dark", "unknown"]
Value = float | int | bool | str


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Out):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class SiteClock(_Out):
    """The time a site is judged on: the wall clock, or a live stream's scenario clock."""

    source: Literal["wall", "stream"] = Field(
        description="wall: real devices; stream: a live stream announced this site "
        "(docs/simulators.md#stream-clock)"
    )
    stream: str | None = Field(description="the stream's id (null on the wall clock)")
    now: str = Field(description="the site's time when this answer was built, RFC 3339")
    speed: float = Field(
        description="site seconds per wall second: 1 on the wall clock, the stream's speed "
        "(0: held) on a stream; extrapolate now with it between polls"
    )


class Device(_Out):
    id: str = Field(description="site:device, unique across the fleet")
    site: str
    device: str
    kind: Literal["ups", "scanner", "radio"]
    model: str
    in_fleet: bool = Field(description="listed in the fleet file (else learnt from its data)")
    state: DeviceStateName
    availability: Literal["online", "offline"] | None = Field(
        description="the device's retained status message (offline is its last will)"
    )
    last_seen: str | None = Field(description="time of the latest reading, RFC 3339")
    power_source: PowerSource | None
    fed_by: str | None = Field(description="site, generator, or the UPS that feeds it")
    battery_charge: float | None = Field(description="%")
    time_to_empty: float | None = Field(
        description="seconds of battery left: the UPS's own battery.runtime, or the learned "
        "battery curve when that is more pessimistic"
    )
    time_to_empty_source: Literal["ups", "learned"] | None = Field(
        None, description="which of the two time_to_empty is"
    )
    ups_status: str | None = Field(description="NUT ups.status flags")
    clock: SiteClock = Field(
        description="the clock of the device's site that state and last_seen are judged "
        "on (as of the list's snapshot, at most about a second old)"
    )


class MetricValue(_Out):
    value: Value
    unit: str
    time: str | None


class AlertSummary(_Out):
    fingerprint: str
    alertname: str
    state: str
    severity: str
    summary: str
    starts_at: str | None
    acked: bool


class DeviceDetail(Device):
    metrics: dict[str, MetricValue]
    alerts: list[AlertSummary]


class SiteDevices(_Out):
    total: int
    online: int
    offline: int
    stale: int
    unknown: int


class SiteUps(_Out):
    total: int
    on_battery: int
    min_charge: float | None
    min_time_to_empty: float | None


class SiteAlerts(_Out):
    firing: int
    critical: int


class Site(_Out):
    site: str
    title: str
    clock: SiteClock
    in_fleet: bool
    power: SitePower
    power_text: str
    devices: SiteDevices
    ups: SiteUps
    alerts: SiteAlerts


class Series(_Out):
    metric: str
    unit: str
    aggregation: Literal["mean", "min", "max", "last"]
    points: list[tuple[int, Value]] = Field(description="[epoch milliseconds, value] pairs")


class Telemetry(_Out):
    device: str
    kind: str
    start: str
    end: str
    step: int = Field(description="seconds per point")
    series: list[Series]


class Ack(_Out):
    fingerprint: str
    by: str
    at: str
    comment: str


class Alert(_Out):
    fingerprint: str
    alertname: str
    state: str
    severity: str
    site: str | None
    device: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str | None
    ends_at: str | None
    updated_at: str | None
    ack: Ack | None
    silenced_by: list[str]


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=500)


class Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="label name")
    value: str = Field(max_length=256)
    is_regex: bool = False
    is_equal: bool = True


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[Matcher] = Field(min_length=1, max_length=16)
    starts_at: str | None = Field(None, description="RFC 3339; default now")
    ends_at: str | None = Field(None, description="RFC 3339; or give duration")
    duration: str | None = Field(None, description="e.g. 2h; used when ends_at is not given")
    comment: str = Field("", max_length=500)


class Silence(_Out):
    id: str
    matchers: list[Matcher]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str
    state: Literal["active", "pending", "expired"]


class Scenario(_Out):
    name: str
    title: str
    description: str
    duration: str | None
    fleet: str | None
    expects: list[str] = Field(description="alert names the scenario expects to raise")


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speed: float = Field(60.0, gt=0, description="simulated seconds per wall-clock second")


class ScenarioRun(_Out):
    id: str
    scenario: str
    speed: float
    state: Literal["running", "finished", "failed", "stopped"]
    started_by: str
    started_at: str | None
    ended_at: str | None
    exit_code: int | None
    log: list[str] = Field(description="the run's last output lines (detail view only)")


class ClockStream(_Out):
    stream: str
    state: Literal["running", "stopped", "stale"] = Field(
        description="stale: nothing heard for max(5 s, 3 x every); its sites are back on "
        "the wall clock"
    )
    sites: list[str] = Field(description="the sites the stream announced")
    owns: list[str] = Field(description="the sites whose time it sets now")
    speed: float = Field(description="scenario seconds per wall second (0: held)")
    sim: str = Field(description="the stream's scenario time now (extrapolated), RFC 3339")
    heard_ago: float = Field(description="wall seconds since its last announcement")


class Clock(_Out):
    wall: str = Field(description="the API's wall clock, RFC 3339")
    streams: list[ClockStream] = Field(description="every stream clock the API has heard")


class Principal(_Out):
    name: str
    role: Literal["viewer", "operator", "admin"]


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready", "not ready"]
    checks: dict[str, Any]


class BatteryDischarge(_Out):
    """One discharge the battery model learned from."""

    start: str | None = Field(description="RFC 3339")
    end: str | None
    duration_s: float = Field(description="seconds on battery")
    end_reason: Literal["mains", "off", "dark", "open"] = Field(
        description="mains back, output off on battery, the UPS went dark, or still open"
    )
    method: Literal["empty", "voltage"] = Field(
        description="ran to empty from full (direct), or the voltage slope of a partial one"
    )
    reached_empty: bool
    mean_load_pct: float | None
    mean_temperature_c: float | None = Field(description="ups.temperature, °C")
    depth: float = Field(description="share of this battery's capacity drawn")
    health_pct: float = Field(description="health this discharge alone shows")
    ups_runtime_at_start_s: float | None = Field(description="what the UPS promised at the start")


class BatteryHealth(_Out):
    """A UPS's battery as Kordon learned it from its own discharges (docs/alerts.md)."""

    id: str
    site: str
    device: str
    health_pct: float | None = Field(description="capacity, % of rated (25 °C)")
    confidence: float = Field(description="0..1; one discharge to empty gives 0.78")
    discharges: int
    discharges_to_empty: int
    load_pct: float | None = Field(description="the UPS's latest ups.load")
    runtime_at_load_s: float | None = Field(description="learned runtime from full at that load")
    rated_runtime_at_load_s: float | None = Field(description="a new battery's, same load")
    ups_runtime_s: float | None = Field(description="the UPS's own battery.runtime now")
    runtime_at_50_s: float = Field(description="learned runtime from full at 50 % load")
    exponent: float = Field(description="of the power law runtime ~ load^-exponent")
    rated_source: str = Field(description="nameplate, ups-count or nut-default")
    learned_at: str | None
    model_version: int
    evidence: list[BatteryDischarge]
