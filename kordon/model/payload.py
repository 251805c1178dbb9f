"""Telemetry payload decoding and validation (MQTT contract, version 1).

A payload is a UTF-8 JSON object ``{"ts": ..., "seq": ..., "metrics": {...}}`` or a JSON array
of such objects. Known metrics are type-checked and normalised to their declared type; unknown
metric names matching ``^[a-z][a-z0-9_.]{0,63}$`` with number, bool or string values are kept
(new firmware adds fields), numbers as floats so that the InfluxDB field type never changes.

Readings are validated one by one: a batch with one bad reading still yields the good ones,
and the bad one is reported with its index and reason (the collector dead-letters it).
This runs once per message on the collector's hot path, so it is plain code, not pydantic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, SEQ_FIELD, MetricSpec, MetricType
from kordon.storage.lineprotocol import format_field_value

FieldValue = float | int | bool | str

UNKNOWN_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_MIN_TS_NS = 946_684_800 * 1_000_000_000  # 2000-01-01: older means the device clock is unset
_INT64_MAX = 2**63 - 1
_READING_KEYS = frozenset({"ts", "seq", "metrics"})
_FLOAT = MetricType.FLOAT
_isfinite = math.isfinite
# Enum and flag metrics (ups.status, power.source) repeat a handful of words in every
# reading: their validated, encoded field is remembered per kind, raw value as sent.
_WORD_TYPES = frozenset({MetricType.ENUM, MetricType.FLAGS})
_WORD_CACHE_LIMIT = 4096
_WORD_FIELDS: dict[DeviceKind, dict[tuple[str, str], str]] = {kind: {} for kind in METRICS}
_FLOAT_METRICS = {
    kind: frozenset(name for name, spec in specs.items() if spec.type is MetricType.FLOAT)
    for kind, specs in METRICS.items()
}


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
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TelemetryLines:
    lines: list[bytes] = field(default_factory=list)  # one line-protocol line per reading
    seqs: list[int | None] = field(default_factory=list)  # each line's seq
    errors: list[str] = field(default_factory=list)


class _Invalid(ValueError):
    pass


def decode_telemetry(
    payload: bytes,
    kind: DeviceKind,
    now: float,
    limits: DecodeLimits = DecodeLimits(),
) -> TelemetryDecode:
    """Decode one MQTT telemetry payload. Never raises on bad input."""
    result = TelemetryDecode()
    items, batch = _items(payload, limits, result.errors)
    specs = METRICS[kind]
    max_ts_ns = int((now + limits.max_future_seconds) * 1_000_000_000)
    for index, item in enumerate(items):
        try:
            result.readings.append(_reading(item, specs, max_ts_ns, limits))
        except _Invalid as exc:
            result.errors.append(f"reading {index}: {exc}" if batch else str(exc))
    return result


def decode_telemetry_lines(
    payload: bytes,
    kind: DeviceKind,
    now: float,
    line_prefix: str,
    limits: DecodeLimits = DecodeLimits(),
) -> TelemetryLines:
    """:func:`decode_telemetry` with each reading encoded straight to InfluxDB line protocol.

    The collector's hot path: the same validation, without building a field dictionary that
    would only be encoded again. ``line_prefix`` is the measurement and tags and a space.
    """
    result = TelemetryLines()
    items, batch = _items(payload, limits, result.errors)
    specs = METRICS[kind]
    floats = _FLOAT_METRICS[kind]
    words = _WORD_FIELDS[kind]
    max_ts_ns = int((now + limits.max_future_seconds) * 1_000_000_000)
    for index, item in enumerate(items):
        try:
            ts_ns, seq, metrics = _envelope(item, max_ts_ns, limits)
            parts = []
            for name, value in metrics.items():
                # value - value is 0.0 exactly for finite floats (NaN and infinities give NaN).
                if name in floats and type(value) is float and value - value == 0.0:
                    parts.append(f"{name}={value!r}")
                    continue
                word = words.get((name, value)) if type(value) is str else None
                if word is not None:
                    parts.append(word)
                    continue
                spec = specs.get(name)
                checked = (
                    _known(spec, value, limits)
                    if spec is not None
                    else _unknown(name, value, limits)
                )
                # Names are known metrics or matched ^[a-z][a-z0-9_.]*$: nothing to escape.
                part = f"{name}={format_field_value(checked)}"
                if spec is not None and spec.type in _WORD_TYPES:
                    if len(words) >= _WORD_CACHE_LIMIT:
                        words.clear()
                    words[(name, value)] = part
                parts.append(part)
            if seq is not None:
                parts.append(f"{SEQ_FIELD}={seq}i")
            result.lines.append(f"{line_prefix}{','.join(parts)} {ts_ns}".encode())
            result.seqs.append(seq)
        except _Invalid as exc:
            result.errors.append(f"reading {index}: {exc}" if batch else str(exc))
    return result


def _items(payload: bytes, limits: DecodeLimits, errors: list[str]) -> tuple[list[Any], bool]:
    """The payload's readings, unchecked, and whether it was a batch; errors on failure."""
    if len(payload) > limits.max_payload_bytes:
        errors.append(
            f"payload of {len(payload)} bytes exceeds the limit of {limits.max_payload_bytes}"
        )
        return [], False
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        errors.append(f"not UTF-8 JSON: {exc}")
        return [], False
    if isinstance(document, dict):
        return [document], False
    if isinstance(document, list):
        if not document:
            errors.append("empty batch: the array holds no readings")
            return [], True
        if len(document) > limits.max_batch:
            errors.append(
                f"batch of {len(document)} readings exceeds the limit of {limits.max_batch}"
            )
            return [], True
        return document, True
    errors.append(
        f"payload is a JSON {type(document).__name__}, not an object or an array of objects"
    )
    return [], False


