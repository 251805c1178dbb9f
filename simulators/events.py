"""What a scenario run produces: timed MQTT messages and changes to device connections.

``ScenarioRun`` yields :class:`SimEvent` in time order. Most are messages a device publishes.
A device's connection also matters to a monitoring system, because the broker speaks for a
device that vanished (its last will), so the stream carries those moments too:

``PUBLISH``    the device publishes ``payload`` on ``topic``.
``WILL``       the broker publishes the device's last will (``offline``, retained): after a
               ``CRASH`` at once, after a ``HANG`` when the keep-alive expires (1.5 x).
``CONNECT``    the device connects, last will set to ``offline`` on its status topic.
``DISCONNECT`` clean MQTT DISCONNECT: the broker discards the will.
``CRASH``      the socket closes without DISCONNECT (firmware crash, reboot).
``HANG``       the device goes silent with its socket open (power death, network cut).

A consumer that stands in for the broker (an in-process alert engine) takes ``PUBLISH`` and
``WILL`` as the messages it would receive (:attr:`SimEvent.on_wire`) and may ignore the rest.
The MQTT publisher does the opposite for ``WILL``: the real broker sends it, so it only acts
out ``CONNECT``/``DISCONNECT``/``CRASH``/``HANG`` on the device's own connection.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Action(StrEnum):
    PUBLISH = "publish"
    WILL = "will"
    CONNECT = "connect"
    DISCONNECT = "disconnect"
    CRASH = "crash"
    HANG = "hang"


ON_WIRE = frozenset({Action.PUBLISH, Action.WILL})

ONLINE = b"online"
OFFLINE = b"offline"


class SimEvent(NamedTuple):
    time: float  # simulated epoch seconds
    topic: str
    payload: bytes
    retain: bool
    qos: int
    action: Action = Action.PUBLISH
    client_id: str = ""  # the device's MQTT client id: "kordon-sim/{site}/{kind}/{device}"

    @property
    def on_wire(self) -> bool:
        """A message a subscriber of the broker would receive."""
        return self.action in ON_WIRE
