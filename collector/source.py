"""The MQTT side of the collector: persistent session, QoS 1, manual acknowledgements.

MQTT 5 uses a shared subscription (``$share/<group>-collector/...``) so several collectors
split the stream, and a session expiry interval; MQTT 3.1.1 uses a plain subscription with
``clean_session=False``. After every (re)connect the session-present flag is checked and the
subscriptions are made again when the broker has forgotten the session: otherwise a
collector can sit connected and receive nothing after a broker restart without persistence.

A shared subscription is made again after *every* connect, session kept or not: Mosquitto
2.0.11 restores a persistent session (its queued messages, the session-present flag) after a
restart but not its shared subscriptions (``persist__subs_save`` writes a topic's plain
subscribers only), so a member would sit connected and subscribed to nothing while the broker
acknowledges and drops the stream (found by ``testkit/chaos/allinone.py``). Subscribing again
to a shared subscription the session still has changes nothing (Mosquitto only updates its
QoS, and MQTT 5 sends no retained messages to shared subscriptions), and the session's
in-flight messages still come back, so acknowledgement tracking carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from kordon.config import MqttSettings
from kordon.model.topics import STATUS_FILTER, TELEMETRY_FILTER, shared
from kordon.mqtt import connect_async, make_client

log = logging.getLogger(__name__)

MessageHandler = Callable[[paho.MQTTMessage], None]


class MqttSource:
    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        on_message: MessageHandler,
        on_new_session: Callable[[], None],
        on_connected: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self._on_new_session = on_new_session
        self._on_connected = on_connected
        self.client = make_client(settings, client_id, persistent=True, manual_ack=True)
        # Outgoing dead letters: bounded, so a flood of bad input cannot grow memory.
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(10_000)
        self.client.on_connect = self._handle_connect
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_subscribe = self._handle_subscribe
        self.client.on_message = lambda _c, _u, message: on_message(message)
        self.connected = threading.Event()
        self.ready = threading.Event()

    @property
    def filters(self) -> list[str]:
        if self.settings.protocol == "5":
            group = f"{self.settings.shared_group}-collector"
            return [shared(group, TELEMETRY_FILTER), shared(group, STATUS_FILTER)]
        return [TELEMETRY_FILTER, STATUS_FILTER]

    def start(self) -> None:
        connect_async(self.client, self.settings, persistent=True)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        self.client.ack(mid, qos)

    def _handle_connect(
        self,
        client: paho.Client,
        _userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _props: object,
    ) -> None:
        if reason.is_failure:
            log.error(
                "MQTT connection refused by %s:%s: %s",
                self.settings.host,
                self.settings.port,
                reason,
            )
            return
        self.connected.set()
        self._on_connected()
        if flags.session_present and self.settings.protocol != "5":
            log.info(
                "MQTT connected to %s:%s, session kept", self.settings.host, self.settings.port
            )
            self.ready.set()
            log.info("collector ready")
            return
        if flags.session_present:
            log.info(
                "MQTT connected to %s:%s, session kept: subscribing to %s again (the broker "
                "may have lost shared subscriptions over a restart)",
                self.settings.host,
                self.settings.port,
                ", ".join(self.filters),
            )
        else:
            log.info(
                "MQTT connected to %s:%s without a session: subscribing to %s",
                self.settings.host,
                self.settings.port,
                ", ".join(self.filters),
            )
            self._on_new_session()
        if self.settings.protocol == "5":
            options = SubscribeOptions(
                qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE
            )
            client.subscribe([(topic, options) for topic in self.filters])
        else:
            client.subscribe([(topic, 1) for topic in self.filters])

    def _handle_subscribe(
        self,
        _client: paho.Client,
        _userdata: object,
        _mid: int,
        reasons: list[ReasonCode],
        _props: object,
    ) -> None:
        failed = [str(reason) for reason in reasons if reason.is_failure]
        if failed:
            log.error(
                "broker refused the subscription: %s (check the ACL and, for MQTT 5, "
                "shared subscription support)",
                ", ".join(failed),
            )
            return
        self.ready.set()
        log.info("collector ready")

    def _handle_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: object,
        reason: ReasonCode,
        _props: object,
    ) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("MQTT connection lost (%s); reconnecting", reason)
