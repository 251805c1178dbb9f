"""The domain model shared by every role: device kinds, metrics, topics and payloads."""

from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, MetricSpec, MetricType
from kordon.model.payload import (
    DecodeError,
    DecodeErrorCode,
    DecodeLimits,
    InvalidTelemetry,
    Reading,
    TelemetryDecode,
    decode_telemetry,
)
from kordon.model.topics import (
    DEADLETTER_TOPIC,
    Channel,
    TopicError,
    TopicRef,
    parse_topic,
    status_topic,
    telemetry_topic,
)

__all__ = [
    "DEADLETTER_TOPIC",
    "METRICS",
    "Channel",
    "DecodeError",
    "DecodeErrorCode",
    "DecodeLimits",
    "DeviceKind",
    "InvalidTelemetry",
    "MetricSpec",
    "MetricType",
    "Reading",
    "TelemetryDecode",
    "TopicError",
    "TopicRef",
    "decode_telemetry",
    "parse_topic",
    "status_topic",
    "telemetry_topic",
]
