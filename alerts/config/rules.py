"""The ``rules`` section: which alerts are evaluated, with which thresholds and inhibitions.

:func:`alerts.config.load` validates it when the alerts role is built, so a bad rule stops
``kordon run --roles alerts`` with a message naming the key; docs/alerts.md is the reference.

Rule thresholds have defaults for the contract alerts and can be overridden per device kind,
site and device::

    rules:
      BatteryDepletionImminent: {threshold: 15m}
      overrides:
        - {kind: radio, BatteryLow: {charge_below: 30}}
        - {site: chop, device: ups-it, BatteryDepletionImminent: {threshold: 10m}}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kordon.config import split_host_port
from kordon.durations import Duration
from kordon.model.alerts import ALERT_NAMES, Matcher

Severity = Literal["info", "warning", "critical"]


def _host_port(value: str) -> str:
    split_host_port(value)
    return value


HostPort = Annotated[str, AfterValidator(_host_port)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleBase(_Section):
    enabled: bool = True
    for_: Duration = Field(30.0, alias="for", description="condition true this long to fire")
    keep_firing_for: Duration = Field(
        0.0, description="keep firing this long after the condition clears (anti-flapping)"
    )
    severity: Severity = "warning"


class MainsPowerLostRule(RuleBase):
    """A UPS reports OB, or a radio base station runs on battery."""


class SitePowerOutageRule(RuleBase):
    """The site's power sensors show grid loss; one alert per site."""

    severity: Severity = "critical"
    min_devices: int = Field(2, ge=1, description="power sensors that must show grid loss")
    quorum: float = Field(0.5, gt=0, le=1, description="share of the site's sensors")


class BatteryLowRule(RuleBase):
    for_: Duration = Field(0.0, alias="for")
    severity: Severity = "critical"
    charge_below: float = Field(20.0, ge=0, le=100, description="battery.charge, %")
    low_battery_flag: bool = Field(True, description="fire on the UPS's own LB flag")


class BatteryDepletionRule(RuleBase):
    """Predicted time to empty under ``threshold``, from a least-squares fit of the discharge."""

    severity: Severity = "critical"
    threshold: Duration = Field(900.0, gt=0, description="time to empty that pages")
    window: Duration = Field(600.0, gt=0, description="discharge history used by the fit")
    min_points: int = Field(4, ge=2, description="readings the fit needs")
    min_span: Duration = Field(30.0, ge=0, description="time the fitted readings must span")
    runtime_factor: float = Field(
        2.0,
        ge=1,
        description="the device's own battery.runtime must be under threshold x this too",
    )
    resolve_factor: float = Field(
        1.3, ge=1, description="clear only once the prediction exceeds threshold x this"
    )


class ReplaceBatteryRule(RuleBase):
    """A UPS's battery is worn: learned health under the line, learned runtime at today's load
    under the required autonomy, or the UPS's own ``RB`` flag. See docs/alerts.md."""

    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = Field(
        1800.0, description="today's load moves; the autonomy condition must not flap with it"
    )
    health_below: float = Field(
        80.0, gt=0, le=100,
        description="learned capacity, % of rated (the fleet's replace_battery_below wins)",
    )
    min_confidence: float = Field(
        0.25, ge=0, le=1,
        description="evidence needed: one discharge to empty gives 0.78, one of 30 % 0.26",
    )
    autonomy: bool = Field(True, description="check the fleet's autonomy at today's load")
    rb_flag: bool = Field(True, description="fire on the UPS's own RB (replace battery) flag")


class DeviceOfflineRule(RuleBase):
    for_: Duration = Field(0.0, alias="for")
    intervals: float = Field(3.0, gt=0, description="missed telemetry intervals before offline")
    min_silence: Duration = Field(60.0, gt=0, description="never less than this")
    default_interval: Duration = Field(10.0, gt=0, description="when the fleet does not say")


class SiteUnreachableRule(RuleBase):
    for_: Duration = Field(0.0, alias="for")
    severity: Severity = "critical"
    min_devices: int = Field(2, ge=1, description="a site this small never counts as unreachable")


class ScheduledOutageAtRiskRule(RuleBase):
    """A UPS is forecast not to last through a scheduled cut (docs/schedules.md)."""

    for_: Duration = Field(0.0, alias="for")
    lead: Duration = Field(7200.0, ge=0, description="raise this long before the cut starts")
    margin: float = Field(
        5.0, ge=0, le=100,
        description="% of the battery left when the grid returns below which it is at risk",
    )
    trust_generator: bool = Field(
        True, description="at a site with a generator the battery only bridges its start"
    )
    horizon: Duration = Field(36 * 3600.0, gt=0, description="cuts this far ahead are forecast")
    step: Duration = Field(60.0, gt=0, description="re-forecast at most this often (stream time)")


