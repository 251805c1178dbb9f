"""Telemetry payload decoding and validation (MQTT contract, version 1).

A payload is a UTF-8 JSON object ``{"ts": ..., "seq": ..., "metrics": {...}}`` or a JSON array
of such objects. Known metrics are type-checked and normalised to their declared type; unknown
metric names matching ``^[a-z][a-z0-9_.]{0,63}$`` with number, bool or string values are kept
(new firmware adds fields), numbers as floats so that the InfluxDB field type never changes.

Readings are validated one by one: a batch with one bad reading still yields the good ones,
and the bad one is reported with its index, a stable :class:`DecodeErrorCode` and a text for
people (the collector dead-letters it and counts it under the code). This runs once per
message on the collector's hot path, so it is plain code, not pydantic.

The checks are public (:func:`payload_items`, :func:`reading_envelope`, :func:`known_value`,
:func:`unknown_value`) so that a consumer can build its own representation of a reading on
the same validation: the collector encodes straight to line protocol (``collector.lines``)
without this module knowing anything of storage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, SEQ_FIELD, MetricSpec, MetricType

FieldValue = float | int | bool | str

UNKNOWN_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MIN_TS_NS = 946_684_800 * 1_000_000_000  # 2000-01-01: older means the device clock is unset
_INT64_MAX = 2**63 - 1
_READING_KEYS = frozenset({"ts", "seq", "metrics"})
_FLOAT = MetricType.FLOAT
_isfinite = math.isfinite


class DecodeErrorCode(StrEnum):
    """Why a payload or a reading was refused: stable, bounded, fit for a metric label.

    The values are the collector's dead-letter counter labels
    (``kordon_collector_deadlettered_total{reason=...}``) and the ``code`` of a dead letter.
    """

    PAYLOAD_SIZE = "payload_size"  # the payload exceeds collector.max_payload_bytes
    JSON = "json"  # not UTF-8 JSON
    SHAPE = "shape"  # JSON, but not the contract's shape (keys, nesting, empty batch)
    BATCH_LENGTH = "batch_length"  # more readings than collector.max_batch
    TIMESTAMP = "timestamp"  # ts missing, unreadable, out of range, ahead or before 2000
    SEQ = "seq"  # seq not a non-negative 64-bit integer
    METRIC_COUNT = "metric_count"  # more metrics than collector.max_metrics
    METRIC_NAME = "metric_name"  # an unknown metric's name off the pattern
    TYPE = "type"  # a value of the wrong JSON type for its metric
    VALUE = "value"  # the right type, but a value the metric does not allow
    STRING_LENGTH = "string_length"  # a string longer than collector.max_string


@dataclass(frozen=True, slots=True)
class DecodeError:
    """One refusal: its code, what was wrong, and which reading of a batch it was."""

    code: DecodeErrorCode
    detail: str
    index: int | None = None  # the reading's position in a batch; None otherwise

    @property
    def text(self) -> str:
        """The human-readable reason, e.g. ``reading 3: ts is missing``."""
        return self.detail if self.index is None else f"reading {self.index}: {self.detail}"

    def __str__(self) -> str:
        return self.text


class InvalidTelemetry(ValueError):
    """Raised by the checks below; :meth:`error` turns it into a :class:`DecodeError`."""

    def __init__(self, code: DecodeErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def error(self, index: int | None = None) -> DecodeError:
        return DecodeError(self.code, self.detail, index)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_payload_bytes: int = 256 * 1024
    max_batch: int = 10_000
    max_metrics: int = 128
    max_string: int = 4096
    max_future_seconds: float = 300.0


@dataclass(slots=True)
class Reading:
    ts_ns: int
    seq: int | None
    fields: dict[str, FieldValue]


@dataclass(slots=True)
class TelemetryDecode:
    readings: list[Reading] = field(default_factory=list)
    errors: list[DecodeError] = field(default_factory=list)


def decode_telemetry(
    payload: bytes,
    kind: DeviceKind,
    now: float,
    limits: DecodeLimits = DecodeLimits(),
) -> TelemetryDecode:
    """Decode one MQTT telemetry payload. Never raises on bad input."""
    result = TelemetryDecode()
    try:
        items, batch = payload_items(payload, limits)
    except InvalidTelemetry as exc:
        result.errors.append(exc.error())
        return result
    specs = METRICS[kind]
    max_ts_ns = latest_ts_ns(now, limits)
    for index, item in enumerate(items):
        try:
            result.readings.append(_reading(item, specs, max_ts_ns, limits))
        except InvalidTelemetry as exc:
            result.errors.append(exc.error(index if batch else None))
    return result


def latest_ts_ns(now: float, limits: DecodeLimits) -> int:
    """The latest ``ts`` accepted at ``now``, in nanoseconds."""
    return int((now + limits.max_future_seconds) * 1_000_000_000)


def payload_items(payload: bytes, limits: DecodeLimits) -> tuple[list[Any], bool]:
    """The payload's readings, unchecked, and whether it was a batch.

    Raises :class:`InvalidTelemetry` when the payload as a whole is refused.
    """
    if len(payload) > limits.max_payload_bytes:
        raise InvalidTelemetry(
            DecodeErrorCode.PAYLOAD_SIZE,
            f"payload of {len(payload)} bytes exceeds the limit of {limits.max_payload_bytes}",
        )
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidTelemetry(DecodeErrorCode.JSON, f"not UTF-8 JSON: {exc}") from None
    if isinstance(document, dict):
        return [document], False
    if isinstance(document, list):
        if not document:
            raise InvalidTelemetry(
                DecodeErrorCode.SHAPE, "empty batch: the array holds no readings"
            )
        if len(document) > limits.max_batch:
            raise InvalidTelemetry(
                DecodeErrorCode.BATCH_LENGTH,
                f"batch of {len(document)} readings exceeds the limit of {limits.max_batch}",
            )
        return document, True
    raise InvalidTelemetry(
        DecodeErrorCode.SHAPE,
        f"payload is a JSON {type(document).__name__}, not an object or an array of objects",
    )


def _reading(
    item: object, specs: dict[str, MetricSpec], max_ts_ns: int, limits: DecodeLimits
) -> Reading:
    ts_ns, seq, metrics = reading_envelope(item, max_ts_ns, limits)
    fields: dict[str, FieldValue] = {}
    for name, value in metrics.items():
        spec = specs.get(name)
        if spec is not None:
            # Inline fast path: most metrics are floats sent as JSON floats.
            if spec.type is _FLOAT and type(value) is float and _isfinite(value):
                fields[name] = value
            else:
                fields[name] = known_value(spec, value, limits)
        else:
            fields[name] = unknown_value(name, value, limits)
    return Reading(ts_ns, seq, fields)


def reading_envelope(
    item: object, max_ts_ns: int, limits: DecodeLimits
) -> tuple[int, int | None, dict[Any, Any]]:
    """A reading's timestamp, seq and metrics object, checked; the metrics' values are not.

    Raises :class:`InvalidTelemetry`.
    """
    if not isinstance(item, dict):
        raise InvalidTelemetry(
            DecodeErrorCode.SHAPE, f"a reading must be a JSON object, not {type(item).__name__}"
        )
    if not item.keys() <= _READING_KEYS:
        extra = sorted(item.keys() - _READING_KEYS)
        raise InvalidTelemetry(
            DecodeErrorCode.SHAPE, f"unexpected keys {extra}; a reading has ts, seq and metrics"
        )
    if "ts" not in item:
        raise _bad_ts("ts is missing")
    ts_ns = _timestamp_ns(item["ts"])
    if ts_ns > max_ts_ns:
        ahead = limits.max_future_seconds
        raise _bad_ts(f"ts is more than {ahead:.0f} s in the future (device clock ahead?)")
    seq = item.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= _INT64_MAX):
        raise InvalidTelemetry(
            DecodeErrorCode.SEQ, f"seq must be a non-negative integer, got {seq!r}"
        )
    metrics = item.get("metrics")
    if not isinstance(metrics, dict):
        raise InvalidTelemetry(
            DecodeErrorCode.SHAPE, "metrics must be a JSON object of name: value"
        )
    if not metrics:
        raise InvalidTelemetry(DecodeErrorCode.SHAPE, "metrics is empty")
    if len(metrics) > limits.max_metrics:
        raise InvalidTelemetry(
            DecodeErrorCode.METRIC_COUNT,
            f"{len(metrics)} metrics exceed the limit of {limits.max_metrics}",
        )
    return ts_ns, seq, metrics


def _timestamp_ns(ts: object) -> int:
    if type(ts) is int:
        if not -(2**33) < ts < 2**33:
            raise _bad_ts(f"ts {ts} is out of range; send epoch seconds, not milliseconds")
        ns = ts * 1_000_000_000
    elif type(ts) is float:
        if not math.isfinite(ts) or not -(2.0**33) < ts < 2.0**33:
            raise _bad_ts(f"ts {ts} is out of range; send epoch seconds, not milliseconds")
        ns = round(ts * 1_000_000) * 1000
    elif isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            raise _bad_ts(f"ts {ts!r} is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            raise _bad_ts(f"ts {ts!r} has no UTC offset; RFC 3339 needs 'Z' or '+hh:mm'")
        ns = ((parsed - _EPOCH) // _ONE_MICROSECOND) * 1000
    else:
        raise _bad_ts(f"ts must be an RFC 3339 string or epoch seconds, got {ts!r}")
    if ns < _MIN_TS_NS:
        raise _bad_ts("ts is before 2000-01-01 (device clock not set?)")
    return ns


def _bad_ts(detail: str) -> InvalidTelemetry:
    return InvalidTelemetry(DecodeErrorCode.TIMESTAMP, detail)


def known_value(spec: MetricSpec, value: object, limits: DecodeLimits) -> FieldValue:
    """A known metric's value checked and normalised to its declared type.

    Raises :class:`InvalidTelemetry`.
    """
    kind = spec.type
    if kind is MetricType.FLOAT:
        if type(value) is float:
            if not math.isfinite(value):
                raise InvalidTelemetry(DecodeErrorCode.VALUE, f"{spec.name} must be finite")
            return value
        if type(value) is int:
            return float(value)
        raise InvalidTelemetry(DecodeErrorCode.TYPE, f"{spec.name} must be a number, got {value!r}")
    if kind is MetricType.INT:
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is int and -_INT64_MAX - 1 <= value <= _INT64_MAX:
            return value
        raise InvalidTelemetry(
            DecodeErrorCode.TYPE, f"{spec.name} must be an integer, got {value!r}"
        )
    if kind is MetricType.BOOL:
        if type(value) is bool:
            return value
        raise InvalidTelemetry(
            DecodeErrorCode.TYPE, f"{spec.name} must be true or false, got {value!r}"
        )
    if not isinstance(value, str):
        raise InvalidTelemetry(DecodeErrorCode.TYPE, f"{spec.name} must be a string, got {value!r}")
    if len(value) > limits.max_string:
        raise InvalidTelemetry(
            DecodeErrorCode.STRING_LENGTH,
            f"{spec.name} is longer than {limits.max_string} characters",
        )
    if kind is MetricType.ENUM:
        if value not in spec.allowed:
            raise InvalidTelemetry(
                DecodeErrorCode.VALUE,
                f"{spec.name} {value!r} is not one of {', '.join(sorted(spec.allowed))}",
            )
        return value
    if kind is MetricType.FLAGS:
        flags = value.split()
        bad = [flag for flag in flags if flag not in spec.allowed]
        if bad or not flags:
            raise InvalidTelemetry(
                DecodeErrorCode.VALUE,
                f"{spec.name} {value!r} must be space-separated flags out of "
                f"{' '.join(sorted(spec.allowed))}",
            )
        return " ".join(flags)
    return value


def unknown_value(name: object, value: object, limits: DecodeLimits) -> FieldValue:
    """An unknown metric's name and value checked; numbers become floats.

    Raises :class:`InvalidTelemetry`.
    """
    if not isinstance(name, str) or not UNKNOWN_METRIC_NAME.match(name) or name == SEQ_FIELD:
        raise InvalidTelemetry(
            DecodeErrorCode.METRIC_NAME,
            f"metric name {name!r} does not match {UNKNOWN_METRIC_NAME.pattern}",
        )
    if type(value) is bool:
        return value
    if type(value) is int:
        return float(value)
    if type(value) is float:
        if not math.isfinite(value):
            raise InvalidTelemetry(DecodeErrorCode.VALUE, f"{name} must be finite")
        return value
    if isinstance(value, str):
        if len(value) > limits.max_string:
            raise InvalidTelemetry(
                DecodeErrorCode.STRING_LENGTH,
                f"{name} is longer than {limits.max_string} characters",
            )
        return value
    raise InvalidTelemetry(
        DecodeErrorCode.TYPE,
        f"{name} must be a number, a bool or a string, got {type(value).__name__}",
    )
