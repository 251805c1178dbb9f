"""Follows device telemetry and availability on the broker, for a board that is never stale.

A plain, non-persistent QoS 0 subscription: the API must not hold a broker session (and a
queue) of its own while it is away, and a missed message costs nothing because the periodic
InfluxDB read repairs it. Payloads are checked with the same decoder as the collector's, so
the API shows only what the collector would store.

It also follows the stream clocks (``kordon/v1/clock/+``, docs/simulators.md#stream-clock):
a site a live stream announced is judged on that stream's scenario time (``DeviceStates``
holds the :class:`~kordon.streamclock.StreamClocks`), every other site on the wall clock.
"""

from __future__ import annotations

import logging
import threading
import uuid

import paho.mqtt.client as paho

from api.state import DeviceStates
from kordon.clock import Clock
from kordon.config import MqttSettings
from kordon.model.payload import decode_telemetry
from kordon.model.topics import (
    CLOCK_FILTER,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    Channel,
    TopicError,
    is_clock_topic,
    parse_topic,
)
from kordon.mqtt import connect_async, make_client
from kordon.streamclock import ClockError

log = logging.getLogger("api.live")


class LiveFollower:
    def __init__(self, settings: MqttSettings, states: DeviceStates, clock: Clock) -> None:
        self.states = states
        self.clock = clock
        self.settings = settings
        client_id = f"{settings.client_id_for('api')}-{uuid.uuid4().hex[:6]}"[:64]
        self.client = make_client(settings, client_id, persistent=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.messages = 0
        self.rejected = 0
        self.clock_errors = 0

    def start(self) -> None:
        connect_async(self.client, self.settings, persistent=False)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: paho.Client, _u: object, _f: object, reason: object, _p: object = None
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused the API's live subscription: %s", reason)
            return
        client.subscribe([(TELEMETRY_FILTER, 0), (STATUS_FILTER, 0), (CLOCK_FILTER, 0)])
        self.connected.set()

    def _on_disconnect(self, *_args: object) -> None:
        self.connected.clear()

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        self.messages += 1
        if is_clock_topic(message.topic):
            try:
                self.states.clocks.handle(message.topic, message.payload, bool(message.retain))
            except ClockError as exc:
                self.clock_errors += 1
                if self.clock_errors == 1 or self.clock_errors % 1000 == 0:
                    log.warning("ignored a stream clock announcement: %s", exc)
            return
        try:
            ref = parse_topic(message.topic)
        except TopicError:
            self.rejected += 1
            return
        if ref.channel is Channel.STATUS:
            state = message.payload.strip().decode("utf-8", errors="replace")
            if state in ("online", "offline"):
                # Stamped with the site's time: a simulated device's status and its readings
                # are then on one clock (the stream's), so "offline since" compares right.
                now = self.states.clocks.now(ref.site)
                self.states.apply_availability(
                    ref.site, ref.kind, ref.device, state, int(now * 1e9)
                )
            return
        # The collector's rules, on the collector's (wall) clock: show only what it stores.
        decoded = decode_telemetry(message.payload, ref.kind, self.clock.now())
        if decoded.errors:
            self.rejected += 1
        if decoded.readings:
            self.states.apply_readings(ref.site, ref.kind, ref.device, decoded.readings)
