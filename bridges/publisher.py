"""The MQTT side of a bridge: one session per UPS, as the contract wants of a device.

A last will belongs to a connection, and the contract says each device's will is ``offline``
on *its own* status topic. A bridge that died with one shared connection could only mark
one topic offline, so every UPS gets its own paho client (one socket and thread each; a NUT
server rarely watches more than a few dozen units).

Pacing: paho queues QoS 1 messages without end while the broker is away and breaks down
past 65,555 (paho issue 377). Each publisher therefore bounds what it has outstanding
(``max_queued``, default 10,000: 14 hours of 5-second readings). A reading that finds the
queue full is dropped *but still takes its seq number*, so the collector's gap counter shows
the loss. Status messages are never dropped, and after every (re)connect the current status
is published again: while the bridge was cut off from the broker, the broker published the
will (``offline``) in its name, and that must not outlive the reconnection. A status change
while disconnected is therefore not queued in paho as well: paho would send its queued copy
after the reconnect too, and the status topic would say ``online`` twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence

import orjson
import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from kordon.config import MqttSettings
from kordon.model.kinds import DeviceKind
from kordon.model.payload import FieldValue
from kordon.model.topics import status_topic, telemetry_topic
from kordon.mqtt import connect_async, make_client

log = logging.getLogger("bridges.publisher")

ONLINE = "online"
OFFLINE = "offline"
DEFAULT_MAX_QUEUED = 10_000
MAX_INFLIGHT = 20


def device_client_id(base: str, site: str, device: str) -> str:
    """A stable client id per (bridge, site, device), at most 64 characters."""
    full = f"{base}-{site}-{device}"
    if len(full) <= 64:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    return f"{full[:47]}-{digest}"


class DevicePublisher:
    """Telemetry and availability of one UPS. Thread-safe; the bridges call it from asyncio."""

    def __init__(
        self,
        mqtt: MqttSettings,
        site: str,
        device: str,
        client_id: str,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        self.site = site
        self.device = device
        self.telemetry_topic = telemetry_topic(site, DeviceKind.UPS, device)
        self.status_topic = status_topic(site, DeviceKind.UPS, device)
        self._mqtt = mqtt
        self._max_queued = max_queued
        self._client = make_client(mqtt, client_id, persistent=False)
        self._client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        self._client.max_inflight_messages_set(MAX_INFLIGHT)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._drained = threading.Condition()
        self._outstanding = 0  # QoS 1 messages handed to paho and not yet acknowledged
        self._seq = 0
        self._status: str | None = None
        self._status_lock = threading.Lock()  # never taken in paho's callbacks but _on_connect
        self._announced: str | None = None  # the status sent on the current connection
        self._dropping = False
        self._stopping = False
        self.published = 0
        self.dropped = 0

    @property
    def status(self) -> str | None:
        return self._status

    def start(self) -> None:
        connect_async(self._client, self._mqtt, persistent=False)
        self._client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (a clean disconnect sends no will), flush, disconnect."""
        self.set_status(False, "bridge stopping")
        self._stopping = True
        with self._drained:
            self._drained.wait_for(lambda: self._outstanding == 0, timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, metrics: Mapping[str, FieldValue], ts: float) -> bool:
        """Queue one reading; ``False`` when it was dropped because the queue is full."""
        return self.publish_parts([metrics], ts)

    def publish_parts(self, parts: Sequence[Mapping[str, FieldValue]], ts: float) -> bool:
        """Queue the readings of one poll as one message; ``False`` when it was dropped.

        Several parts (a poll with more metrics than a reading may carry) go out as a JSON
        array of readings with the same ``ts`` and consecutive ``seq`` numbers: one message, so
        the parts arrive, or are dropped, together.
        """
        first = self._seq
        self._seq += len(parts)
        with self._drained:
            if self._outstanding >= self._max_queued:
                self.dropped += 1
                if not self._dropping:
                    log.warning(
                        "%s/%s: %d messages wait for the broker; dropping readings "
                        "(seq gaps will show how many)", self.site, self.device,
                        self._outstanding,
                    )
                self._dropping = True
                return False
            self._dropping = False
            self._outstanding += 1
        stamp = round(ts, 3)
        readings = [{"ts": stamp, "seq": first + i, "metrics": dict(part)}
                    for i, part in enumerate(parts)]
        payload = orjson.dumps(readings[0] if len(readings) == 1 else readings)
        # Never hold our lock here: paho calls _on_publish with its own lock taken.
        self._client.publish(self.telemetry_topic, payload, qos=1)
        self.published += 1
        return True

    def set_status(self, online: bool, reason: str = "") -> None:
        """Publish ``online``/``offline`` (retained) when it changes."""
        text = ONLINE if online else OFFLINE
        with self._status_lock:
            if text == self._status:
                return
            self._status = text
            suffix = f": {reason}" if reason else ""
            logger = log.info if online else log.warning
            logger("%s/%s %s%s", self.site, self.device, text, suffix)
            if self._client.is_connected():
                self._announce(text)
            # else: _on_connect announces it (see the module doc)

    def _announce(self, text: str) -> None:
        """Publish ``text``; the caller holds ``_status_lock``."""
        self._announced = text
        self._send_status(text)

    def _send_status(self, text: str) -> None:
        with self._drained:
            self._outstanding += 1
        self._client.publish(self.status_topic, text, qos=1, retain=True)

    # paho's network thread --------------------------------------------------------------
    def _on_connect(
        self, _c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("%s/%s: MQTT connection refused: %s", self.site, self.device, reason)
            return
        with self._status_lock:
            # set_status may have announced it already, between paho marking the connection
            # up and calling us.
            if self._status is not None and self._announced != self._status:
                self._announce(self._status)

    def _on_disconnect(self, *_args: object) -> None:
        with self._status_lock:
            self._announced = None
        if self._stopping:
            return
        log.warning("%s/%s: MQTT connection lost; reconnecting", self.site, self.device)

    def _on_publish(self, *_args: object) -> None:
        with self._drained:
            self._outstanding = max(self._outstanding - 1, 0)
            if self._outstanding == 0:
                self._drained.notify_all()
