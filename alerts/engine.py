"""The alert engine core: (time, message) in, alert transitions and notifications out.

It does no network I/O and reads no clock: the live role feeds it MQTT messages and calls
:meth:`Engine.tick` from a wall-clock ticker; ``kordon scenario verify`` feeds it simulator
events and ticks it on the simulated clock, so a replay gives the same alerts every time.
Its only side effect is the alert store (SQLite; ``:memory:`` in a replay): alert state,
the notification log and the outbox, written in one transaction per tick.

Per message the work is O(1) (update one device, re-evaluate its rules); per tick it is the
number of devices that just went silent, sites that changed and alerts that are active,
never a pass over every tracked device (see :mod:`alerts.tracker`).

**Time.** Every site is judged on its own clock. Without ``clocks`` (``scenario verify``)
that is the ``now`` the caller passes. The live role passes a
:class:`~kordon.streamclock.StreamClocks`: a site that a live stream (``kordon simulate``,
``replay``, ``demo``) announced is judged on that stream's scenario time — ``for``,
keep-firing, silence timeouts, depletion windows, silences, group timers, escalation,
``startsAt``/``endsAt`` — and every other site on ``now``, the wall clock.

A stream's time, as the engine uses it, is what the stream has *evidenced*: the newest
timestamp of its readings received so far (never beyond the follower's extrapolated clock
plus a margin), or its announced ``sim`` less ``TRANSIT_MAX`` wall seconds of the stream
(everything before ``sim`` was handed to the broker, but may still be queued behind other
connections), so time moves on even when no device of the stream publishes. Unlike the
extrapolated clock it cannot run ahead of a publisher that stalls or falls behind its speed,
which would judge every queued device silent; it advances with every message, as the
verifier's clock does. Readings travel on different connections and arrive out of order,
so the timers (``for``, keep-firing, silence, groups) run on a *watermark*: that time less
a transit allowance of ``speed x TRANSIT`` scenario seconds (or 1.5 times the lateness of
the stream's readings seen lately, at most ``speed x TRANSIT_MAX``), by which every reading
is taken to have arrived; a device's conditions hold from its reading's own time, so a
``for`` of 30 s means 30 s of the device's readings, as in the verifier.
A site whose time base changes is settled quietly (:mod:`alerts.settle`,
:meth:`Engine.sync`).
"""

from __future__ import annotations

