"""The alert engine core: (time, message) in, alert transitions and notifications out.

It does no network I/O and reads no clock: the live role feeds it MQTT messages and calls
:meth:`Engine.tick` from a wall-clock ticker; ``kordon scenario verify`` feeds it simulator
events and ticks it on the simulated clock, so a replay gives the same alerts every time.
Its only side effect is the alert store (SQLite; ``:memory:`` in a replay): alert state,
the notification log and the outbox, written in one transaction per tick.

Per message the work is O(1) (update one device, re-evaluate its rules); per tick it is the
number of devices that just went silent, sites that changed and alerts that are active,
never a pass over every tracked device (see :mod:`alerts.tracker`).

**Stages.** :meth:`Engine.handle` times a message (:mod:`alerts.sitetime`), updates its
device (:mod:`alerts.tracker`) and evaluates the device's rules (:mod:`alerts.evaluate`);
:meth:`Engine.tick` runs sweep (silent devices, changed sites, silences and acks written by
the API, the forecast) -> step (alert life cycles) -> mute (silences, inhibition) -> dispatch
(:mod:`alerts.dispatch`) -> release (resolved alerts every receiver was told) -> persist.

**Time.** Every site is judged on its own clock, :class:`~alerts.sitetime.SiteTime` says which
and where it stands (the long story is in :mod:`alerts.sitetime`). ``wall_now`` is the clock
the caller passes (the live role's wall clock, the verifier's simulated one), ``site_now`` a
site's time, ``reading_at`` a reading's own timestamp. A site whose time base changes is
settled quietly (:mod:`alerts.settle`, :meth:`Engine.sync`).
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
from alerts.foresight.plans import StreamPlans
from alerts.inhibit import Inhibitor
from alerts.outbox import fan_out, targets_of
from alerts.replace_battery import replace_battery
from alerts.rules import PRIORITY, RuleBook
from alerts.settle import settle_notices
from alerts.silence import Silencer
from alerts.sitetime import Arrival, SiteTime
from alerts.state import Alert, AlertKey
from alerts.tracker import DeviceState, DeviceTracker, SiteState
from kordon.fleet import Fleet, UpsParams
from kordon.model.alerts import AlertState
from kordon.model.kinds import DeviceKind
from kordon.model.payload import DecodeLimits, decode_telemetry
from kordon.model.topics import Channel, TopicError, TopicRef, parse_topic
from kordon.schedule import SiteSchedules
from kordon.storage.alert_store import AlertStore
from kordon.streamclock import StreamClocks, Switch

log = logging.getLogger("alerts.engine")

PERSIST_EVERY = 10.0  # seconds between saves of changed annotations of firing alerts
_LIVE_LIMITS = DecodeLimits(max_future_seconds=300.0)

# A device's alerts decided by its own readings alone (a streamed one's follow them, _catch_up).
_READING_ALERTS = ("MainsPowerLost", "BatteryLow", "BatteryDepletionImminent", "ReplaceBattery")


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert entered ``state`` at ``at`` (firing or resolved): for annotations and replay."""

    at: float
    state: AlertState
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]


