"""MQTT topic contract, version 1.

``kordon/v1/{site}/{kind}/{device}/telemetry`` (QoS 1) and ``.../status`` (retained,
``online``/``offline``, also the device's last will). Dead letters go to
``kordon/v1/deadletter``. A stream published at speed N announces its scenario clock on
``kordon/v1/clock/{stream}`` (retained; :mod:`kordon.streamclock`): four levels, so the
telemetry and status filters never match it and the collector neither stores nor refuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from kordon.model.kinds import DeviceKind

TOPIC_PREFIX = "kordon/v1"
DEADLETTER_TOPIC = f"{TOPIC_PREFIX}/deadletter"
TELEMETRY_FILTER = f"{TOPIC_PREFIX}/+/+/+/telemetry"
STATUS_FILTER = f"{TOPIC_PREFIX}/+/+/+/status"
CLOCK_FILTER = f"{TOPIC_PREFIX}/clock/+"

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KINDS = {kind.value: kind for kind in DeviceKind}


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"


class TopicError(ValueError):
    """The topic does not follow the contract; the message says which part."""


@dataclass(frozen=True, slots=True)
class TopicRef:
    site: str
    kind: DeviceKind
    device: str
    channel: Channel


def parse_topic(topic: str) -> TopicRef:
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "kordon" or parts[1] != "v1":
        raise TopicError(
            f"topic {topic!r} is not kordon/v1/{{site}}/{{kind}}/{{device}}/{{telemetry|status}}"
        )
    _, _, site, kind, device, channel = parts
    if not NAME_PATTERN.match(site):
        raise TopicError(f"site {site!r} does not match {NAME_PATTERN.pattern}")
    if kind not in _KINDS:
        raise TopicError(f"kind {kind!r} is not one of {', '.join(sorted(_KINDS))}")
    if not NAME_PATTERN.match(device):
        raise TopicError(f"device {device!r} does not match {NAME_PATTERN.pattern}")
    if channel == "telemetry":
        return TopicRef(site, _KINDS[kind], device, Channel.TELEMETRY)
    if channel == "status":
        return TopicRef(site, _KINDS[kind], device, Channel.STATUS)
    raise TopicError(f"channel {channel!r} is not 'telemetry' or 'status'")


def _check(site: str, device: str) -> None:
    if not NAME_PATTERN.match(site):
        raise TopicError(f"site {site!r} does not match {NAME_PATTERN.pattern}")
    if not NAME_PATTERN.match(device):
        raise TopicError(f"device {device!r} does not match {NAME_PATTERN.pattern}")


def telemetry_topic(site: str, kind: DeviceKind | str, device: str) -> str:
    _check(site, device)
    return f"{TOPIC_PREFIX}/{site}/{DeviceKind(kind).value}/{device}/telemetry"


def status_topic(site: str, kind: DeviceKind | str, device: str) -> str:
    _check(site, device)
    return f"{TOPIC_PREFIX}/{site}/{DeviceKind(kind).value}/{device}/status"


def clock_topic(stream: str) -> str:
    """Where a stream announces its scenario clock (retained)."""
    if not NAME_PATTERN.match(stream):
        raise TopicError(f"stream {stream!r} does not match {NAME_PATTERN.pattern}")
    return f"{TOPIC_PREFIX}/clock/{stream}"


def is_clock_topic(topic: str) -> bool:
    """A stream clock topic (possibly malformed): not telemetry, never a dead letter."""
    return topic.startswith(f"{TOPIC_PREFIX}/clock/") and topic.count("/") == 3


def parse_clock_topic(topic: str) -> str:
    """The stream id of ``kordon/v1/clock/{stream}``."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[:3] != ["kordon", "v1", "clock"]:
        raise TopicError(f"topic {topic!r} is not kordon/v1/clock/{{stream}}")
    if not NAME_PATTERN.match(parts[3]):
        raise TopicError(f"stream {parts[3]!r} does not match {NAME_PATTERN.pattern}")
    return parts[3]


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription filter: members of ``group`` split the stream."""
    return f"$share/{group}/{topic_filter}"
