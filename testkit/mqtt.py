"""Plain paho clients for tests: a publisher that records PUBACKs, and a recording subscriber."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from testkit.waiting import wait_until


class Publisher:
    """QoS 1 publisher that remembers which messages the broker acknowledged."""

    def __init__(self, host: str, port: int, max_inflight: int = 1000) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
        )
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

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        wait: bool = True,
    ) -> paho.MQTTMessageInfo:
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
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}"
        )
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


def clear_session(host: str, port: int, client_id: str) -> None:
    """End a persistent MQTT 5 session: connect its client id with a session expiry of 0.

    A collector that leaves a shared group keeps its session (expiry 1 h) and the broker goes
    on queueing its round-robin share for nobody; a measurement that leaves such a session
    behind takes a share of every later run's stream on the same broker.
    """
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(host, port, clean_start=True, properties=properties)
    client.loop_start()
    try:
        wait_until(client.is_connected, 10, what=f"{client_id} to connect")
    finally:
        client.disconnect()
        client.loop_stop()


class StreamPublisher:
    """Publishes numbered UPS readings from many devices at a steady rate, in a thread.

    Remembers which (device, seq) the broker acknowledged, which is what the durability
    tests compare against InfluxDB.
    """

    def __init__(
        self,
        host: str,
        port: int,
        site: str,
        devices: int,
        rate: float,
        start_ts: int = 1_790_000_000,
    ) -> None:
        import orjson

        self._orjson = orjson
        self.site = site
        self.devices = [f"ups-{i:03d}" for i in range(devices)]
        self.rate = rate
        self.start_ts = start_ts
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"stream-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
            clean_session=False,
        )
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.on_publish = self._on_publish
        self._pending: dict[int, tuple[str, int]] = {}
        self._early: set[int] = set()
        self.acked: set[tuple[str, int]] = set()
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client.connect(host, port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, what="stream publisher connection")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, _c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        # The PUBACK can arrive before publish() has returned the mid to the sending thread.
        with self._lock:
            key = self._pending.pop(mid, None)
            if key is not None:
                self.acked.add(key)
            else:
                self._early.add(mid)

    def start(self) -> StreamPublisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        import time

        seq = 0
        interval = len(self.devices) / self.rate
        next_round = time.monotonic()
        while not self._stop.is_set():
            for device in self.devices:
                payload = self._orjson.dumps(
                    {
                        "ts": self.start_ts + seq,
                        "seq": seq,
                        "metrics": {"battery.charge": 100.0 - seq % 100, "ups.status": "OL"},
                    }
                )
                # Never hold our lock while paho holds its own (the network thread calls
                # _on_publish with paho's lock taken).
                info = self.client.publish(
                    f"kordon/v1/{self.site}/ups/{device}/telemetry", payload, qos=1
                )
                with self._lock:
                    if info.mid in self._early:
                        self._early.discard(info.mid)
                        self.acked.add((device, seq))
                    else:
                        self._pending[info.mid] = (device, seq)
                self.sent += 1
            seq += 1
            next_round += interval
            delay = next_round - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def stop(self, settle: float = 30) -> None:
        """Stop sending and wait until the broker acknowledged everything already sent."""
        self._stop.set()
        self._thread.join()
        wait_until(lambda: not self._pending, settle, what="PUBACKs for everything sent")
        self.client.disconnect()
        self.client.loop_stop()
