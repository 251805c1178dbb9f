"""The ``notify`` section: receivers, the routing tree and the outbox.

Receivers are validated through the receiver registry (:mod:`alerts.notify`): each key under a
receiver other than ``name`` is a receiver kind (``webhook``, ``email``, ...) whose module
defines its settings, so this file names no receiver kind but the webhook that
``KORDON_WEBHOOK_URL`` defines. :func:`alerts.config.load` validates the section when the
alerts role is built.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from alerts.notify import RECEIVER_KINDS, ReceiverConfig
from kordon.config import http_url
from kordon.durations import Duration
from kordon.model.alerts import ALERT_NAMES, Matcher
from kordon.redact import redact_url

# The contract's next alerts (design.md): named here so the classes below can hold them
# before they are built, and they join their class the day they fire.
PLANNED_ALERTS = ("RegionalPowerOutage", "GeneratorFuelLow")
KNOWN_ALERTS = (*ALERT_NAMES, *PLANNED_ALERTS)

# The power path (docs/alerts.md, "Timing"): what on-call must act on before a battery runs
# out. The first firing of one of these in a group is sent ``urgent_wait`` after it fires,
# whatever the group said before. DeviceOffline and SiteUnreachable count only without a
# power cause: with ``cause="power"`` they are a consequence that the power alert explaining
# them has already paged (and it mutes them).
URGENT_ALERTS = (
    "SitePowerOutage", "MainsPowerLost", "BatteryLow", "BatteryDepletionImminent",
    "DeviceOffline", "SiteUnreachable", "RegionalPowerOutage", "GeneratorFuelLow",
)
# Maintenance and foresight: news for the working day, not for the next minutes. Grouped
# apart (the route's group_by plus alertname), at Alertmanager's pace, so they never share
# a notification with the power path nor delay it.
MAINTENANCE_ALERTS = ("ReplaceBattery", "ScheduledOutageAtRisk")


def _known_alert(name: str) -> str:
    if name not in KNOWN_ALERTS:
        raise ValueError(
            f"{name!r} is not an alert name; use one of {', '.join(KNOWN_ALERTS)}"
        )
    return name


AlertName = Annotated[str, AfterValidator(_known_alert)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ReceiverBase(_Section):
    """``{name: oncall, webhook: {...}, email: {...}}``: one or more kinds under one name.

    :data:`ReceiverSettings` adds one optional field per registered kind, so a wrong value
    is reported with its full key (``notify.receivers.0.webhook.url``).
    """

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @model_validator(mode="before")
    @classmethod
    def _known_kinds(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key != "name" and key not in RECEIVER_KINDS:
                    raise ValueError(
                        f"{key!r} is not a receiver kind; use one of {', '.join(RECEIVER_KINDS)}"
                    )
        return data

    @model_validator(mode="after")
    def _one(self) -> ReceiverBase:
        if not self.integrations():
            kinds = " or ".join(f"{kind}:" for kind in RECEIVER_KINDS)
            raise ValueError(f"receiver {self.name!r} needs {kinds}")
        return self

    def integrations(self) -> dict[str, ReceiverConfig]:
        """Kind -> settings of every kind this receiver has."""
        found = {kind: getattr(self, kind, None) for kind in RECEIVER_KINDS}
        return {kind: config for kind, config in found.items() if config is not None}

    def redacted(self) -> dict[str, Any]:
        return {
            "name": self.name,
            **{kind: config.redacted() for kind, config in self.integrations().items()},
        }


ReceiverSettings: type[ReceiverBase] = create_model(
    "ReceiverSettings",
    __base__=ReceiverBase,
    **{kind: (model | None, None) for kind, model in RECEIVER_KINDS.items()},  # type: ignore[call-overload]
)


class RouteSettings(_Section):
    receiver: str | None = Field(None, description="default: the parent's receiver")
    matchers: list[str] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    escalate_to: str | None = Field(None, description="receiver for unacknowledged critical alerts")
    escalate_after: Duration | None = None
    urgent_wait: Duration | None = Field(
        None, description="a more severe or new critical alert, or a critical resolution, "
        "is sent this long after it happens instead of at the next group_interval",
    )
    resolve_wait: Duration | None = Field(
        None, description="the end of an incident (the incident alert or the last critical "
        "alert resolving) is sent this long after it instead of at the next group_interval",
    )
    update_interval: Duration | None = Field(
        None, description="least time between incident updates (doubles with each in a row)"
    )
    urgent_alerts: list[AlertName] | None = Field(
        None, description="the time-critical class: the first firing of one of these in a "
        "group is sent urgent_wait after it fires, never held behind other news "
        "(default: the power path)",
    )
    maintenance_alerts: list[AlertName] | None = Field(
        None, description="grouped apart (group_by plus alertname) at Alertmanager's pace, "
        "never urgent (default: ReplaceBattery, ScheduledOutageAtRisk)",
    )
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


class WatchdogSettings(_Section):
    """The dead man's switch: an always-firing ``Watchdog`` alert sent to ``receiver`` every
    ``interval`` while the engine evaluates and reads the stream (:mod:`alerts.watchdog`)."""

    receiver: str
    interval: Duration = Field(60.0, gt=0, description="how often the Watchdog is sent")
    labels: dict[str, str] = Field(
        default_factory=dict, description="extra labels, e.g. {instance: engine-a}"
    )


ROOT_DEFAULTS: dict[str, Any] = {
    "group_by": ["site"],
    "group_wait": 30.0,
    "group_interval": 300.0,
    "repeat_interval": 4 * 3600.0,
    "escalate_after": 900.0,
    "urgent_wait": 5.0,
    "resolve_wait": 10.0,
    "update_interval": 20.0,
    "urgent_alerts": list(URGENT_ALERTS),
    "maintenance_alerts": list(MAINTENANCE_ALERTS),
}


class NotifySettings(_Section):
    webhook_url: str | None = Field(
        None, description="KORDON_WEBHOOK_URL: a webhook receiver named 'default'"
    )
    external_url: str = Field("", description="Kordon's URL, sent as externalURL")
    receivers: list[ReceiverSettings] = Field(default_factory=list)  # type: ignore[valid-type]
    route: RouteSettings = RouteSettings()
    outbox: OutboxSettings = OutboxSettings()
    watchdog: WatchdogSettings | None = None

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value) if value else None

    def all_receivers(self) -> dict[str, ReceiverBase]:
        found: dict[str, ReceiverBase] = {r.name: r for r in self.receivers}
        if self.webhook_url and "default" not in found:
            # KORDON_WEBHOOK_URL is a webhook receiver by definition.
            found["default"] = ReceiverSettings.model_validate(
                {"name": "default", "webhook": {"url": self.webhook_url}}
            )
        return found

    def integrations(self) -> dict[str, ReceiverConfig]:
        """Outbox target (``receiver/kind``) -> its settings: the fan-out of a notification
        to a receiver goes to every target of that receiver."""
        return {
            f"{name}/{kind}": config
            for name, receiver in self.all_receivers().items()
            for kind, config in receiver.integrations().items()
        }

    def printable(self) -> dict[str, Any]:
        """The effective section as ``kordon config`` prints it, receivers' secrets hidden."""
        data = self.model_dump(mode="json", by_alias=True)
        if self.webhook_url:
            data["webhook_url"] = redact_url(self.webhook_url, hide_path=True)
        data["receivers"] = [receiver.redacted() for receiver in self.receivers]
        return data

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
        self._classes_apart(self.route, "route", None, None)
        if self.watchdog is not None and self.watchdog.receiver not in known:
            raise ValueError(
                f"watchdog: receiver {self.watchdog.receiver!r} is not defined; define it under "
                f"notify.receivers (defined: {', '.join(sorted(known)) or 'none'})"
            )
        return self

    def _classes_apart(
        self, route: RouteSettings, where: str, urgent: list[str] | None,
        maintenance: list[str] | None,
    ) -> None:
        """An alert is urgent or maintenance news, not both: checked on what each route
        takes, its own lists or its parent's."""
        if route.urgent_alerts is not None:
            urgent = route.urgent_alerts
        if route.maintenance_alerts is not None:
            maintenance = route.maintenance_alerts
        both = sorted(
            set(urgent if urgent is not None else URGENT_ALERTS)
            & set(maintenance if maintenance is not None else MAINTENANCE_ALERTS)
        )
        if both:
            raise ValueError(
                f"{where}: {', '.join(both)} cannot be both in urgent_alerts and in "
                "maintenance_alerts (a child route takes its parent's lists, or the defaults); "
                "take it out of one"
            )
        for i, child in enumerate(route.routes):
            self._classes_apart(child, f"{where}.routes[{i}]", urgent, maintenance)
