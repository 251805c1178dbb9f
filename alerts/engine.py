"""The alert engine core: (time, message) in, alert transitions and notifications out.

It does no network I/O and reads no clock: the live role feeds it MQTT messages and calls
:meth:`Engine.tick` from a wall-clock ticker; ``kordon scenario verify`` feeds it simulator
events and ticks it on the simulated clock, so a replay gives the same alerts every time.
Its only side effect is the alert store (SQLite; ``:memory:`` in a replay): alert state,
the notification log and the outbox, written in one transaction per tick.

Per message the work is O(1) (update one device, re-evaluate its rules); per tick it is the
number of devices that just went silent, sites that changed and alerts that are active,
never a pass over every tracked device (see :mod:`alerts.tracker`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from alerts.battery.live import BatteryLearning
from alerts.config import NotifySettings, RuleBase, RulesSettings
from alerts.dispatch import Decisions, Dispatcher, Notification, build_routes
from alerts.evaluate import (
    battery_low,
    depletion_imminent,
    device_offline,
    mains_power_lost,
    site_material,
    site_power_outage,
    site_unreachable,
    update_depletion,
)
from alerts.inhibit import Inhibitor
from alerts.outbox import fan_out, targets_of
from alerts.replace_battery import replace_battery
from alerts.rules import PRIORITY, RuleBook
from alerts.silence import Silencer
from alerts.state import Alert, AlertKey
from alerts.tracker import DeviceState, DeviceTracker, SiteState
from kordon.fleet import Fleet, UpsParams
from kordon.model.alerts import AlertState
from kordon.model.kinds import DeviceKind
from kordon.model.payload import DecodeLimits, decode_telemetry
from kordon.model.topics import Channel, TopicError, parse_topic
from kordon.schedule import SiteSchedules
from kordon.storage.alert_store import AlertStore

log = logging.getLogger("alerts.engine")

PERSIST_EVERY = 10.0  # seconds between saves of changed annotations of firing alerts
_LIVE_LIMITS = DecodeLimits(max_future_seconds=300.0)


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert entered ``state`` at ``at`` (firing or resolved): for annotations and replay."""

    at: float
    state: AlertState
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]


