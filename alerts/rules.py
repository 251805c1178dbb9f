"""Rule definitions and per-device thresholds (defaults, then kind, site and device overrides).

Thresholds are resolved once per device and cached: the hot path (one call per reading) only
does a dict lookup. The rule *conditions* are in :mod:`alerts.evaluate`; this module says
which numbers apply to which device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.config.rules import (
    RULE_MODELS,
    BatteryDepletionRule,
    BatteryLowRule,
    DeviceOfflineRule,
    MainsPowerLostRule,
    ReplaceBatteryRule,
    RuleBase,
    RulesSettings,
    SitePowerOutageRule,
    SiteUnreachableRule,
)

# Inhibitors first: a site-wide alert must be decided before the per-device alerts it mutes
# (Alertmanager issue 2229 is the race this ordering avoids).
PRIORITY: dict[str, int] = {
    "SitePowerOutage": 0,
    "SiteUnreachable": 0,
    "BatteryDepletionImminent": 1,
    "BatteryLow": 1,
    "MainsPowerLost": 2,
    "DeviceOffline": 2,
    "ScheduledOutageAtRisk": 2,
    "ReplaceBattery": 3,
}


@dataclass(frozen=True, slots=True)
class DeviceRules:
    mains: MainsPowerLostRule
    low: BatteryLowRule
    depletion: BatteryDepletionRule
    offline: DeviceOfflineRule
    replace: ReplaceBatteryRule


@dataclass(frozen=True, slots=True)
class SiteRules:
    outage: SitePowerOutageRule
    unreachable: SiteUnreachableRule


class RuleBook:
    def __init__(self, settings: RulesSettings) -> None:
        self.settings = settings
        # Least specific first, so later (more specific) ones overwrite; stable in file order.
        self._overrides = sorted(settings.overrides, key=lambda o: o.specificity)
        self._devices: dict[tuple[str, str, str], DeviceRules] = {}
        self._sites: dict[str, SiteRules] = {}

    def rule(self, name: str, kind: str | None, site: str, device: str | None) -> RuleBase:
        base: dict[str, Any] = getattr(self.settings, name).model_dump(by_alias=True)
        changed = False
        for override in self._overrides:
            if name not in override.rules():
                continue
            if device is None and (override.device is not None or override.kind is not None):
                continue  # site-wide rules take site-level overrides only
            if override.selects(kind or "", site, device or ""):
                base.update(override.rules()[name])
                changed = True
        if not changed:
            return getattr(self.settings, name)
        return RULE_MODELS[name].model_validate(base)

    def device(self, kind: str, site: str, device: str) -> DeviceRules:
        key = (kind, site, device)
        rules = self._devices.get(key)
        if rules is None:
            rules = self._devices[key] = DeviceRules(
                mains=self.rule("MainsPowerLost", kind, site, device),  # type: ignore[arg-type]
                low=self.rule("BatteryLow", kind, site, device),  # type: ignore[arg-type]
                depletion=self.rule("BatteryDepletionImminent", kind, site, device),  # type: ignore[arg-type]
                offline=self.rule("DeviceOffline", kind, site, device),  # type: ignore[arg-type]
                replace=self.rule("ReplaceBattery", kind, site, device),  # type: ignore[arg-type]
            )
        return rules

    def site(self, site: str) -> SiteRules:
        rules = self._sites.get(site)
        if rules is None:
            rules = self._sites[site] = SiteRules(
                outage=self.rule("SitePowerOutage", None, site, None),  # type: ignore[arg-type]
                unreachable=self.rule("SiteUnreachable", None, site, None),  # type: ignore[arg-type]
            )
        return rules

    def for_of(self, name: str, kind: str | None, site: str, device: str | None) -> RuleBase:
        """The rule that applies to an alert's labels (used when alerts are restored)."""
        return self.rule(name, kind, site, device)
