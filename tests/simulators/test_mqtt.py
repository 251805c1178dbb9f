"""Simulated devices on a real Mosquitto: telemetry, retained status and last wills on the wire.

Each test watches the broker with an MQTT 5 subscriber, so it sees what any consumer would:
retained flags, and the ``origin`` user property that tells a device's own ``offline`` from
the last will the broker sends for it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest

from composition import cli
from kordon.model.payload import decode_telemetry
from kordon.model.topics import Channel, parse_topic, status_topic
from simulators.mqtt import BrokerTarget, FleetConnections
from testkit import wait_until


@dataclass(frozen=True)
class Seen:
    at: float  # monotonic
    topic: str
    payload: bytes
    retain: bool
    origin: str | None


class Watcher:
    """An MQTT 5 subscriber that keeps everything it receives."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[Seen] = []
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        props = getattr(message.properties, "UserProperty", None) or []
        origin = dict(props).get("origin")
        seen = Seen(time.monotonic(), message.topic, message.payload, bool(message.retain), origin)
        with self._lock:
            self.messages.append(seen)

    def on(self, topic: str) -> list[Seen]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def site() -> str:
    return f"sim-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def watcher(mosquitto, site):  # type: ignore[no-untyped-def]
    w = Watcher(mosquitto.host, mosquitto.port, f"kordon/v1/{site}/#")
    yield w
    w.close()


def v5(mosquitto) -> BrokerTarget:  # type: ignore[no-untyped-def]
    return BrokerTarget(mosquitto.host, mosquitto.port, protocol="5")


def connect_device(conns: FleetConnections, site: str, device: str) -> str:
    topic = status_topic(site, "radio", device)
    client_id = f"kordon-sim/{site}/radio/{device}"
    conns.connect(client_id, topic, keepalive=2)
    wait_until(lambda: conns.devices[client_id].connected or conns.pump(0.05), 10, what="CONNACK")
    return client_id


def test_crash_makes_the_broker_send_the_last_will_at_once(mosquitto, watcher, site):
    conns = FleetConnections(v5(mosquitto), keepalive=2)
    client_id = connect_device(conns, site, "radio-1")
    conns.crash(client_id)
    crashed = time.monotonic()
    topic = status_topic(site, "radio", "radio-1")
    will = wait_until(lambda: watcher.on(topic), 5, what="the last will")[0]
    assert will.payload == b"offline" and will.origin == "will"
    assert will.at - crashed < 1.5, "a closed socket needs no keep-alive expiry"
    conns.close()


def test_hang_keeps_the_socket_open_until_keepalive_expiry_then_the_will_comes(
    mosquitto, watcher, site
):
    conns = FleetConnections(v5(mosquitto), keepalive=2)
    client_id = connect_device(conns, site, "radio-2")
    connected = time.monotonic()  # the CONNECT was the device's last packet
    conns.hang(client_id)
    topic = status_topic(site, "radio", "radio-2")
    will = wait_until(lambda: watcher.on(topic), 15, what="the last will")[0]
    assert will.payload == b"offline" and will.origin == "will"
    # Mosquitto gives up 1.5 x the 2-s keep-alive after the last packet, not at once: a
    # hung device stays "online" that long. (No upper bound: a loaded CI machine is slow.)
    assert will.at - connected >= 2.5
    conns.close()


def test_clean_power_off_publishes_offline_itself_and_no_will_follows(mosquitto, watcher, site):
    conns = FleetConnections(v5(mosquitto), keepalive=2)
    connect_device(conns, site, "radio-3")
    conns.close()  # powers every device off cleanly
    topic = status_topic(site, "radio", "radio-3")
    own = wait_until(lambda: watcher.on(topic), 5, what="offline")[0]
    assert own.payload == b"offline" and own.origin == "device"
    time.sleep(4)  # longer than the keep-alive expiry: a will would have arrived by now
    assert [m.origin for m in watcher.on(topic)] == ["device"]


SCENARIO = """\
# test
fleet: fleet.yaml
start: 2024-12-16T08:00:00+02:00
duration: 3m
timeline:
  - {at: 1m, device_crash: {site: SITE, device: radio-1, restart_after: 1m}}
"""
FLEET = """\
sites:
  SITE:
    devices:
      ups-1: {kind: ups, rated_power_w: 20000, battery_wh: 8000, blocks: 32}
      scanner-1: {kind: scanner, fed_by: ups-1}
      radio-1: {kind: radio}
"""


def test_kordon_simulate_publishes_per_the_contract_and_replay_republishes_it(
    mosquitto, watcher, site, tmp_path: Path, monkeypatch
):
    (tmp_path / "fleet.yaml").write_text(FLEET.replace("SITE", site))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("SITE", site))
    monkeypatch.setenv("KORDON_MQTT_URL", mosquitto.url)
    monkeypatch.delenv("KORDON_CONFIG", raising=False)
    assert cli.main(["simulate", str(scenario), "--fast", "--quiet", "--start", "now"]) == 0

    telemetry = [m for m in watcher.messages if m.topic.endswith("/telemetry")]
    # 3 devices x 18 ticks, minus the radio's 6 readings while crashed
    wait_until(lambda: len([m for m in watcher.messages if m.topic.endswith("/telemetry")]) >= 48,
               10, what="all telemetry")  # fmt: skip
    telemetry = [m for m in watcher.messages if m.topic.endswith("/telemetry")]
    assert len(telemetry) == 48
    for message in telemetry:
        ref = parse_topic(message.topic)
        decoded = decode_telemetry(message.payload, ref.kind, now=time.time())
        assert not decoded.errors, decoded.errors
    radio = status_topic(site, "radio", "radio-1")
    # The closing "offline" can reach the watcher after the last telemetry: wait for it too.
    wait_until(lambda: len(watcher.on(radio)) >= 4, 10, what="the radio's four status changes")
    assert [m.payload for m in watcher.on(radio)] == [b"online", b"offline", b"online", b"offline"]
    assert [m.origin for m in watcher.on(radio)][1] is None  # 3.1.1 will: no properties
    statuses = {m.topic for m in watcher.messages if parse_topic(m.topic).channel is Channel.STATUS}
    assert len(statuses) == 3

    # record the same scenario, then replay the file: the same payloads arrive again
    record = tmp_path / "rec.jsonl"
    assert cli.main(["simulate", str(scenario), "--record", str(record), "--quiet"]) == 0
    before = len(watcher.messages)
    assert cli.main(["replay", str(record), "--fast", "--quiet"]) == 0
    recorded = [orjson.loads(line) for line in record.read_bytes().splitlines()]
    wanted = [r for r in recorded if r.get("action", "publish") in ("publish", "will")]
    wait_until(lambda: len(watcher.messages) - before >= len(wanted), 10, what="the replay")
    replayed = watcher.messages[before:]
    assert [(m.topic, m.payload) for m in replayed] == [
        (r["topic"], r["payload"].encode()) for r in wanted
    ]
