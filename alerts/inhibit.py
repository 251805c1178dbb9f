"""Inhibition: a firing source alert mutes target alerts that share the ``equal`` labels.

Built-in rules (docs/alerts.md) express the root-cause grouping of the issue: a site
outage mutes the site's per-device "on battery" alerts, a power problem mutes the
``cause="power"`` offline alerts it explains, and an unreachable site mutes its devices'
offline alerts. Configured rules are added to these.

A *pending* source holds its targets back (they keep their state but are not notified yet)
until it fires or clears: otherwise a target whose ``for`` ends first pages seconds before
its inhibitor fires, the race of Alertmanager issue 2229.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.config import InhibitRuleSettings
from alerts.state import Alert
from kordon.model.alerts import AlertState, Matcher, matches_all

POWER_ALERTS = "SitePowerOutage|MainsPowerLost|BatteryLow|BatteryDepletionImminent"

BUILTIN = [
    InhibitRuleSettings(
        source_matchers=['alertname="SitePowerOutage"'],
        target_matchers=['alertname="MainsPowerLost"'],
        equal=["site"],
    ),
    InhibitRuleSettings(
        source_matchers=[f'alertname=~"{POWER_ALERTS}"'],
        target_matchers=['alertname=~"DeviceOffline|SiteUnreachable"', 'cause="power"'],
        equal=["site"],
    ),
    InhibitRuleSettings(
        # The depletion page already said how long this UPS lasts; its LB is no second page.
        source_matchers=['alertname="BatteryDepletionImminent"'],
        target_matchers=['alertname="BatteryLow"'],
        equal=["site", "device"],
    ),
    InhibitRuleSettings(
        source_matchers=['alertname="SiteUnreachable"'],
        target_matchers=['alertname="DeviceOffline"'],
        equal=["site"],
    ),
]


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: InhibitRuleSettings) -> InhibitRule:
        return cls(
            tuple(Matcher.parse(m) for m in settings.source_matchers),
            tuple(Matcher.parse(m) for m in settings.target_matchers),
            tuple(settings.equal),
        )


class Inhibitor:
    def __init__(self, extra: Iterable[InhibitRuleSettings] = ()) -> None:
        self.rules = [InhibitRule.from_settings(s) for s in [*BUILTIN, *extra]]

    def inhibits(self, source: dict[str, str], target: dict[str, str]) -> bool:
        """Whether an alert labelled ``source``, firing, would mute one labelled ``target``."""
        return source is not target and any(
            matches_all(rule.source, source) and matches_all(rule.target, target)
            and all(source.get(name, "") == target.get(name, "") for name in rule.equal)
            for rule in self.rules
        )

    def apply(self, alerts: Iterable[Alert]) -> set[str]:
        """Set ``inhibited_by`` on every firing alert; return fingerprints held by a pending
        source."""
        held: set[str] = set()
        active: list[Alert] = []
        for alert in alerts:
            alert.inhibited_by = []
            if alert.state is AlertState.FIRING or alert.state is AlertState.PENDING:
                active.append(alert)
        firing = [alert for alert in active if alert.state is AlertState.FIRING]
        if not firing:
            return held
        for rule in self.rules:
            sources: dict[tuple[str, ...], list[Alert]] = {}
            for alert in active:
                if matches_all(rule.source, alert.labels):
                    key = tuple(alert.labels.get(name, "") for name in rule.equal)
                    sources.setdefault(key, []).append(alert)
            if not sources:
                continue
            for alert in firing:
                if not matches_all(rule.target, alert.labels):
                    continue
                key = tuple(alert.labels.get(name, "") for name in rule.equal)
                for source in sources.get(key, ()):
                    if source is alert:
                        continue
                    if source.state is AlertState.FIRING:
                        alert.inhibited_by.append(source.fingerprint)
                    else:
                        held.add(alert.fingerprint)
        return held