class Engine:
    """Messages in (:meth:`handle`), ticks (:meth:`tick`) and clock changes (:meth:`sync`)
    in; transitions, stored alerts and queued notifications out (see the module docstring).
    """

    def __init__(
        self,
        rules: RulesSettings,
        notify: NotifySettings,
        store: AlertStore,
        wall_now: float,
        *,
        fleet: Fleet | None = None,
        limits: DecodeLimits = _LIVE_LIMITS,
        on_transition: Callable[[Transition], None] | None = None,
        clocks: StreamClocks | None = None,
        schedules: SiteSchedules | None = None,
        battery: BatteryLearning | None = None,
    ) -> None:
        self.settings = rules
        self.notify = notify
        self.store = store
        self.rulebook = RuleBook(rules)
        self.tracker = DeviceTracker(fleet)
        self.fleet = fleet
        # Battery learning per UPS on the stream's clock (alerts/battery/live.py).
        self.battery = battery if battery is not None else BatteryLearning(fleet)
        if clocks is not None:  # a simulated stream forecasts against its own plan
            schedules = StreamPlans(clocks, schedules)
        self.foresight = _foresight(self.rulebook, fleet, schedules, self._battery_model)
        self.inhibitor = Inhibitor(rules.inhibit)
        self.silencer = Silencer()
        self.receivers = notify.all_receivers()
        self.targets = targets_of(notify)
        # The clock each site is judged on, and each followed stream's time (alerts/sitetime.py).
        self.time = SiteTime(clocks, limits, wall_now)
        self.dispatcher = Dispatcher(
            build_routes(notify), store.nflog(), store.escalations(), notify.external_url,
            clock_of=self.time.group_now if clocks is not None else None,
        )
        self.alerts: dict[AlertKey, Alert] = {}
        self.acked: set[tuple[str, float]] = set()
        self._dirty_at: dict[str, float] = {}  # streamed site -> when its picture changed
        self.on_transition = on_transition
        self.wake = False  # something changed that a tick should look at soon
        self._dirty_sites: set[str] = set()
        self._changed: list[Alert] = []
        self._early: list[Transition] = []  # streamed alerts stepped at reading time
        self._data_version = -1
        self._next_persist = wall_now + PERSIST_EVERY
        self.counters = {"messages": 0, "ignored": 0, "ticks": 0, "notifications": 0,
                         "switches": 0}
        self._restore(wall_now)

    # ------------------------------------------------------------------ restart
    def _restore(self, wall_now: float) -> None:
        # Sites once settled (a simulation played them): what came before is not news.
        self.time.cutoff.update(self.store.settled_sites())
        for known in self.store.known_devices():
            try:
                kind = DeviceKind(known.kind)
            except ValueError:
                continue
            self.tracker.ensure(known.site, kind, known.device, wall_now, self._timeout_of)
        self.tracker.new_devices.clear()
        until = wall_now + self.settings.restore_grace
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
            self.dispatcher.add(alert, wall_now)
            if name == "DeviceOffline" and self._restore_silent(labels, record.active_at):
                alert.set_condition(True, wall_now)  # silence is its evidence, and it goes on
        self._reload(force=True)
        if self.alerts:
            log.info("restored %d firing alerts from the store", len(self.alerts))
            self.wake = True

    def _restore_silent(self, labels: dict[str, str], active_at: float) -> bool:
        """The device of a restored DeviceOffline stays offline until it reports."""
        try:
            kind = DeviceKind(labels.get("kind", ""))
        except ValueError:
            return False
        site, device = labels.get("site", ""), labels.get("device", "")
        if site in self.time.cutoff:
            return False  # a settled (simulated) site: its devices are unknown until they report
        state = self.tracker.ensure(site, kind, device, active_at, self._timeout_of)
        # Silent since its timeout ran out before the alert became active.
        self.tracker.restore_silent(state, active_at - state.timeout)
        return True

    def stream_live(self, wall_now: float) -> None:
        """The subscription is in place: restored alerts wait ``restore_grace`` from now, not
        from the engine's start, for a slow start must not resolve them on no evidence."""
        until = wall_now + self.settings.restore_grace
        for alert in self.alerts.values():
            if alert.restore_until is not None and alert.restore_until < until:
                alert.restore_until = until

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
    def handle(self, topic: str, payload: bytes, wall_now: float) -> None:
        """One MQTT message as the broker delivered it at ``wall_now``."""
        self.counters["messages"] += 1
        try:
            ref = parse_topic(topic)
        except TopicError:
            self.counters["ignored"] += 1
            return
        tracker = self.tracker
        site = ref.site
        arrival = self.time.arrival(site, wall_now)
        site_now = arrival.site_now
        cutoff = self.time.cutoff.get(site)
        if cutoff is not None and not self._fresh(ref, payload, cutoff, arrival):
            self.counters["ignored"] += 1
            return
        state = tracker.ensure(site, ref.kind, ref.device, site_now, self._timeout_of,
                               arrival.stream)
        picture_before = state.picture()
        if ref.channel is Channel.STATUS:
            text = payload.strip()
            if text == b"offline":
                state.will_offline = True
            elif text == b"online":
                state.will_offline = False
                tracker.seen(state, site_now)
            else:
                self.counters["ignored"] += 1
                return
        else:
            decoded = decode_telemetry(payload, ref.kind, arrival.future_from, arrival.limits)
            readings = decoded.readings
            if cutoff is not None:
                readings = [r for r in readings if r.ts_ns >= cutoff * 1e9]
            if not readings:
                self.counters["ignored"] += 1
                return
            # A streamed device is seen, and its conditions hold, from its newest reading's
            # own time; the stream's time moves on to it (alerts/sitetime.py).
            site_now = self.time.admit(arrival, readings)
            tracker.seen(state, site_now)
            state.will_offline = False
            rules = self.rulebook.device(state.kind, state.site, state.device)
            if len(readings) > 1:
                readings = sorted(readings, key=lambda r: r.ts_ns)
            for reading in readings:
                reading_at = reading.ts_ns / 1e9
                state.apply(reading.fields)
                update_depletion(state, reading_at, rules)
                if state.kind is DeviceKind.UPS:
                    self.battery.observe(ref.site, ref.device, reading_at, reading.fields)
                if self.foresight is not None:
                    self.foresight.observe(state.site, state.kind, state.device, reading_at,
                                           reading.fields)
        self._evaluate_device(state, site_now)
        if state.picture() != picture_before:
            self._dirty_sites.add(state.site)
            if arrival.stream is not None:  # the site's picture changed at this reading's time
                self._dirty_at[site] = min(self._dirty_at.get(site, site_now), site_now)
            self.wake = True
        elif ("SitePowerOutage", state.site, "") in self.alerts:
            # The incident text follows the site's running figures at the next tick.
            self._dirty_sites.add(state.site)

    def _fresh(self, ref: TopicRef, payload: bytes, cutoff: float, arrival: Arrival) -> bool:
        """At a site that changed its time base: does this message tell something new?

        A device the engine forgot at the switch is unknown, not offline, until it publishes
        ``online`` or a reading stamped after the switch; an ``offline`` status (the
        simulator's goodbye, a retained last will) or an old reading still in flight is not
        news."""
        if self.tracker.get(ref.site, ref.device) is not None:
            return True
        if ref.channel is Channel.STATUS:
            return payload.strip() == b"online"
        decoded = decode_telemetry(payload, ref.kind, arrival.future_from, arrival.limits)
        return any(r.ts_ns >= cutoff * 1e9 for r in decoded.readings)

    # ------------------------------------------------------------------ clock changes
    def stream_speed(self) -> float:
        """The fastest stream the engine follows (0 when none): the role ticks that often."""
        return self.time.speed()

    def sync(self, wall_now: float) -> list[Notification]:
        """Settle every site whose time base changed (``StreamClocks.poll``); returns the
        resolved notices queued (at most one per site and receiver)."""
        notes: list[Notification] = []
        for switch in self.time.switches():
            notes.extend(self._settle(switch, wall_now))
        self.time.follow()
        return notes

    def _settle(self, switch: Switch, wall_now: float) -> list[Notification]:
        """See :mod:`alerts.settle`: end the site's alerts quietly, forget its devices."""
        site = switch.site
        self.counters["switches"] += 1
        old, last = self.time.switch(switch, wall_now)
        if switch.after is not None:
            how = f"began to follow the scenario clock of stream {switch.after}"
        else:
            how = f"left the scenario clock of stream {old} (it stopped or went silent)"
        log.info("site %s %s: settling it (%s)", site, how, _describe_switch(switch))
        note = (
            f"Ended without a verdict: site {site} {how}, so its alerts could not be judged "
            "across the change of clock; its devices count as unknown until they report again."
        )
        ended: list[Alert] = []
        transitions: list[Transition] = []
        for key, alert in list(self.alerts.items()):
            if key[1] != site:
                continue
            del self.alerts[key]
            if alert.state is AlertState.PENDING:
                continue
            if alert.state is AlertState.FIRING:
                alert.state = AlertState.RESOLVED
                alert.condition = False
                alert.restore_until = None
                alert.ends_at = max(last, alert.starts_at or last)
                alert.annotations = {**alert.annotations, "note": note}
                transitions.append(
                    Transition(alert.ends_at, AlertState.RESOLVED, alert.fingerprint,
                               dict(alert.labels), dict(alert.annotations))
                )
            ended.append(alert)
        decided = settle_notices(self.dispatcher, site, ended, switch.at)
        self.tracker.drop_site(site)
        if self.foresight is not None:
            self.foresight.forget_site(site)
        self.store.settle_site(site, self.time.cutoff[site])
        self._dirty_sites.discard(site)
        self._dirty_at.pop(site, None)
        records = [a.record(a.ends_at or last) for a in ended]
        if records:
            self.store.save_alerts(records)
        if decided.to_persist():
            self.store.record_notifications(
                fan_out(decided.notifications, self.targets), decided.nflog,
                decided.escalations, wall_now,
            )
        self.counters["notifications"] += len(decided.notifications)
        if self.on_transition is not None:
            for transition in transitions:
                self.on_transition(transition)
        if decided.notifications:
            self.wake = True
        return decided.notifications

    # ------------------------------------------------------------------ rules
    def _labels(self, name: str, rule: RuleBase, state: DeviceState) -> dict[str, str]:
        return {
            "alertname": name,
            "site": state.site,
            "device": state.device,
            "kind": state.kind.value,
            "severity": rule.severity,
        }

    def _evaluate_device(self, state: DeviceState, site_now: float) -> None:
        rules = self.rulebook.device(state.kind, state.site, state.device)
        site, device = state.site, state.device
        if site in self.time.streamed:
            self._catch_up(state, site_now)
        # Until the device's first reading after a start its power state is unknown, not
        # "fine": judging it would resolve a restored alert on no evidence.
        if state.kind is not DeviceKind.SCANNER and state.has_data:
            active, notes = mains_power_lost(state)
            self._set(("MainsPowerLost", site, device), rules.mains, active, notes,
                      lambda: self._labels("MainsPowerLost", rules.mains, state), site_now)
            active, notes = battery_low(state, rules)
            self._set(("BatteryLow", site, device), rules.low, active, notes,
                      lambda: self._labels("BatteryLow", rules.low, state), site_now)
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
                      lambda: self._labels(key[0], rules.depletion, state), site_now)
        if state.kind is DeviceKind.UPS and state.has_data:
            self._evaluate_replace(state, rules.replace, site_now)
        self._evaluate_offline(state, site_now)

    def _evaluate_replace(self, state: DeviceState, rule: RuleBase, site_now: float) -> None:
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
                  lambda: self._labels("ReplaceBattery", rule, state), site_now)

    def _evaluate_offline(self, state: DeviceState, site_now: float) -> None:
        rule = self.rulebook.device(state.kind, state.site, state.device).offline
        cause = self.tracker.feed_down(state) if state.offline else None
        active, notes = device_offline(state, cause, site_now)

        def labels() -> dict[str, str]:
            found = self._labels("DeviceOffline", rule, state)
            if cause:
                found["cause"] = "power"
            return found

        self._set(("DeviceOffline", state.site, state.device), rule, active, notes, labels,
                  site_now)

    def _evaluate_site(self, site: SiteState, site_now: float) -> None:
        rules = self.rulebook.site(site.name)
        # After a restart the devices report one by one (statuses first): until each has
        # reported, the site's picture is partial, and a partial "grid fine" decides nothing.
        whole = all(state.has_data or state.offline for state in site.devices.values())
        active, notes = site_power_outage(site, rules)
        self._set(("SitePowerOutage", site.name, ""), rules.outage, active, notes,
                  lambda: {"alertname": "SitePowerOutage", "site": site.name,
                           "severity": rules.outage.severity}, site_now, partial=not whole)
        outage = self.alerts.get(("SitePowerOutage", site.name, ""))
        if outage is not None and outage.state is not AlertState.RESOLVED and whole:
            # Only a whole picture: after a restart the devices report one by one, and a
            # half-rebuilt picture compared with what was told would page the same news again.
            outage.material = site_material(site)
        active, notes = site_unreachable(site, rules, site_now)

        def labels() -> dict[str, str]:
            found = {"alertname": "SiteUnreachable", "site": site.name,
                     "severity": rules.unreachable.severity}
            if outage is not None and outage.state is not AlertState.RESOLVED:
                found["cause"] = "power"
            return found

        self._set(("SiteUnreachable", site.name, ""), rules.unreachable, active, notes, labels,
                  site_now)
        # Offline devices learn their cause once the site's power picture is known.
        for state in site.devices.values():
            if state.offline:
                self._evaluate_offline(state, site_now)

    def _set(
        self,
        key: AlertKey,
        rule: RuleBase,
        active: bool,
        annotations: dict[str, str],
        labels: Callable[[], dict[str, str]],
        site_now: float,
        *,
        partial: bool = False,
    ) -> None:
        """Apply a rule's verdict. ``partial``: the verdict rests on part of the evidence,
        so an inactive one does not decide a restored alert (its grace runs on)."""
        alert = self.alerts.get(key)
        if not rule.enabled:
            active = False
        elif partial and not active and alert is not None and alert.restore_until is not None:
            return
        if alert is None or alert.state is AlertState.RESOLVED:
            if not active:
                return
            if alert is not None:
                self.dispatcher.forget(alert)
            self.alerts[key] = Alert(
                key, labels(), annotations, site_now, rule.for_, rule.keep_firing_for,
                PRIORITY[key[0]],
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
        alert.set_condition(active, site_now)

    # ------------------------------------------------------------------ ticks
    def next_due(self) -> float | None:
        """The wall time at which :meth:`tick` next has work, without new input.

        Only what runs on the ``wall_now`` the caller passes: sites on a stream's clock are
        ticked often enough by the role instead (:meth:`stream_speed`)."""
        streamed = self.time.streamed
        candidates = [
            self.tracker.next_deadline(),
            self.dispatcher.next_due((lambda g: g.site not in streamed) if streamed else None),
            self.silencer.next_change(self._last_tick),
            self.foresight.next_due((lambda s: s not in streamed) if streamed else None)
            if self.foresight is not None else None,
            self.battery.next_due((lambda s: s not in streamed) if streamed else None),
        ]
        # Inline of Alert.next_due's cheap test: this runs before every message of a replay.
        for alert in self.alerts.values():
            state = alert.state
            if state is AlertState.PENDING:
                if not alert.condition:
                    continue
            elif state is not AlertState.FIRING or alert.condition:
                continue  # only a firing alert whose condition cleared has a deadline
            if not streamed or alert.key[1] not in streamed:
                candidates.append(alert.next_due())
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    _last_tick = 0.0

    def tick(self, wall_now: float) -> list[Notification]:
        """One pass of the pipeline: sweep -> step -> mute (silence, inhibit) -> dispatch ->
        release -> persist. Returns the notifications queued in the outbox."""
        settled = self.sync(wall_now)
        self._last_tick = wall_now
        self.time.wall_now = wall_now
        self.counters["ticks"] += 1
        self.wake = False
        self._sweep(wall_now)
        transitions = self._step(wall_now)
        held = self._mute(wall_now)
        decided = self.dispatcher.flush(wall_now, self._is_acked, held)
        self._release(decided.released)
        self._persist(wall_now, decided)
        self.counters["notifications"] += len(decided.notifications)
        if self.on_transition is not None:
            for transition in transitions:
                self.on_transition(transition)
        return settled + decided.notifications if settled else decided.notifications

    def _sweep(self, wall_now: float) -> None:
        """Time-based conditions: devices gone silent, sites whose picture changed, and the
        silences and acks the API wrote since the last tick."""
        streamed = self.time.streamed
        now_of = self.time.now_of(wall_now)
        dirty_at = self._dirty_at
        for state in self.tracker.sweep(wall_now, self.time.silence_now if streamed else None):
            site_now = wall_now
            if state.site in streamed:  # silent since its timeout ran out, in stream time
                site_now = state.last_seen + state.timeout
                dirty_at[state.site] = min(dirty_at.get(state.site, site_now), site_now)
            self._evaluate_offline(state, site_now)
            self._dirty_sites.add(state.site)
        for site, device in self.battery.sweep(wall_now, now_of):
            state = self.tracker.get(site, device)
            if state is not None:
                self._evaluate_device(state, now_of(site) if now_of is not None else wall_now)
        for name in sorted(self._dirty_sites):
            site = self.tracker.sites.get(name)
            if site is not None:
                site_now = wall_now
                if name in streamed:
                    # The picture changed at the reading that changed it; the watermark lags
                    # the readings by the transit allowance (minutes at speed), so stamping
                    # the change with it would start an incident before its cut.
                    site_now = dirty_at.get(name, self.time.time_of(name, wall_now))
                self._evaluate_site(site, site_now)
        self._dirty_sites.clear()
        dirty_at.clear()
        self._reload()
        if self.foresight is not None and self.foresight.due(wall_now, now_of):
            self._foresee(wall_now, now_of)

    def _battery_model(self, site: str, device: str):  # type: ignore[no-untyped-def]
        """The engine's learned (and stored) battery model of a UPS, for the forecast."""
        unit = self.battery.units.get((site, device))
        return unit.model if unit is not None else None

    def _foresee(self, wall_now: float, now_of: Callable[[str], float] | None) -> None:
        """ScheduledOutageAtRisk: each UPS's forecast against its site's scheduled cuts, on
        the site's own clock (a stream's scenario time)."""
        assert self.foresight is not None
        for found in self.foresight.evaluate(wall_now, now_of):
            state = self.tracker.get(found.site, found.device)
            if state is None:
                continue
            self._set(("ScheduledOutageAtRisk", found.site, found.device), found.rule,
                      found.active, found.annotations,
                      lambda s=state, r=found.rule: self._labels("ScheduledOutageAtRisk", r, s),
                      found.at)

    def _step(self, wall_now: float) -> list[Transition]:
        """Move every alert through its life cycle, inhibitors first (PRIORITY)."""
        transitions, self._early = self._early, []
        now_of = self.time.now_of(wall_now)
        for alert in sorted(self.alerts.values(), key=lambda a: (a.priority, a.key)):
            site_now = now_of(alert.key[1]) if now_of is not None else wall_now
            self._step_alert(alert, site_now, transitions)
        return transitions

    def _step_alert(self, alert: Alert, site_now: float, transitions: list[Transition]) -> None:
        change = alert.step(site_now)
        if change is None:
            return
        if change is AlertState.INACTIVE:
            del self.alerts[alert.key]
            return
        if change is AlertState.FIRING:
            self.dispatcher.add(alert, site_now)
        self._changed.append(alert)
        when = alert.starts_at if change is AlertState.FIRING else alert.ends_at
        transitions.append(
            Transition(site_now if when is None else when, change, alert.fingerprint,
                       dict(alert.labels), dict(alert.annotations))
        )

    def _catch_up(self, state: DeviceState, site_now: float) -> None:
        """Step a streamed device's own alerts to its reading's time before judging it.

        A streamed site's alerts are stepped on its watermark, which lags its readings by the
        transit allowance (minutes of scenario time at speed); a device's own conditions depend
        on its readings alone, so their life cycle can follow the readings, as it does under
        ``scenario verify``: a condition that cleared and came back between two watermark steps
        resolves and fires again, and hysteresis sees the state verify sees."""
        for name in _READING_ALERTS:
            alert = self.alerts.get((name, state.site, state.device))
            due = alert.next_due() if alert is not None else None
            # Strictly before: a reading at the very moment a timer runs out decides first,
            # as in verify (it ticks up to, not at, a message's time before handling it).
            if alert is not None and due is not None and due < site_now:
                self._step_alert(alert, site_now, self._early)

    def _mute(self, wall_now: float) -> set[str]:
        """Mark silenced and inhibited alerts; returns those a pending inhibitor holds back."""
        live = [a for a in self.alerts.values() if a.state is not AlertState.RESOLVED]
        self.silencer.apply(live, wall_now, self.time.alert_now if self.time.streamed else None)
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

    def _persist(self, wall_now: float, decided: Decisions) -> None:
        """Devices first seen, changed alerts, and what the dispatcher decided: queued
        notifications with their log entries and escalations (one transaction in the store)."""
        store = self.store
        if self.tracker.new_devices:
            store.remember_devices(
                [(s.site, s.device, s.kind.value, s.interval) for s in self.tracker.new_devices],
                wall_now,
            )
            self.tracker.new_devices.clear()
        periodic = wall_now >= self._next_persist
        if periodic:
            self._next_persist = wall_now + PERSIST_EVERY
            changed = [a for a in self.alerts.values() if a.state is not AlertState.PENDING]
            changed.extend(a for a in self._changed if a.state is AlertState.RESOLVED)
        else:
            changed = self._changed
        now_of = self.time.now_of(wall_now)
        records = [
            a.record(now_of(a.key[1]) if now_of is not None else wall_now)
            for a in {id(a): a for a in changed}.values()
        ]
        self._changed = []
        if records:
            store.save_alerts(records)
        if decided.to_persist():
            store.record_notifications(
                fan_out(decided.notifications, self.targets),
                decided.nflog,
                decided.escalations,
                wall_now,
            )

    # ------------------------------------------------------------------ views
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts.values() if a.state is AlertState.FIRING]


def _describe_switch(switch: Switch) -> str:
    before = switch.before or "wall clock"
    after = switch.after or "wall clock"
    return f"{before} -> {after}"


def _foresight(rulebook: RuleBook, fleet: Fleet | None, schedules: SiteSchedules | None,
               model_of):  # type: ignore[no-untyped-def]
    """The schedule forecast, when the engine was given schedules (issue 15)."""
    if schedules is None:
        return None
    from alerts.foresight.evaluator import Foresight

    def rule_of(site: str, device: str):  # type: ignore[no-untyped-def]
        return rulebook.rule("ScheduledOutageAtRisk", "ups", site, device)

    return Foresight(rule_of, fleet, schedules, model_of)
