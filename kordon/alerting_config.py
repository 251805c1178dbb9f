"""The ``rules`` and ``notify`` configuration sections (typed, validated at start).

They live in the kernel next to :mod:`kordon.config`, which embeds them in ``Settings``, so a
bad rule or route stops ``kordon run`` with a message naming the key, like every other
section. The alert engine (``alerts/``) interprets them; docs/alerts.md is the reference.

Rule thresholds have defaults for the contract alerts and can be overridden per device kind,
site and device::

    rules:
      BatteryDepletionImminent: {threshold: 15m}
      overrides:
        - {kind: radio, BatteryLow: {charge_below: 30}}
        - {site: chop, device: ups-it, BatteryDepletionImminent: {threshold: 10m}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kordon.alerting_model import ALERT_NAMES, Matcher
from kordon.durations import Duration

Severity = Literal["info", "warning", "critical"]


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


class DeviceOfflineRule(RuleBase):
    for_: Duration = Field(0.0, alias="for")
    intervals: float = Field(3.0, gt=0, description="missed telemetry intervals before offline")
    min_silence: Duration = Field(60.0, gt=0, description="never less than this")
    default_interval: Duration = Field(10.0, gt=0, description="when the fleet does not say")


class SiteUnreachableRule(RuleBase):
    for_: Duration = Field(0.0, alias="for")
    severity: Severity = "critical"
    min_devices: int = Field(2, ge=1, description="a site this small never counts as unreachable")


RULE_MODELS: dict[str, type[RuleBase]] = {
    "MainsPowerLost": MainsPowerLostRule,
    "SitePowerOutage": SitePowerOutageRule,
    "BatteryLow": BatteryLowRule,
    "BatteryDepletionImminent": BatteryDepletionRule,
    "DeviceOffline": DeviceOfflineRule,
    "SiteUnreachable": SiteUnreachableRule,
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
        120.0, ge=0, description="after a restart, how long a restored alert waits for data"
    )
    write_influx: bool = Field(True, description="alert transitions to InfluxDB 'alerts'")
    influx_buffer: int = Field(10_000, ge=0, description="events kept while InfluxDB is down")
    MainsPowerLost: MainsPowerLostRule = MainsPowerLostRule()
    SitePowerOutage: SitePowerOutageRule = SitePowerOutageRule()
    BatteryLow: BatteryLowRule = BatteryLowRule()
    BatteryDepletionImminent: BatteryDepletionRule = BatteryDepletionRule()
    DeviceOffline: DeviceOfflineRule = DeviceOfflineRule()
    SiteUnreachable: SiteUnreachableRule = SiteUnreachableRule()
    overrides: list[RuleOverride] = Field(default_factory=list)
    inhibit: list[InhibitRuleSettings] = Field(
        default_factory=list, description="inhibit rules added to the built-in ones"
    )


# --------------------------------------------------------------------------- notify


class WebhookReceiver(_Section):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10.0
    max_alerts: int = Field(0, ge=0, description="0 sends every alert of the group")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class EmailReceiver(_Section):
    to: list[str] = Field(..., min_length=1)
    from_: str = Field("kordon@localhost", alias="from")
    smarthost: str = Field(..., description="host:port of the SMTP server")
    username: str | None = None
    password: str | None = None
    starttls: bool = Field(True, description="upgrade with STARTTLS (required when offered)")
    tls: bool = Field(False, description="implicit TLS (port 465) instead of STARTTLS")
    verify_tls: bool = True
    timeout: Duration = 10.0

    @field_validator("smarthost")
    @classmethod
    def _smarthost(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. smtp.example.org:587")
        return value


class ReceiverSettings(_Section):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    webhook: WebhookReceiver | None = None
    email: EmailReceiver | None = None

    @model_validator(mode="after")
    def _one(self) -> ReceiverSettings:
        if self.webhook is None and self.email is None:
            raise ValueError(f"receiver {self.name!r} needs webhook: or email:")
        return self


class RouteSettings(_Section):
    receiver: str | None = Field(None, description="default: the parent's receiver")
    matchers: list[str] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    escalate_to: str | None = Field(None, description="receiver for unacknowledged critical alerts")
    escalate_after: Duration | None = None
    continue_: bool = Field(False, alias="continue")
    routes: list[RouteSettings] = Field(default_factory=list)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, values: list[str]) -> list[str]:
        for value in values:
            Matcher.parse(value)
        return values


class OutboxSettings(_Section):
    retry_min: Duration = Field(1.0, gt=0)
    retry_max: Duration = Field(60.0, gt=0, description="longest wait between attempts")
    give_up_after: Duration = Field(86400.0, gt=0, description="drop undeliverable after this")
    workers: int = Field(4, ge=1, le=64, description="deliveries in parallel")


ROOT_DEFAULTS: dict[str, Any] = {
    "group_by": ["site"],
    "group_wait": 30.0,
    "group_interval": 300.0,
    "repeat_interval": 4 * 3600.0,
    "escalate_after": 900.0,
}


class NotifySettings(_Section):
    webhook_url: str | None = Field(
        None, description="KORDON_WEBHOOK_URL: a webhook receiver named 'default'"
    )
    external_url: str = Field("", description="Kordon's URL, sent as externalURL")
    receivers: list[ReceiverSettings] = Field(default_factory=list)
    route: RouteSettings = RouteSettings()
    outbox: OutboxSettings = OutboxSettings()

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value or None

    def all_receivers(self) -> dict[str, ReceiverSettings]:
        found = {r.name: r for r in self.receivers}
        if self.webhook_url and "default" not in found:
            found["default"] = ReceiverSettings(
                name="default", webhook=WebhookReceiver(url=self.webhook_url)
            )
        return found

    @model_validator(mode="after")
    def _receivers_exist(self) -> NotifySettings:
        names = [r.name for r in self.receivers]
        if len(names) != len(set(names)):
            raise ValueError("receiver names must be unique")
        known = set(self.all_receivers())
        stack = [("route", self.route)]
        while stack:
            where, route = stack.pop()
            for name in (route.receiver, route.escalate_to):
                if name is not None and name not in known:
                    raise ValueError(
                        f"{where}: receiver {name!r} is not defined; define it under "
                        f"notify.receivers (defined: {', '.join(sorted(known)) or 'none'})"
                    )
            stack.extend((f"{where}.routes[{i}]", r) for i, r in enumerate(route.routes))
        return self