RULE_MODELS: dict[str, type[RuleBase]] = {
    "MainsPowerLost": MainsPowerLostRule,
    "SitePowerOutage": SitePowerOutageRule,
    "BatteryLow": BatteryLowRule,
    "BatteryDepletionImminent": BatteryDepletionRule,
    "DeviceOffline": DeviceOfflineRule,
    "SiteUnreachable": SiteUnreachableRule,
    "ScheduledOutageAtRisk": ScheduledOutageAtRiskRule,
    "ReplaceBattery": ReplaceBatteryRule,
}
assert set(RULE_MODELS) == set(ALERT_NAMES)


class RuleOverride(BaseModel):
    """Thresholds for the devices that ``kind``, ``site`` and ``device`` select.

    More specific overrides win: kind < site < site+kind < device; equal ones in file order.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    kind: Literal["ups", "scanner", "radio"] | None = None
    site: str | None = None
    device: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> RuleOverride:
        extra = self.model_extra or {}
        for name, values in extra.items():
            model = RULE_MODELS.get(name)
            if model is None:
                raise ValueError(f"{name!r} is not a rule; use one of {', '.join(RULE_MODELS)}")
            if not isinstance(values, dict):
                raise ValueError(f"{name}: give a mapping of settings, e.g. {{for: 1m}}")
            try:
                model.model_validate(values)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{name}.{'.'.join(str(p) for p in e['loc'])}: "
                    + e["msg"].removeprefix("Value error, ")
                    for e in exc.errors()
                )
                raise ValueError(problems) from None
        if self.device is not None and self.site is None:
            raise ValueError("device needs site too (device names repeat across sites)")
        return self

    @property
    def specificity(self) -> int:
        return (4 if self.device else 0) + (2 if self.site else 0) + (1 if self.kind else 0)

    def rules(self) -> dict[str, dict[str, Any]]:
        return dict(self.model_extra or {})

    def selects(self, kind: str, site: str, device: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and (self.site is None or self.site == site)
            and (self.device is None or self.device == device)
        )


class InhibitRuleSettings(_Section):
    """Alertmanager inhibit rule: ``source`` firing mutes ``target`` where ``equal`` agree."""

    source_matchers: list[str]
    target_matchers: list[str]
    equal: list[str] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _matchers(cls, values: list[str]) -> list[str]:
        for value in values:
            Matcher.parse(value)
        return values


class RulesSettings(_Section):
    evaluation_interval: Duration = Field(
        1.0, gt=0, description="longest time between evaluations (they also run on change)"
    )
    restore_grace: Duration = Field(
        120.0,
        ge=0,
        description="after a restart, how long a restored alert waits for data, counted from "
        "the MQTT subscription",
    )
    write_influx: bool = Field(True, description="alert transitions to InfluxDB 'alerts'")
    influx_buffer: int = Field(10_000, ge=0, description="events kept while InfluxDB is down")
    # Readiness of the engine (alerts/health.py): its own /metrics, /readyz and /healthz.
    metrics_addr: HostPort | None = Field(None, description="host:port, e.g. 127.0.0.1:9102")
    evaluation_stall: Duration = Field(30.0, gt=0, description="not ready: no evaluation since")
    stream_stall: Duration = Field(120.0, ge=0, description="not ready: no message since (0: off)")
    MainsPowerLost: MainsPowerLostRule = MainsPowerLostRule()
    SitePowerOutage: SitePowerOutageRule = SitePowerOutageRule()
    BatteryLow: BatteryLowRule = BatteryLowRule()
    BatteryDepletionImminent: BatteryDepletionRule = BatteryDepletionRule()
    DeviceOffline: DeviceOfflineRule = DeviceOfflineRule()
    SiteUnreachable: SiteUnreachableRule = SiteUnreachableRule()
    ScheduledOutageAtRisk: ScheduledOutageAtRiskRule = ScheduledOutageAtRiskRule()
    ReplaceBattery: ReplaceBatteryRule = ReplaceBatteryRule()
    overrides: list[RuleOverride] = Field(default_factory=list)
    inhibit: list[InhibitRuleSettings] = Field(
        default_factory=list, description="inhibit rules added to the built-in ones"
    )