class Engine:
    def __init__(
        self,
        rules: RulesSettings,
        notify: NotifySettings,
        store: AlertStore,
        now: float,
        *,
        fleet: Fleet | None = None,
        limits: DecodeLimits = _LIVE_LIMITS,
        on_transition: Callable[[Transition], None] | None = None,
        schedules: SiteSchedules | None = None,
        battery: BatteryLearning | None = None,
    ) -> None:
        self.settings = rules
        self.notify = notify
        self.store = store
        self.limits = limits
        self.rulebook = RuleBook(rules)
        self.tracker = DeviceTracker(fleet)
        self.fleet = fleet
        # Battery learning per UPS on the stream's clock (alerts/battery/live.py).
        self.battery = battery if battery is not None else BatteryLearning(fleet)
        self.foresight = _foresight(self.rulebook, fleet, schedules, self._battery_model)
        self.inhibitor = Inhibitor(rules.inhibit)
        self.silencer = Silencer()
        self.receivers = notify.all_receivers()
        self.targets = targets_of(notify)
        self.dispatcher = Dispatcher(
            build_routes(notify), store.nflog(), store.escalations(), notify.external_url
        )
        self.alerts: dict[AlertKey, Alert] = {}
        self.acked: set[tuple[str, float]] = set()
        self.on_transition = on_transition
        self.wake = False  # something changed that a tick should look at soon
        self._dirty_sites: set[str] = set()
        self._changed: list[Alert] = []
        self._data_version = -1
        self._next_persist = now + PERSIST_EVERY
        self.counters = {"messages": 0, "ignored": 0, "ticks": 0, "notifications": 0}
        self._restore(now)

    # ------------------------------------------------------------------ restart
    def _restore(self, now: float) -> None:
        for known in self.store.known_devices():
            try:
                kind = DeviceKind(known.kind)
            except ValueError:
                continue
            self.tracker.ensure(known.site, kind, known.device, now, self._timeout_of)
        self.tracker.new_devices.clear()
        until = now + self.settings.restore_grace
        for record in self.store.alerts(states=(AlertState.FIRING,)):
            labels = record.labels
            name = labels.get("alertname", "")
            if name not in PRIORITY:
                continue
            rule = self.rulebook.for_of(
                name, labels.get("kind"), labels.get("site", ""), labels.get("device")
            )
            alert = Alert.restored(record, rule.for_, rule.keep_firing_for, PRIORITY[name], until)
            self.alerts[alert.key] = alert
            self.dispatcher.add(alert, now)
        self._reload(force=True)
        if self.alerts:
            log.info("restored %d firing alerts from the store", len(self.alerts))
            self.wake = True

    def _reload(self, force: bool = False) -> None:
        """Pick up silences and acks written by the API (another connection)."""
        version = self.store.data_version()
        if version == self._data_version and not force:
            return
        self._data_version = version
        self.silencer.load(self.store.silences())
        self.acked = {(a.fingerprint, a.starts_at) for a in self.store.acks()}

    def _timeout_of(self, state: DeviceState) -> float:
        rule = self.rulebook.device(state.kind, state.site, state.device).offline
        interval = state.interval or rule.default_interval
        return max(rule.intervals * interval, rule.min_silence)

    # ------------------------------------------------------------------ input
    def handle(self, topic: str, payload: bytes, now: float) -> None:
        """One MQTT message as the broker delivered it."""
        self.counters["messages"] += 1
        try:
            ref = parse_topic(topic)
        except TopicError:
            self.counters["ignored"] += 1
            return
        tracker = self.tracker
        state = tracker.ensure(ref.site, ref.kind, ref.device, now, self._timeout_of)
        picture_before = state.picture()
        if ref.channel is Channel.STATUS:
            text = payload.strip()
            if text == b"offline":
                state.will_offline = True
            elif text == b"online":
                state.will_offline = False
                tracker.seen(state, now)
            else:
                self.counters["ignored"] += 1
                return
        else:
            decoded = decode_telemetry(payload, ref.kind, now, self.limits)
            if not decoded.readings:
                self.counters["ignored"] += 1
                return
            tracker.seen(state, now)
            state.will_offline = False
            rules = self.rulebook.device(state.kind, state.site, state.device)
            readings = decoded.readings
            if len(readings) > 1:
                readings = sorted(readings, key=lambda r: r.ts_ns)
            for reading in readings:
                state.apply(reading.fields)
                update_depletion(state, reading.ts_ns / 1e9, rules)
                if state.kind is DeviceKind.UPS:
                    self.battery.observe(ref.site, ref.device, reading.ts_ns / 1e9,
                                         reading.fields)
                if self.foresight is not None:
                    self.foresight.observe(state.site, state.kind, state.device,
                                           reading.ts_ns / 1e9, reading.fields)
        self._evaluate_device(state, now)
        if state.picture() != picture_before:
            self._dirty_sites.add(state.site)
            self.wake = True
        elif ("SitePowerOutage", state.site, "") in self.alerts:
            # The incident text follows the site's running figures at the next tick.
            self._dirty_sites.add(state.site)

    # ------------------------------------------------------------------ rules
    def _labels(self, name: str, rule: RuleBase, state: DeviceState) -> dict[str, str]:
        return {
            "alertname": name,
            "site": state.site,
            "device": state.device,
            "kind": state.kind.value,
            "severity": rule.severity,
        }

    def _evaluate_device(self, state: DeviceState, now: float) -> None:
        rules = self.rulebook.device(state.kind, state.site, state.device)
        site, device = state.site, state.device
        # Until the device's first reading after a start its power state is unknown, not
        # "fine": judging it would resolve a restored alert on no evidence.
        if state.kind is not DeviceKind.SCANNER and state.has_data:
            active, notes = mains_power_lost(state)
            self._set(("MainsPowerLost", site, device), rules.mains, active, notes,
                      lambda: self._labels("MainsPowerLost", rules.mains, state), now)
            active, notes = battery_low(state, rules)
            self._set(("BatteryLow", site, device), rules.low, active, notes,
                      lambda: self._labels("BatteryLow", rules.low, state), now)
            key = ("BatteryDepletionImminent", site, device)
            current = self.alerts.get(key)
            firing = current is not None and current.state is AlertState.FIRING
            unit = self.battery.units.get((site, device))
            learned = None
            if unit is not None and unit.model is not None:
                tte = unit.learned_time_to_empty()
                if tte is not None and unit.model.health_pct is not None:
                    learned = (tte, f"its learned battery curve (health "
                                    f"{unit.model.health_pct:.0f}%)")
            active, notes = depletion_imminent(state, rules, firing, learned)
            self._set(key, rules.depletion, active, notes,
                      lambda: self._labels(key[0], rules.depletion, state), now)
        if state.kind is DeviceKind.UPS and state.has_data:
            self._evaluate_replace(state, rules.replace, now)
        self._evaluate_offline(state, now)

    def _evaluate_replace(self, state: DeviceState, rule: RuleBase, now: float) -> None:
        site, device = state.site, state.device
        line = rule.health_below  # type: ignore[attr-defined]
        autonomy = None
        if self.fleet is not None:
            params = self.fleet.sites.get(site)
            ups = params.devices.get(device) if params is not None else None
            if isinstance(ups, UpsParams) and "replace_battery_below" in ups.model_fields_set:
                line = ups.replace_battery_below
            autonomy = self.fleet.autonomy(site, device)
        active, notes = replace_battery(
            self.battery.units.get((site, device)), rule, line, autonomy,  # type: ignore[arg-type]
            state.name,
        )
        self._set(("ReplaceBattery", site, device), rule, active, notes,
                  lambda: self._labels("ReplaceBattery", rule, state), now)

    def _evaluate_offline(self, state: DeviceState, now: float) -> None:
        rule = self.rulebook.device(state.kind, state.site, state.device).offline
        cause = self.tracker.feed_down(state) if state.offline else None
        active, notes = device_offline(state, cause, now)

        def labels() -> dict[str, str]:
            found = self._labels("DeviceOffline", rule, state)
            if cause:
                found["cause"] = "power"
            return found

        self._set(("DeviceOffline", state.site, state.device), rule, active, notes, labels, now)

    def _evaluate_site(self, site: SiteState, now: float) -> None:
        rules = self.rulebook.site(site.name)
        active, notes = site_power_outage(site, rules)
        self._set(("SitePowerOutage", site.name, ""), rules.outage, active, notes,
                  lambda: {"alertname": "SitePowerOutage", "site": site.name,
                           "severity": rules.outage.severity}, now)
        outage = self.alerts.get(("SitePowerOutage", site.name, ""))
        if outage is not None and outage.state is not AlertState.RESOLVED:
            outage.material = site_material(site)
        active, notes = site_unreachable(site, rules, now)

        def labels() -> dict[str, str]:
            found = {"alertname": "SiteUnreachable", "site": site.name,
                     "severity": rules.unreachable.severity}
            if outage is not None and outage.state is not AlertState.RESOLVED:
                found["cause"] = "power"
            return found

        self._set(("SiteUnreachable", site.name, ""), rules.unreachable, active, notes, labels,
                  now)
        # Offline devices learn their cause once the site's power picture is known.
        for state in site.devices.values():
            if state.offline:
                self._evaluate_offline(state, now)

    def _set(
        self,
        key: AlertKey,
        rule: RuleBase,
        active: bool,
        annotations: dict[str, str],
        labels: Callable[[], dict[str, str]],
        now: float,
    ) -> None:
        alert = self.alerts.get(key)
        if not rule.enabled:
            active = False
        if alert is None or alert.state is AlertState.RESOLVED:
            if not active:
                return
            if alert is not None:
                self.dispatcher.forget(alert)
            self.alerts[key] = Alert(
                key, labels(), annotations, now, rule.for_, rule.keep_firing_for, PRIORITY[key[0]]
            )
            self.wake = True
            return
        if active:
            alert.annotations = annotations
            alert.relabel(labels())
        elif annotations:
            alert.ended_notes = annotations
        if alert.condition != active or alert.restore_until is not None:
            self.wake = True
        alert.set_condition(active, now)

    # ------------------------------------------------------------------ ticks
    def next_due(self) -> float | None:
        """The engine time at which :meth:`tick` next has work, without new input."""
        candidates = [
            self.tracker.next_deadline(),
            self.dispatcher.next_due(),
            self.silencer.next_change(self._last_tick),
            self.foresight.next_due() if self.foresight is not None else None,
            self.battery.next_due(),
        ]
        for alert in self.alerts.values():
            candidates.append(alert.next_due())
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    _last_tick = 0.0

    def tick(self, now: float) -> list[Notification]:
        """One pass of the pipeline: sweep -> step -> silence/inhibit -> dispatch -> persist.

        Returns the notifications queued in the outbox.
        """
        self._last_tick = now
        self.counters["ticks"] += 1
        self.wake = False
        self._sweep(now)
        transitions = self._step(now)
        held = self._mute(now)
        decided = self.dispatcher.flush(now, self._is_acked, held)
        self._release(decided.released)
        self._persist(now, decided)
        self.counters["notifications"] += len(decided.notifications)
        if self.on_transition is not None:
            for transition in transitions:
                self.on_transition(transition)
        return decided.notifications

    def _sweep(self, now: float) -> None:
        """Time-based conditions: devices gone silent, sites whose picture changed, and the
        silences and acks the API wrote since the last tick."""
        for state in self.tracker.sweep(now):
            self._evaluate_offline(state, now)
            self._dirty_sites.add(state.site)
        for site, device in self.battery.sweep(now):
            state = self.tracker.get(site, device)
            if state is not None:
                self._evaluate_device(state, now)
        for name in sorted(self._dirty_sites):
            site = self.tracker.sites.get(name)
            if site is not None:
                self._evaluate_site(site, now)
        self._dirty_sites.clear()
        self._reload()
        if self.foresight is not None and self.foresight.due(now):
            self._foresee(now)

    def _battery_model(self, site: str, device: str):  # type: ignore[no-untyped-def]
        """The engine's learned (and stored) battery model of a UPS, for the forecast."""
        unit = self.battery.units.get((site, device))
        return unit.model if unit is not None else None

    def _foresee(self, now: float) -> None:
        """ScheduledOutageAtRisk: each UPS's forecast against its site's scheduled cuts."""
        assert self.foresight is not None
        for found in self.foresight.evaluate(now):
            state = self.tracker.get(found.site, found.device)
            if state is None:
                continue
            self._set(("ScheduledOutageAtRisk", found.site, found.device), found.rule,
                      found.active, found.annotations,
                      lambda s=state, r=found.rule: self._labels("ScheduledOutageAtRisk", r, s),
                      now)

    def _step(self, now: float) -> list[Transition]:
        """Move every alert through its life cycle, inhibitors first (PRIORITY)."""
        transitions: list[Transition] = []
        for alert in sorted(self.alerts.values(), key=lambda a: (a.priority, a.key)):
            change = alert.step(now)
            if change is None:
                continue
            if change is AlertState.INACTIVE:
                del self.alerts[alert.key]
                continue
            if change is AlertState.FIRING:
                self.dispatcher.add(alert, now)
            self._changed.append(alert)
            transitions.append(
                Transition(now, change, alert.fingerprint, dict(alert.labels),
                           dict(alert.annotations))
            )
        return transitions

    def _mute(self, now: float) -> set[str]:
        """Mark silenced and inhibited alerts; returns those a pending inhibitor holds back."""
        live = [a for a in self.alerts.values() if a.state is not AlertState.RESOLVED]
        self.silencer.apply(live, now)
        return self.inhibitor.apply(live)

    def _release(self, fingerprints: list[str]) -> None:
        """Forget resolved alerts the dispatcher has told every receiver about."""
        if not fingerprints:
            return
        done = set(fingerprints)
        for key in [k for k, a in self.alerts.items()
                    if a.state is AlertState.RESOLVED and a.fingerprint in done]:
            del self.alerts[key]

    def _is_acked(self, alert: Alert) -> bool:
        return alert.starts_at is not None and (alert.fingerprint, alert.starts_at) in self.acked

    def _persist(self, now: float, decided: Decisions) -> None:
        """Devices first seen, changed alerts, and what the dispatcher decided: queued
        notifications with their log entries and escalations (one transaction in the store)."""
        store = self.store
        if self.tracker.new_devices:
            store.remember_devices(
                [(s.site, s.device, s.kind.value, s.interval) for s in self.tracker.new_devices],
                now,
            )
            self.tracker.new_devices.clear()
        periodic = now >= self._next_persist
        if periodic:
            self._next_persist = now + PERSIST_EVERY
            changed = [a for a in self.alerts.values() if a.state is not AlertState.PENDING]
            changed.extend(a for a in self._changed if a.state is AlertState.RESOLVED)
        else:
            changed = self._changed
        records = [a.record(now) for a in {id(a): a for a in changed}.values()]
        self._changed = []
        if records:
            store.save_alerts(records)
        if decided.to_persist():
            store.record_notifications(
                fan_out(decided.notifications, self.targets),
                decided.nflog,
                decided.escalations,
                now,
            )

    # ------------------------------------------------------------------ views
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts.values() if a.state is AlertState.FIRING]


def _foresight(rulebook: RuleBook, fleet: Fleet | None, schedules: SiteSchedules | None,
               model_of):  # type: ignore[no-untyped-def]
    """The schedule forecast, when the engine was given schedules (issue 15)."""
    if schedules is None:
        return None
    from alerts.foresight.evaluator import Foresight

    def rule_of(site: str, device: str):  # type: ignore[no-untyped-def]
        return rulebook.rule("ScheduledOutageAtRisk", "ups", site, device)

    return Foresight(rule_of, fleet, schedules, model_of)
