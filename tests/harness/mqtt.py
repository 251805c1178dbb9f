"""Plain paho clients for tests: a publisher that records PUBACKs, and a recording subscriber."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.harness.waiting import wait_until


class Publisher:
    """QoS 1 publisher that remembers which messages the broker acknowledged."""

    def __init__(self, host: str, port: int, max_inflight: int = 1000) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv311)
        self.client.max_inflight_messages_set(max_inflight)
        self.acked: set[int] = set()
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, what="publisher connection")

    def _on_publish(self, _c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self.acked.add(mid)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                wait: bool = True) -> paho.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait and qos:
            info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Recorder:
    """Subscribes and keeps every message it receives."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(host, port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError(f"no SUBACK for {topic}")

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [message.payload for message in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
