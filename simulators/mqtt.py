"""Publish simulated devices to a real broker, one MQTT connection per device.

A last will belongs to a connection, so a fleet whose devices each go offline on their own
needs a connection per device, as in the field. A paho client with ``loop_start`` costs a
thread, which 500 devices cannot afford; here every client runs on paho's external-loop API
(``loop_read``/``loop_write``/``loop_misc``) from one selector on the calling thread.

The connections act out the :class:`~simulators.events.Action` of each event:
``CONNECT`` connects with the will ``offline`` (QoS 1, retained) on the device's status topic;
``DISCONNECT`` sends a clean MQTT DISCONNECT (no will); ``CRASH`` closes the socket without one
(the broker sends the will at once); ``HANG`` stops serving the socket but leaves it open, so
the broker sends the will when the keep-alive runs out (1.5 x keep-alive); ``WILL`` events are
the broker's business and are skipped.

Publishing paces itself: at most ``max_in_flight`` QoS 1 messages wait for PUBACK across all
connections, because paho queues without bound behind its 65,555-message cap and a broker
queue that overflows loses messages silently (design brief).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulators.events import OFFLINE, Action, SimEvent

log = logging.getLogger("kordon.simulators.mqtt")

MISC_INTERVAL = 0.5  # how often keep-alive bookkeeping runs for every live connection


class BrokerUnavailable(ConnectionError):
    pass


@dataclass(frozen=True, slots=True)
class BrokerTarget:
    host: str
    port: int
    protocol: str = "3.1.1"  # or "5"
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_settings(cls, mqtt_settings: Any) -> BrokerTarget:
        return cls(
            host=mqtt_settings.host,
            port=mqtt_settings.port,
            protocol=mqtt_settings.protocol,
            username=mqtt_settings.username,
            password=mqtt_settings.password,
            tls=bool(getattr(mqtt_settings, "tls", False)),
        )

    @property
    def v5(self) -> bool:
        return self.protocol == "5"


@dataclass(slots=True)
class _Device:
    client: mqtt.Client
    status_topic: str | None
    connected: bool = False
    unacked: int = 0
    waiting: list[tuple[str, bytes, int, bool, bool]] = field(default_factory=list)


class FleetConnections:
    """MQTT connections of simulated devices, keyed by client id, served by one selector."""

    def __init__(
        self,
        broker: BrokerTarget,
        *,
        keepalive: float | None = None,
        max_in_flight: int = 2000,
    ) -> None:
        self.broker = broker
        self.keepalive_override = keepalive
        self.max_in_flight = max_in_flight
        self.selector = selectors.DefaultSelector()
        self.devices: dict[str, _Device] = {}
        self.silent: list[mqtt.Client] = []  # hung: socket open, nobody serving it
        self.in_flight = 0
        self.sent = 0
        self._last_misc = 0.0
        self.idle_hooks: list[Callable[[bool], None]] = []  # e.g. the stream clock announcer

    # ------------------------------------------------------------------ events
    def handle(self, event: SimEvent, keepalive: float = 30.0) -> None:
        action = event.action
        if action is Action.PUBLISH:
            self._publish(event)
        elif action is Action.CONNECT:
            self.connect(event.client_id, event.topic, keepalive)
        elif action is Action.DISCONNECT:
            self.disconnect(event.client_id)
        elif action is Action.CRASH:
            self.crash(event.client_id)
        elif action is Action.HANG:
            self.hang(event.client_id)
        # Action.WILL: the broker sends it

    def connect(
        self,
        client_id: str,
        status_topic: str | None,
        keepalive: float = 30.0,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        """Connect; with a ``status_topic`` the last will is ``offline`` there, retained;
        ``will`` (topic, payload) sets another retained will (the stream clock's)."""
        old = self.devices.pop(client_id, None)
        if old is not None:  # a hung connection the device forgets when it reboots
            self._drop_socket(old.client)
        client = self._client(client_id)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        elif status_topic is not None:
            will_props = None
            if self.broker.v5:
                will_props = Properties(PacketTypes.WILLMESSAGE)
                will_props.UserProperty = ("origin", "will")
            client.will_set(status_topic, OFFLINE, qos=1, retain=True, properties=will_props)
        device = _Device(client, status_topic)
        client.user_data_set(device)
        self.devices[client_id] = device
        seconds = round(self.keepalive_override or keepalive)
        try:
            client.connect(self.broker.host, self.broker.port, keepalive=max(1, seconds))
        except (OSError, ssl.SSLError) as exc:
            self.devices.pop(client_id, None)
            raise BrokerUnavailable(
                f"cannot connect to the MQTT broker at {self.broker.host}:{self.broker.port}: "
                f"{exc}; start it or set KORDON_MQTT_URL"
            ) from None

    def disconnect(self, client_id: str, timeout: float = 5.0) -> None:
        """Clean DISCONNECT once everything queued before it is written."""
        device = self.devices.pop(client_id, None)
        if device is None:
            return
        client = device.client
        self._settle(device, timeout)  # a device that powers off has had its PUBACKs
        client.disconnect()
        deadline = time.monotonic() + timeout
        while client.socket() is not None and time.monotonic() < deadline:
            self.pump(0.01)

    def crash(self, client_id: str) -> None:
        device = self.devices.pop(client_id, None)
        if device is not None:
            self._settle(device)
            self._drop_socket(device.client)

    def hang(self, client_id: str) -> None:
        device = self.devices.pop(client_id, None)
        if device is None:
            return
        self._settle(device)
        sock = device.client.socket()
        if sock is not None:
            self._unregister(sock)
        self.silent.append(device.client)

    def _publish(self, event: SimEvent) -> None:
        device = self.devices.get(event.client_id)
        if device is None:
            log.debug("dropping a message of %s: not connected", event.client_id)
            return
        own_status = event.topic == device.status_topic
        item = (event.topic, event.payload, event.qos, event.retain, own_status)
        if not device.connected:
            device.waiting.append(item)
            return
        self._send(device, item)
        if self.sent % 200 == 0:
            self.pump(0.0)  # read PUBACKs and write queued packets as we go
        while self.in_flight >= self.max_in_flight:
            self.pump(0.05)
            self._idle(False)

    def send(
        self, client_id: str, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> bool:
        """Publish on a connection of ours (queued until it is connected); False if unknown."""
        device = self.devices.get(client_id)
        if device is None:
            return False
        item = (topic, payload, qos, retain, False)
        if device.connected:
            self._send(device, item)
        else:
            device.waiting.append(item)
        return True

    def _idle(self, waiting: bool) -> None:
        """Called while the publisher waits: ``waiting`` True for the pacer's schedule,
        False while the in-flight window is full (behind schedule)."""
        for hook in self.idle_hooks:
            hook(waiting)

    def _send(self, device: _Device, item: tuple[str, bytes, int, bool, bool]) -> None:
        topic, payload, qos, retain, own_status = item
        props = None
        if own_status and self.broker.v5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("origin", "device")
        device.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos:
            self.in_flight += 1
            device.unacked += 1
        self.sent += 1

    def _settle(self, device: _Device, timeout: float = 5.0) -> None:
        """Let the device finish connecting and writing what it sent before it fails.

        Running flat out, a crash can come microseconds after the connect in wall time; the
        device it stands for had been connected and publishing for minutes.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            not device.connected or device.waiting or device.unacked or device.client.want_write()
        ):
            self.pump(0.01)
        self._forget(device)

    def _forget(self, device: _Device) -> None:
        """Its unacknowledged messages will never be acknowledged now: stop waiting for them."""
        self.in_flight = max(self.in_flight - device.unacked, 0)
        device.unacked = 0

    # ------------------------------------------------------------------ the loop
    def pump(self, timeout: float = 0.0) -> None:
        """Serve every live socket once (waiting up to ``timeout`` for one to be ready)."""
        if self.selector.get_map():
            for key, mask in self.selector.select(timeout):
                client: mqtt.Client = key.data
                if mask & selectors.EVENT_READ:
                    client.loop_read()
                if mask & selectors.EVENT_WRITE and client.socket() is not None:
                    client.loop_write()
        elif timeout:
            time.sleep(timeout)
        now = time.monotonic()
        if now - self._last_misc >= MISC_INTERVAL:
            self._last_misc = now
            for device in list(self.devices.values()):
                device.client.loop_misc()

    def wait(self, seconds: float) -> None:
        """Let time pass while serving the connections."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(min(left, 0.1))
            self._idle(True)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every QoS 1 message sent is acknowledged."""
        deadline = time.monotonic() + timeout
        while self.in_flight > 0 and time.monotonic() < deadline:
            self.pump(0.05)
        return self.in_flight == 0

    def close(self, clean: bool = True) -> None:
        """Power the devices off: each publishes ``offline`` and disconnects cleanly."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not all(d.connected for d in self.devices.values()):
            self.pump(0.05)  # let connections in progress finish, so they can say goodbye
        self.drain(10.0)
        for client_id in list(self.devices):
            device = self.devices[client_id]
            if clean and device.connected and device.status_topic is not None:
                self._send(device, (device.status_topic, OFFLINE, 1, True, True))
            self.disconnect(client_id)
        for client in self.silent:
            self._drop_socket(client)
        self.silent.clear()
        self.selector.close()

    def connected_count(self) -> int:
        """Connected devices (connections with a status topic: not the stream clock's)."""
        return sum(1 for d in self.devices.values() if d.connected and d.status_topic)

    # ------------------------------------------------------------------ paho plumbing
    def _client(self, client_id: str) -> mqtt.Client:
        v5 = self.broker.v5
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set()
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    def _on_connect(
        self, client: mqtt.Client, device: _Device, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused %s: %s", client._client_id, reason)
            return
        device.connected = True
        waiting, device.waiting = device.waiting, []
        for item in waiting:
            self._send(device, item)

    def _on_publish(self, _client: mqtt.Client, device: _Device, *_args: Any) -> None:
        if device.unacked > 0:
            device.unacked -= 1
            self.in_flight = max(self.in_flight - 1, 0)

    def _on_socket_open(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self.selector.register(sock, selectors.EVENT_READ, client)

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._unregister(sock)

    def _on_register_write(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _on_unregister_write(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._modify(sock, selectors.EVENT_READ, client)

    def _modify(self, sock: Any, events: int, client: mqtt.Client) -> None:
        with contextlib.suppress(KeyError, ValueError):  # closed or hung: not served any more
            self.selector.modify(sock, events, client)

    def _unregister(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def _drop_socket(self, client: mqtt.Client) -> None:
        """Close the TCP connection without an MQTT DISCONNECT, as a crashing device does."""
        sock = client.socket()
        if sock is None:
            return
        self._unregister(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class ReplayPublisher:
    """One connection that republishes a recorded stream, paced by PUBACKs."""

    def __init__(self, broker: BrokerTarget, client_id: str, max_in_flight: int = 1000) -> None:
        self.connections = FleetConnections(broker, max_in_flight=max_in_flight)
        self.client_id = client_id
        self.connections.connect(client_id, None)
        deadline = time.monotonic() + 10.0
        while not self.connections.devices[client_id].connected:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"no CONNACK from {broker.host}:{broker.port} in 10 s")
            self.connections.pump(0.05)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        device = self.connections.devices[self.client_id]
        self.connections._send(device, (topic, payload, qos, retain, False))
        while self.connections.in_flight >= self.connections.max_in_flight:
            self.connections.pump(0.05)
            self.connections._idle(False)

    def close(self) -> None:
        self.connections.drain()
        self.connections.disconnect(self.client_id)
        self.connections.close(clean=False)
