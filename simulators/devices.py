"""One simulated device as the run and its timeline refer to it: where it sits in the run's
arrays (``index``), who it is, and the topics and MQTT identity it publishes with."""

from __future__ import annotations

from dataclasses import dataclass

from kordon.model.kinds import DeviceKind


@dataclass(frozen=True, slots=True)
class DeviceRef:
    index: int
    site: str
    kind: DeviceKind
    device: str
    telemetry_topic: str
    status_topic: str
    client_id: str
    keepalive: float
