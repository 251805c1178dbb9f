"""The alerts role's configuration: the ``rules`` and ``notify`` sections.

The kernel keeps these sections as written (:class:`kordon.config.RoleSection`) and never
imports this package; :func:`load` validates them where the alerts role is built (``kordon run
--roles alerts``, ``kordon scenario verify``, ``kordon config``), and a mistake stops it with a
:class:`~kordon.config.ConfigError` that names the key and the fix, as every other section does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from alerts.config.notify import (
    MAINTENANCE_ALERTS,
    ROOT_DEFAULTS,
    URGENT_ALERTS,
    NotifySettings,
    OutboxSettings,
    ReceiverBase,
    ReceiverSettings,
    RouteSettings,
    WatchdogSettings,
)
from alerts.config.rules import (
    RULE_MODELS,
    InhibitRuleSettings,
    RuleBase,
    RuleOverride,
    RulesSettings,
)
from kordon.config import ConfigError, Settings, describe_invalid


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    rules: RulesSettings
    notify: NotifySettings


def load(settings: Settings) -> AlertingConfig:
    """Validate ``settings.rules`` and ``settings.notify``; every bad key is reported at once."""
    problems: list[str] = []
    rules: RulesSettings | None = None
    notify: NotifySettings | None = None
    try:
        rules = RulesSettings.model_validate(settings.rules.raw())
    except ValidationError as exc:
        problems.extend(describe_invalid(exc, section="rules").splitlines()[1:])
    try:
        notify = NotifySettings.model_validate(settings.notify.raw())
    except ValidationError as exc:
        problems.extend(describe_invalid(exc, section="notify").splitlines()[1:])
    if problems or rules is None or notify is None:
        raise ConfigError("\n".join(["invalid configuration:", *problems]))
    return AlertingConfig(rules, notify)


def printable(settings: Settings) -> dict[str, Any]:
    """The effective ``rules`` and ``notify`` sections for ``kordon config``, secrets hidden."""
    config = load(settings)
    return {
        "rules": config.rules.model_dump(mode="json", by_alias=True),
        "notify": config.notify.printable(),
    }


__all__ = [
    "MAINTENANCE_ALERTS",
    "ROOT_DEFAULTS",
    "RULE_MODELS",
    "URGENT_ALERTS",
    "AlertingConfig",
    "InhibitRuleSettings",
    "NotifySettings",
    "OutboxSettings",
    "ReceiverBase",
    "ReceiverSettings",
    "RouteSettings",
    "RuleBase",
    "RuleOverride",
    "RulesSettings",
    "WatchdogSettings",
    "load",
    "printable",
]
