"""Telemetry payload straight to InfluxDB line protocol: the collector's hot path.

The same validation as :func:`kordon.model.payload.decode_telemetry` (its checks are called,
not copied), without building a field dictionary per reading that would only be encoded
again. Floats sent as JSON floats are encoded inline, and the encoded field of an enum or
flags word (``ups.status``, ``power.source``: a handful of words repeated in every reading) is
remembered per kind, raw value as sent. ``tests/kernel/test_payload.py`` checks with hypothesis that
this path accepts, refuses and encodes exactly as decoding and then encoding would.

Metrics Kordon does not type itself go through the collector's field-type table
(:mod:`collector.fieldtypes`): a value whose type differs from the one its field holds is
written under the field's derived name (``input.source.text``), so the store never refuses
the line. That costs one dict lookup per such field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, SEQ_FIELD, MetricType
from kordon.model.payload import (
    DecodeError,
    DecodeLimits,
    InvalidTelemetry,
    known_value,
    latest_ts_ns,
    payload_items,
    reading_envelope,
    unknown_value,
)
from kordon.storage.lineprotocol import format_field_value

if TYPE_CHECKING:
    from collector.fieldtypes import FieldTypes

_DEFAULT_LIMITS = DecodeLimits()
_WORD_TYPES = frozenset({MetricType.ENUM, MetricType.FLAGS})
_WORD_CACHE_LIMIT = 4096
_WORD_FIELDS: dict[DeviceKind, dict[tuple[str, str], str]] = {kind: {} for kind in METRICS}
_FLOAT_METRICS = {
    kind: frozenset(name for name, spec in specs.items() if spec.type is MetricType.FLOAT)
    for kind, specs in METRICS.items()
}


@dataclass(slots=True)
class TelemetryLines:
    lines: list[bytes] = field(default_factory=list)  # one line-protocol line per reading
    seqs: list[int | None] = field(default_factory=list)  # each line's seq
    errors: list[DecodeError] = field(default_factory=list)


def decode_telemetry_lines(
    payload: bytes,
    kind: DeviceKind,
    now: float,
    line_prefix: str,
    limits: DecodeLimits = _DEFAULT_LIMITS,
    types: FieldTypes | None = None,
) -> TelemetryLines:
    """Decode and validate one telemetry payload into line-protocol lines. Never raises on
    bad input. ``line_prefix`` is the measurement and tags and a space. With ``types``, the
    metrics Kordon does not type follow the type rule (module doc)."""
    result = TelemetryLines()
    try:
        items, batch = payload_items(payload, limits)
    except InvalidTelemetry as exc:
        result.errors.append(exc.error())
        return result
    specs = METRICS[kind]
    floats = _FLOAT_METRICS[kind]
    words = _WORD_FIELDS[kind]
    max_ts_ns = latest_ts_ns(now, limits)
    table = types.table(kind.value) if types is not None else None
    for index, item in enumerate(items):
        try:
            ts_ns, seq, metrics = reading_envelope(item, max_ts_ns, limits)
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
                if spec is not None:
                    checked = known_value(spec, value, limits)
                else:
                    checked = unknown_value(name, value, limits)
                    if table is not None:
                        held = table.get(name)
                        if held is not type(checked):
                            assert types is not None
                            if held is None:
                                held = types.claim(kind.value, name, type(checked))
                            if held is not type(checked):
                                name = types.stored_name(kind.value, name, type(checked))
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
        except InvalidTelemetry as exc:
            result.errors.append(exc.error(index if batch else None))
    return result
