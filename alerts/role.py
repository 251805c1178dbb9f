"""``kordon run --roles alerts``: the engine fed by MQTT and ticked by the wall clock.

It also follows the stream clocks (``kordon/v1/clock/+``, :mod:`kordon.streamclock`): the
sites a live stream announced are judged on that stream's scenario time. Ticks come on every
change a message makes, when the engine's next wall-clock deadline is due, and, while a
stream plays at speed N, every ``evaluation_interval / N`` wall seconds (at least every
``MIN_TICK``), so at 600x one evaluation interval of scenario time is still respected.

Subscriptions are plain (not ``$share``) in both MQTT versions, with a clean session of
the role's own client id: the engine needs *every* device's messages (a shared group would
split them between engines, each blind to half the fleet) and the *retained* status
messages on subscribe, which MQTT 5 never sends to a shared subscription. Messages are
QoS 1 and acknowledged on receipt: engine state is derived, and after a restart it is
rebuilt from the retained status messages and fresh telemetry, while active alerts, the
notification log and the outbox come back from SQLite.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from alerts import config as alerting
from alerts.annotations import AnnotationWriter
from alerts.battery.live import BatteryLearning, Unit
from alerts.engine import Engine, Transition
from alerts.foresight.publish import ForesightPublisher, Pending
from alerts.ha import HighAvailability
from alerts.outbox import OutboxSender
from kordon.clock import Clock
from kordon.config import ConfigError, Settings
from kordon.fleet import FleetError, load_fleet
from kordon.model.topics import CLOCK_FILTER, STATUS_FILTER, TELEMETRY_FILTER, is_clock_topic
from kordon.mqtt import connect_async, make_client
from kordon.schedule import ScheduleService
from kordon.schedule.snapshot import snapshot_path
from kordon.storage.alert_store import AlertStore
from kordon.storage.battery_store import BatteryStore
from kordon.storage.stores import open_telemetry_store
from kordon.streamclock import ClockError, StreamClocks

log = logging.getLogger("alerts")

MIN_TICK = 0.005  # wall seconds: the fastest the ticker runs while a stream plays


def tick_wait(interval: float, speed: float, due: float | None, now: float) -> float:
    """Wall seconds the ticker sleeps after a tick (unless a message or a clock wakes it):
    the evaluation interval, shortened by a stream's speed, or until the engine's next
    deadline (``due``), never below ``MIN_TICK``."""
    wait = interval
    if speed > 0:
        wait = max(interval / max(speed, 1.0), MIN_TICK)
    if due is not None:
        wait = min(wait, max(due - now, MIN_TICK))
    return wait


class AlertsRole:
    name = "alerts"

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.config = alerting.load(settings)
        fleet = None
        if settings.fleet.file is not None:
            try:
                fleet = load_fleet(settings.fleet.file)
            except FleetError as exc:
                raise ConfigError(f"fleet.file: {exc}") from None
        # Outage schedules for ScheduledOutageAtRisk (issue 15): read on their own thread.
        self.schedules: ScheduleService | None = None
        if fleet is not None and fleet.schedules and settings.fleet.file is not None:
            self.schedules = ScheduleService(
                fleet, data_dir=Path(settings.data_dir),
                base_dir=Path(settings.fleet.file).resolve().parent, clock=clock,
            )
        self.store = AlertStore.in_data_dir(settings.data_dir)
        self.annotations: AnnotationWriter | None = None
        if self.config.rules.write_influx:
            self.annotations = AnnotationWriter(
                partial(open_telemetry_store, settings.influx),
                self.config.rules.influx_buffer,
                create_database=settings.influx.create_database,
            )
        self._lock = threading.Lock()
        self.clocks = StreamClocks(wall=clock)
        self._bad_clocks: set[str] = set()
        # Learned battery models survive restarts (battery.sqlite); health over time goes to
        # the telemetry store with the annotations (measurement battery_health).
        self.battery_store = BatteryStore.in_data_dir(settings.data_dir)
        battery = BatteryLearning(fleet, self.battery_store, on_model=self._on_battery_model)
        self.engine = Engine(
            self.config.rules,
            self.config.notify,
            self.store,
            clock.now(),
            fleet=fleet,
            on_transition=self._on_transition,
            clocks=self.clocks,
            battery=battery,
            schedules=self.schedules,
        )
        # The forecast for the API (foresight.json) and the cuts for Grafana (outage_schedule).
        self.foresight_out: ForesightPublisher | None = None
        if self.engine.foresight is not None:
            self.foresight_out = ForesightPublisher(
                snapshot_path(settings.data_dir), self.engine.foresight.zone,
                self.annotations.submit_line if self.annotations is not None else None,
            )
        if not self.engine.receivers:
            log.warning(
                "no alert receivers configured (set KORDON_WEBHOOK_URL or notify.receivers): "
                "alerts are evaluated and stored but nobody is notified"
            )
        self.sender = OutboxSender(
            AlertStore.in_data_dir(settings.data_dir), self.config.notify, clock.now
        )
        # Alertmanager pushes, the Watchdog and readiness (/readyz): alerts/ha.py.
        self.ha = HighAvailability(
            self.config, self.store, self.engine, lambda: self.connected.is_set()
        )
        self.client_id = settings.mqtt.client_id_for("alerts")
        self.client = make_client(settings.mqtt, self.client_id, persistent=False)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="alerts-ticker", daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        log.info("alert store %s", self.store.path)
        if self.annotations is not None:
            self.annotations.start()
        self.sender.start()
        self.ha.start()
        if self.schedules is not None:
            self.schedules.start()
        self._ticker.start()
        connect_async(self.client, self.settings.mqtt, persistent=False)
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._stop.set()
        self._wake.set()
        self._ticker.join(timeout)
        self.ha.stop()
        if self.schedules is not None:
            self.schedules.stop()
        self.sender.stop(timeout)
        if self.annotations is not None:
            self.annotations.stop(min(timeout, 5.0))
        self.store.close()
        self.sender.store.close()
        self.battery_store.close()
        log.info("alerts stopped: %s", self.engine.counters)

    def healthy(self) -> bool:
        return self._ticker.is_alive() and self.sender.alive() and self.connected.is_set()

    # ------------------------------------------------------------------ MQTT thread
    def _on_connect(
        self, client: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        self.connected.set()
        self.ha.connected()
        client.subscribe([(TELEMETRY_FILTER, 1), (STATUS_FILTER, 1), (CLOCK_FILTER, 1)])

    def _on_subscribe(self, *_args: object) -> None:
        with self._lock:
            self.engine.stream_live(self.clock.now())
        log.info(
            "alerts ready: subscribed to %s, %s and %s",
            TELEMETRY_FILTER, STATUS_FILTER, CLOCK_FILTER,
        )

    def _on_disconnect(self, *_args: object) -> None:
        self.connected.clear()
        log.warning("MQTT connection lost; reconnecting")

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        self.ha.message()
        if is_clock_topic(message.topic):
            self._on_clock(message)
            return
        try:
            with self._lock:
                self.engine.handle(message.topic, message.payload, self.clock.now())
                wake = self.engine.wake
                parts = message.topic.split("/")  # kordon/v1/{site}/{kind}/{device}/...
                if len(parts) == 6 and not message.retain:  # a retained status is old news
                    self.ha.heard(parts[2], parts[4])
        except Exception:  # one bad message must not stop alerting
            log.exception("error handling a message from %s", message.topic)
            return
        if wake:
            self._wake.set()

    def _on_clock(self, message: paho.MQTTMessage) -> None:
        """A stream clock announcement: follow it, and settle the sites that switched."""
        try:
            with self._lock:
                self.clocks.handle(message.topic, message.payload, bool(message.retain))
                notes = self.engine.sync(self.clock.now())
        except ClockError as exc:
            if message.topic not in self._bad_clocks:
                self._bad_clocks.add(message.topic)
                log.warning("ignoring the stream clock on %s: %s", message.topic, exc)
            return
        except Exception:
            log.exception("error handling the stream clock on %s", message.topic)
            return
        if notes:
            self.sender.wakeup.set()
        self._wake.set()

    # ------------------------------------------------------------------ ticker
    def _tick_loop(self) -> None:
        interval = self.config.rules.evaluation_interval
        while not self._stop.is_set():
            try:
                with self._lock:
                    notes = self.engine.tick(self.clock.now())
                    due = self.engine.next_due()
                    speed = self.engine.stream_speed()
                    queued = self.ha.after_tick(self.clock.now())
                    published = self._collect_foresight()
                if notes or queued:
                    self.sender.wakeup.set()
                if published is not None and self.foresight_out is not None:
                    self.foresight_out.write(published)
            except Exception:
                log.exception("alert evaluation failed; retrying")
                due = None
                speed = 0.0
            wait = tick_wait(interval, speed, due, self.clock.now())
            self._wake.wait(wait)
            self._wake.clear()

    def _collect_foresight(self) -> Pending | None:
        if self.foresight_out is None or self.engine.foresight is None:
            return None
        return self.foresight_out.collect(self.engine.foresight, self.clock.now())

    def _on_transition(self, event: Transition) -> None:
        log.info(
            "%s %s %s: %s",
            event.state.value,
            event.labels.get("alertname"),
            "/".join(filter(None, (event.labels.get("site"), event.labels.get("device")))),
            event.annotations.get("summary", ""),
        )
        if self.annotations is not None:
            self.annotations.submit(event)


    def _on_battery_model(self, unit: Unit, line: str) -> None:
        model = unit.model
        if model is not None and model.health_pct is not None:
            log.info("battery %s/%s: health %.0f%% from %d discharges (confidence %.2f)",
                     unit.site, unit.device, model.health_pct, model.discharges,
                     model.confidence)
        if self.annotations is not None:
            self.annotations.submit_line(line)


def build(settings: Settings, clock: Clock) -> AlertsRole:
    return AlertsRole(settings, clock)


__all__ = ["AlertsRole", "build"]