import dataclasses
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
# Clock announcements and readings travel on different connections: a stream's devices are
# judged silent only this many wall seconds (times its speed, in scenario time) later.
TRANSIT = 0.5
# ... or more, as far as a stream's readings were seen arriving behind its newest (publishers
# queue a device's first readings until its connection is up): 1.5 times the largest lateness
# of the last LATE_WINDOW to 2 x LATE_WINDOW readings, at most TRANSIT_MAX wall seconds.
LATE_WINDOW = 1000
TRANSIT_MAX = 2.0


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
        clocks: StreamClocks | None = None,
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
        if clocks is not None:  # a simulated stream forecasts against its own plan
            schedules = StreamPlans(clocks, schedules)
        self.foresight = _foresight(self.rulebook, fleet, schedules, self._battery_model)
        self.inhibitor = Inhibitor(rules.inhibit)
        self.silencer = Silencer()
        self.receivers = notify.all_receivers()
        self.targets = targets_of(notify)
        self.dispatcher = Dispatcher(
            build_routes(notify), store.nflog(), store.escalations(), notify.external_url,
            clock_of=self._group_now if clocks is not None else None,
        )
        self.alerts: dict[AlertKey, Alert] = {}
        self.acked: set[tuple[str, float]] = set()
        # Time bases (see the module docstring): site -> stream whose scenario time it is
        # judged on; sites once settled -> readings stamped before this are ignored there.
        self.clocks = clocks
        self.streamed: dict[str, str] = {}
        self.cutoff: dict[str, float] = {}
        self._evidence: dict[str, float] = {}  # stream -> its time, as evidenced (docstring)
        self._late: dict[str, list[float]] = {}  # stream -> [max now, max before, count]
        self._speeds: dict[str, float] = {}  # stream -> its speed, as of the last sync
        self._dirty_at: dict[str, float] = {}  # streamed site -> when its picture changed
        self._stream_sites: dict[str, set[str]] = {}  # stream -> the sites it holds
        self._tick_now = now
        self.on_transition = on_transition
        self.wake = False  # something changed that a tick should look at soon
        self._dirty_sites: set[str] = set()
        self._changed: list[Alert] = []
        self._early: list[Transition] = []  # streamed alerts stepped at reading time
        self._data_version = -1
        self._next_persist = now + PERSIST_EVERY
        self.counters = {"messages": 0, "ignored": 0, "ticks": 0, "notifications": 0,
                         "switches": 0}
        self._restore(now)

    # ------------------------------------------------------------------ restart
    def _restore(self, now: float) -> None:
        # Sites once settled (a simulation played them): what came before is not news.
        self.cutoff.update(self.store.settled_sites())
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
            if name == "DeviceOffline" and self._restore_silent(labels, record.active_at):
                alert.set_condition(True, now)  # silence is its evidence, and it goes on
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
        if site in self.cutoff:
            return False  # a settled (simulated) site: its devices are unknown until they report
        state = self.tracker.ensure(site, kind, device, active_at, self._timeout_of)
        # Silent since its timeout ran out before the alert became active.
        self.tracker.restore_silent(state, active_at - state.timeout)
        return True

    def stream_live(self, now: float) -> None:
        """The subscription is in place: restored alerts wait ``restore_grace`` from now, not
        from the engine's start, for a slow start must not resolve them on no evidence."""
        until = now + self.settings.restore_grace
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
    def handle(self, topic: str, payload: bytes, now: float) -> None:
        """One MQTT message as the broker delivered it (``now``: the wall clock's time)."""
        self.counters["messages"] += 1
        try:
            ref = parse_topic(topic)
        except TopicError:
            self.counters["ignored"] += 1
            return
        tracker = self.tracker
        site = ref.site
        stream = self.streamed.get(site)
        limits = self.limits
        decode_now = now
        evidence = now
        if stream is not None:
            limits, decode_now = self._stream_limits(site)
            evidence = self._evidence.get(stream, now)
            now = self._watermark(stream, evidence)
        cutoff = self.cutoff.get(site)
        if cutoff is not None and not self._fresh(ref, payload, cutoff, decode_now, limits):
            self.counters["ignored"] += 1
            return
        state = tracker.ensure(site, ref.kind, ref.device, now, self._timeout_of, stream)
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
            decoded = decode_telemetry(payload, ref.kind, decode_now, limits)
            readings = decoded.readings
            if cutoff is not None:
                readings = [r for r in readings if r.ts_ns >= cutoff * 1e9]
            if not readings:
                self.counters["ignored"] += 1
                return
            if stream is not None:
                # A stream's device was last seen at its reading's time; the stream's time
                # moves on to it (see the module docstring).
                newest = max(r.ts_ns for r in readings) / 1e9
                self._lateness(stream, evidence - newest)
                self._advance(stream, newest)
                tracker.seen(state, newest)
                now = newest  # the device's conditions hold from its reading's time
            else:
                tracker.seen(state, now)
            state.will_offline = False
            rules = self.rulebook.device(state.kind, state.site, state.device)
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
            if stream is not None:  # the site's picture changed at this reading's time
                self._dirty_at[site] = min(self._dirty_at.get(site, now), now)
            self.wake = True
        elif ("SitePowerOutage", state.site, "") in self.alerts:
            # The incident text follows the site's running figures at the next tick.
            self._dirty_sites.add(state.site)

    def _fresh(
        self, ref: TopicRef, payload: bytes, cutoff: float, now: float, limits: DecodeLimits
    ) -> bool:
        """At a site that changed its time base: does this message tell something new?

        A device the engine forgot at the switch is unknown, not offline, until it publishes
        ``online`` or a reading stamped after the switch; an ``offline`` status (the
        simulator's goodbye, a retained last will) or an old reading still in flight is not
        news."""
        if self.tracker.get(ref.site, ref.device) is not None:
            return True
        if ref.channel is Channel.STATUS:
            return payload.strip() == b"online"
        decoded = decode_telemetry(payload, ref.kind, now, limits)
        return any(r.ts_ns >= cutoff * 1e9 for r in decoded.readings)

    # ------------------------------------------------------------------ time
    def site_now(self, site: str, now: float) -> float:
        """The time ``site`` is judged at: its stream's watermark, else ``now``."""
        stream = self.streamed.get(site)
        if stream is None:
            return now
        return self._watermark(stream, self._evidence.get(stream, now))

    def _watermark(self, stream: str, evidence: float) -> float:
        """The stream's time up to which every reading is taken to have arrived: its
        evidenced time less the transit allowance. Timers (``for``, keep-firing, silence,
        groups) run on it; a condition holds from the time of the reading that set it."""
        return evidence - self._allowance(stream, self._speeds.get(stream, 1.0))

    def _advance(self, stream: str, when: float) -> float:
        current = self._evidence.get(stream)
        if current is None or when > current:
            self._evidence[stream] = current = when
        return current

    def _lateness(self, stream: str, late: float) -> None:
        window = self._late.get(stream)
        if window is None:
            window = self._late[stream] = [0.0, 0.0, 0.0]
        if late > window[0]:
            window[0] = late
        window[2] += 1
        if window[2] >= LATE_WINDOW:
            window[1], window[0], window[2] = window[0], 0.0, 0.0

    def _allowance(self, stream: str, speed: float) -> float:
        """Scenario seconds a stream's device is given beyond its silence timeout."""
        window = self._late.get(stream)
        seen = 1.5 * max(window[0], window[1]) if window is not None else 0.0
        return max(TRANSIT * speed, min(seen, TRANSIT_MAX * speed))

    def _stream_limits(self, site: str) -> tuple[DecodeLimits, float]:
        """Decoding limits at a streamed site and the time "future" is measured from: the
        follower's extrapolated clock, with a margin of two wall seconds of the stream."""
        assert self.clocks is not None
        speed = self.clocks.speed(site)
        margin = max(self.limits.max_future_seconds, 2.0 * speed)
        return (
            dataclasses.replace(self.limits, max_future_seconds=margin),
            self.clocks.now(site),
        )

    def _group_now(self, site: str) -> float:
        return self.site_now(site, self._tick_now)

    def _alert_now(self, alert: Alert) -> float:
        return self.site_now(alert.key[1], self._tick_now)

    def _silence_now(self, stream: str) -> float:
        """When a stream's devices are judged silent: its watermark."""
        if stream not in self._stream_sites:
            return -float("inf")  # nothing of it is tracked any more
        return self._watermark(stream, self._evidence.get(stream, -float("inf")))

    def stream_speed(self) -> float:
        """The fastest stream the engine follows (0 when none): the role ticks that often."""
        if self.clocks is None or not self._stream_sites:
            return 0.0
        return max(
            (self.clocks.speed(next(iter(sites))) for sites in self._stream_sites.values()
             if sites),
            default=0.0,
        )

    def sync(self, now: float) -> list[Notification]:
        """Settle every site whose time base changed (``StreamClocks.poll``); returns the
        resolved notices queued (at most one per site and receiver)."""
        if self.clocks is None:
            return []
        notes: list[Notification] = []
        for switch in self.clocks.poll():
            notes.extend(self._settle(switch, now))
        for stream, sites in self._stream_sites.items():
            site = next(iter(sites))
            self._speeds[stream] = self.clocks.speed(site)
            announced = self.clocks.announced(site)
            if announced is not None:
                # What was announced may still be queued behind the readings: it counts only
                # TRANSIT_MAX wall seconds late (time moves on when no device publishes).
                self._advance(stream, announced - TRANSIT_MAX * self.clocks.speed(site))
        return notes

    def _settle(self, switch: Switch, now: float) -> list[Notification]:
        """See :mod:`alerts.settle`: end the site's alerts quietly, forget its devices."""
        site = switch.site
        self.counters["switches"] += 1
        assert self.clocks is not None
        old = self.streamed.pop(site, None)
        last = now if old is None else self._evidence.get(old, switch.at)
        if old is not None:
            sites = self._stream_sites.get(old)
            if sites is not None:
                sites.discard(site)
                if not sites:
                    del self._stream_sites[old]
                    self._evidence.pop(old, None)
                    self._late.pop(old, None)
                    self._speeds.pop(old, None)
        if switch.after is not None:
            self.streamed[site] = switch.after
            self._stream_sites.setdefault(switch.after, set()).add(site)
            self._speeds[switch.after] = self.clocks.speed(site)
            announced = self.clocks.announced(site)
            start = self._advance(switch.after, switch.at if announced is None else announced)
            self.cutoff[site] = start - TRANSIT * max(self.clocks.speed(site), 1.0)
            how = f"began to follow the scenario clock of stream {switch.after}"
        else:
            self.cutoff[site] = max(switch.at, last)
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
        self.store.settle_site(site, self.cutoff[site])
        self._dirty_sites.discard(site)
        self._dirty_at.pop(site, None)
        records = [a.record(a.ends_at or last) for a in ended]
        if records:
            self.store.save_alerts(records)
        if decided.to_persist():
            self.store.record_notifications(
                fan_out(decided.notifications, self.targets), decided.nflog,
                decided.escalations, now,
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

    def _evaluate_device(self, state: DeviceState, now: float) -> None:
        rules = self.rulebook.device(state.kind, state.site, state.device)
        site, device = state.site, state.device
        if site in self.streamed:
            self._catch_up(state, now)
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
        # After a restart the devices report one by one (statuses first): until each has
        # reported, the site's picture is partial, and a partial "grid fine" decides nothing.
        whole = all(state.has_data or state.offline for state in site.devices.values())
        active, notes = site_power_outage(site, rules)
        self._set(("SitePowerOutage", site.name, ""), rules.outage, active, notes,
                  lambda: {"alertname": "SitePowerOutage", "site": site.name,
                           "severity": rules.outage.severity}, now, partial=not whole)
        outage = self.alerts.get(("SitePowerOutage", site.name, ""))
        if outage is not None and outage.state is not AlertState.RESOLVED and whole:
            # Only a whole picture: after a restart the devices report one by one, and a
            # half-rebuilt picture compared with what was told would page the same news again.
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
        """The engine time at which :meth:`tick` next has work, without new input.

        Only what runs on the ``now`` the caller passes (the wall clock): sites on a stream's
        clock are ticked often enough by the role instead (:meth:`stream_speed`)."""
        streamed = self.streamed
        candidates = [
            self.tracker.next_deadline(),
            self.dispatcher.next_due((lambda g: g.site not in streamed) if streamed else None),
            self.silencer.next_change(self._last_tick),
            self.foresight.next_due((lambda s: s not in streamed) if streamed else None)
            if self.foresight is not None else None,
            self.battery.next_due((lambda s: s not in streamed) if streamed else None),
        ]
        for alert in self.alerts.values():
            if not streamed or alert.key[1] not in streamed:
                candidates.append(alert.next_due())
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    _last_tick = 0.0

    def tick(self, now: float) -> list[Notification]:
        """One pass of the pipeline: sweep -> step -> silence/inhibit -> dispatch -> persist.

        Returns the notifications queued in the outbox.
        """
        settled = self.sync(now)
        self._last_tick = now
        self._tick_now = now
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
        return settled + decided.notifications if settled else decided.notifications

    def _sweep(self, now: float) -> None:
        """Time-based conditions: devices gone silent, sites whose picture changed, and the
        silences and acks the API wrote since the last tick."""
        streamed = self.streamed
        dirty_at = self._dirty_at
        for state in self.tracker.sweep(now, self._silence_now if streamed else None):
            at = now
            if state.site in streamed:  # silent since its timeout ran out, in stream time
                at = state.last_seen + state.timeout
                dirty_at[state.site] = min(dirty_at.get(state.site, at), at)
            self._evaluate_offline(state, at)
            self._dirty_sites.add(state.site)
        for site, device in self.battery.sweep(
            now, (lambda s: self.site_now(s, now)) if streamed else None
        ):
            state = self.tracker.get(site, device)
            if state is not None:
                self._evaluate_device(state, self.site_now(site, now) if streamed else now)
        for name in sorted(self._dirty_sites):
            site = self.tracker.sites.get(name)
            if site is not None:
                at = now
                if name in streamed:
                    # The picture changed at the reading that changed it; the watermark lags
                    # the readings by the transit allowance (minutes at speed), so stamping
                    # the change with it would start an incident before its cut.
                    at = dirty_at.get(name, self.site_now(name, now))
                self._evaluate_site(site, at)
        self._dirty_sites.clear()
        dirty_at.clear()
        self._reload()
        if self.foresight is not None:
            now_of = (lambda s: self.site_now(s, now)) if streamed else None
            if self.foresight.due(now, now_of):
                self._foresee(now, now_of)

    def _battery_model(self, site: str, device: str):  # type: ignore[no-untyped-def]
        """The engine's learned (and stored) battery model of a UPS, for the forecast."""
        unit = self.battery.units.get((site, device))
        return unit.model if unit is not None else None

    def _foresee(self, now: float, now_of: Callable[[str], float] | None) -> None:
        """ScheduledOutageAtRisk: each UPS's forecast against its site's scheduled cuts, on
        the site's own clock (a stream's scenario time)."""
        assert self.foresight is not None
        for found in self.foresight.evaluate(now, now_of):
            state = self.tracker.get(found.site, found.device)
            if state is None:
                continue
            self._set(("ScheduledOutageAtRisk", found.site, found.device), found.rule,
                      found.active, found.annotations,
                      lambda s=state, r=found.rule: self._labels("ScheduledOutageAtRisk", r, s),
                      found.at)

    def _step(self, now: float) -> list[Transition]:
        """Move every alert through its life cycle, inhibitors first (PRIORITY)."""
        transitions, self._early = self._early, []
        streamed = self.streamed
        for alert in sorted(self.alerts.values(), key=lambda a: (a.priority, a.key)):
            at = self.site_now(alert.key[1], now) if streamed else now
            self._step_alert(alert, at, transitions)
        return transitions

    def _step_alert(self, alert: Alert, at: float, transitions: list[Transition]) -> None:
        change = alert.step(at)
        if change is None:
            return
        if change is AlertState.INACTIVE:
            del self.alerts[alert.key]
            return
        if change is AlertState.FIRING:
            self.dispatcher.add(alert, at)
        self._changed.append(alert)
        when = alert.starts_at if change is AlertState.FIRING else alert.ends_at
        transitions.append(
            Transition(at if when is None else when, change, alert.fingerprint,
                       dict(alert.labels), dict(alert.annotations))
        )

    def _catch_up(self, state: DeviceState, now: float) -> None:
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
            if alert is not None and due is not None and due < now:
                self._step_alert(alert, now, self._early)

    def _mute(self, now: float) -> set[str]:
        """Mark silenced and inhibited alerts; returns those a pending inhibitor holds back."""
        live = [a for a in self.alerts.values() if a.state is not AlertState.RESOLVED]
        self.silencer.apply(live, now, self._alert_now if self.streamed else None)
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
        streamed = self.streamed
        records = [
            a.record(self.site_now(a.key[1], now) if streamed else now)
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
                now,
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