def _reading(
    item: object, specs: dict[str, MetricSpec], max_ts_ns: int, limits: DecodeLimits
) -> Reading:
    ts_ns, seq, metrics = _envelope(item, max_ts_ns, limits)
    fields: dict[str, FieldValue] = {}
    for name, value in metrics.items():
        spec = specs.get(name)
        if spec is not None:
            # Inline fast path: most metrics are floats sent as JSON floats.
            if spec.type is _FLOAT and type(value) is float and _isfinite(value):
                fields[name] = value
            else:
                fields[name] = _known(spec, value, limits)
        else:
            fields[name] = _unknown(name, value, limits)
    return Reading(ts_ns, seq, fields)


def _envelope(
    item: object, max_ts_ns: int, limits: DecodeLimits
) -> tuple[int, int | None, dict[Any, Any]]:
    """A reading's timestamp, seq and metrics object, checked; the metrics' values are not."""
    if not isinstance(item, dict):
        raise _Invalid(f"a reading must be a JSON object, not {type(item).__name__}")
    if not item.keys() <= _READING_KEYS:
        extra = sorted(item.keys() - _READING_KEYS)
        raise _Invalid(f"unexpected keys {extra}; a reading has ts, seq and metrics")
    if "ts" not in item:
        raise _Invalid("ts is missing")
    ts_ns = _timestamp_ns(item["ts"])
    if ts_ns > max_ts_ns:
        raise _Invalid(
            f"ts is more than {limits.max_future_seconds:.0f} s in the future (device clock ahead?)"
        )
    seq = item.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= _INT64_MAX):
        raise _Invalid(f"seq must be a non-negative integer, got {seq!r}")
    metrics = item.get("metrics")
    if not isinstance(metrics, dict):
        raise _Invalid("metrics must be a JSON object of name: value")
    if not metrics:
        raise _Invalid("metrics is empty")
    if len(metrics) > limits.max_metrics:
        raise _Invalid(f"{len(metrics)} metrics exceed the limit of {limits.max_metrics}")
    return ts_ns, seq, metrics


def _timestamp_ns(ts: object) -> int:
    if type(ts) is int:
        if not -(2**33) < ts < 2**33:
            raise _Invalid(f"ts {ts} is out of range; send epoch seconds, not milliseconds")
        ns = ts * 1_000_000_000
    elif type(ts) is float:
        if not math.isfinite(ts) or not -(2.0**33) < ts < 2.0**33:
            raise _Invalid(f"ts {ts} is out of range; send epoch seconds, not milliseconds")
        ns = round(ts * 1_000_000) * 1000
    elif isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            raise _Invalid(f"ts {ts!r} is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            raise _Invalid(f"ts {ts!r} has no UTC offset; RFC 3339 needs 'Z' or '+hh:mm'")
        ns = ((parsed - _EPOCH) // _ONE_MICROSECOND) * 1000
    else:
        raise _Invalid(f"ts must be an RFC 3339 string or epoch seconds, got {ts!r}")
    if ns < _MIN_TS_NS:
        raise _Invalid("ts is before 2000-01-01 (device clock not set?)")
    return ns


def _known(spec: MetricSpec, value: object, limits: DecodeLimits) -> FieldValue:
    kind = spec.type
    if kind is MetricType.FLOAT:
        if type(value) is float:
            if not math.isfinite(value):
                raise _Invalid(f"{spec.name} must be finite")
            return value
        if type(value) is int:
            return float(value)
        raise _Invalid(f"{spec.name} must be a number, got {value!r}")
    if kind is MetricType.INT:
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is int and -_INT64_MAX - 1 <= value <= _INT64_MAX:
            return value
        raise _Invalid(f"{spec.name} must be an integer, got {value!r}")
    if kind is MetricType.BOOL:
        if type(value) is bool:
            return value
        raise _Invalid(f"{spec.name} must be true or false, got {value!r}")
    if not isinstance(value, str):
        raise _Invalid(f"{spec.name} must be a string, got {value!r}")
    if len(value) > limits.max_string:
        raise _Invalid(f"{spec.name} is longer than {limits.max_string} characters")
    if kind is MetricType.ENUM:
        if value not in spec.allowed:
            raise _Invalid(f"{spec.name} {value!r} is not one of {', '.join(sorted(spec.allowed))}")
        return value
    if kind is MetricType.FLAGS:
        flags = value.split()
        bad = [flag for flag in flags if flag not in spec.allowed]
        if bad or not flags:
            raise _Invalid(
                f"{spec.name} {value!r} must be space-separated flags out of "
                f"{' '.join(sorted(spec.allowed))}"
            )
        return " ".join(flags)
    return value


def _unknown(name: object, value: object, limits: DecodeLimits) -> FieldValue:
    if not isinstance(name, str) or not UNKNOWN_METRIC_NAME.match(name) or name == SEQ_FIELD:
        raise _Invalid(f"metric name {name!r} does not match {UNKNOWN_METRIC_NAME.pattern}")
    if type(value) is bool:
        return value
    if type(value) is int:
        return float(value)
    if type(value) is float:
        if not math.isfinite(value):
            raise _Invalid(f"{name} must be finite")
        return value
    if isinstance(value, str):
        if len(value) > limits.max_string:
            raise _Invalid(f"{name} is longer than {limits.max_string} characters")
        return value
    raise _Invalid(f"{name} must be a number, a bool or a string, got {type(value).__name__}")
