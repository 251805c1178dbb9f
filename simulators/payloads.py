"""Telemetry payloads per device kind, and the broken ones bad firmware sends.

Payloads are formatted from one ``%`` template per kind rather than built as dicts and
serialised, because this is the simulator's hot loop (millions of messages in the benchmark).
Values are rounded to the resolution a real device reports before formatting, and Python's
shortest float ``repr`` keeps the bytes identical for identical inputs, so a seed fixes the
stream byte for byte. Every payload here decodes with zero errors through
:func:`kordon.model.payload.decode_telemetry` (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from kordon.model.kinds import DeviceKind

UPS_TEMPLATE = (
    '{"ts":%s,"seq":%s,"metrics":{"ups.status":"%s","battery.charge":%s,'
    '"battery.runtime":%s,"battery.voltage":%s,"input.voltage":%s,"input.frequency":%s,'
    '"output.voltage":%s,"ups.load":%s,"ups.realpower":%s,"ups.temperature":%s}}'
)
SCANNER_TEMPLATE = (
    '{"ts":%s,"seq":%s,"metrics":{"scanner.state":"%s","scanner.phase":"%s",'
    '"power.source":"%s","power.draw":%s,"xray.ready":%s,"scans.total":%s,'
    '"cabinet.temperature":%s,"fault.code":"%s"}}'
)
RADIO_TEMPLATE = (
    '{"ts":%s,"seq":%s,"metrics":{"power.source":"%s","supply.voltage":%s,'
    '"battery.charge":%s,"tx.power":%s,"tx.vswr":%s,"rx.rssi":%s,"pa.temperature":%s,'
    '"backhaul.up":%s,"terminals.registered":%s}}'
)
TEMPLATES = {
    DeviceKind.UPS: UPS_TEMPLATE,
    DeviceKind.SCANNER: SCANNER_TEMPLATE,
    DeviceKind.RADIO: RADIO_TEMPLATE,
}
JSON_BOOL = ("false", "true")


def render(template: str, columns: Sequence[np.ndarray | list[Any]]) -> list[bytes]:
    """One payload per row; ``columns`` are equal-length arrays or lists in template order.

    Floats are turned to text with ``repr`` up front: ``%s`` on a float costs twice as much.
    """
    return [(template % row).encode() for row in zip(*_texts(columns), strict=True)]


_TABLE_LIMIT = 100_000
_DECIMAL_TABLES: dict[int, np.ndarray] = {}


def decimal_texts(values: np.ndarray, places: int) -> list[str]:
    """``repr(round(v, places))`` for every value, by table lookup instead of formatting.

    Float ``repr`` is the single largest cost of rendering millions of payloads; values rounded
    to one or two places within +-1,000 (or +-100,000 hundredths) come from a table of their
    texts, built once. Anything outside falls back to ``repr``; the result is the same text.
    """
    scale = 10**places
    table = _DECIMAL_TABLES.get(places)
    if table is None:
        table = np.array(
            [repr(q / scale) for q in range(-_TABLE_LIMIT, _TABLE_LIMIT)], dtype=object
        )
        _DECIMAL_TABLES[places] = table
    scaled = np.rint(values * scale)
    inside = np.abs(scaled) < _TABLE_LIMIT
    if inside.all():
        return table[scaled.astype(np.int64) + _TABLE_LIMIT].tolist()
    texts = table[np.where(inside, scaled, 0).astype(np.int64) + _TABLE_LIMIT].tolist()
    for index in np.flatnonzero(~inside).tolist():
        texts[index] = repr(float(scaled[index]) / scale)
    return texts


def _texts(columns: Sequence[np.ndarray | list[Any]]) -> list[list[Any]]:
    texts = []
    for column in columns:
        if isinstance(column, np.ndarray):
            values = column.tolist()
            texts.append(list(map(repr, values)) if column.dtype.kind == "f" else values)
        else:
            texts.append(column)
    return texts


def record_template(template: str) -> str:
    """The record line holding a payload of ``template``, escaped once for all rows."""
    escaped = template.replace("\\", "\\\\").replace('"', '\\"')
    return '{"t":%s,"topic":"%s","payload":"' + escaped + '"}\n'


_RECORD_TEMPLATES: dict[str, str] = {}


def render_record_lines(
    template: str, topics: list[str], columns: Sequence[np.ndarray | list[Any]]
) -> list[str]:
    """Record lines (see :mod:`simulators.record`) straight from the columns.

    The first column is the timestamp, used for both ``t`` and the payload's ``ts``. Column
    values never hold quotes or backslashes (numbers, enum words, fault codes), so escaping
    the template once is escaping every line.
    """
    line = _RECORD_TEMPLATES.get(template)
    if line is None:
        line = _RECORD_TEMPLATES[template] = record_template(template)
    texts = _texts(columns)
    rows = zip(*texts, strict=True)
    return [line % (row[0], topic, *row) for topic, row in zip(topics, rows, strict=True)]


# --------------------------------------------------------------------------- malformed

MALFORMED_VARIANTS = (
    "truncated_json",
    "millisecond_ts",
    "string_numbers",
    "bad_enum",
    "missing_ts",
    "not_utf8",
    "nan",
    "bad_metric_name",
)

_SAMPLE_METRIC = {
    DeviceKind.UPS: ("battery.charge", 87.5, "ups.status", "ONLINE"),
    DeviceKind.SCANNER: ("power.draw", 9000.0, "scanner.state", "READY"),
    DeviceKind.RADIO: ("supply.voltage", 13.6, "power.source", "ac"),
}


def malformed_payload(variant: str, kind: DeviceKind, ts: float, seq: int, number: int) -> bytes:
    """A payload the collector must dead-letter, as buggy firmware sends them in the field.

    ``number`` picks the variant in turn when ``variant`` is ``mixed``.
    """
    if variant == "mixed":
        variant = MALFORMED_VARIANTS[number % len(MALFORMED_VARIANTS)]
    name, value, enum_name, bad_word = _SAMPLE_METRIC[kind]
    good = orjson.dumps({"ts": ts, "seq": seq, "metrics": {name: value}})
    if variant == "truncated_json":
        return good[: len(good) // 2]
    if variant == "millisecond_ts":
        return orjson.dumps({"ts": int(ts * 1000), "seq": seq, "metrics": {name: value}})
    if variant == "string_numbers":
        return orjson.dumps({"ts": ts, "seq": seq, "metrics": {name: str(value)}})
    if variant == "bad_enum":
        return orjson.dumps({"ts": ts, "seq": seq, "metrics": {enum_name: bad_word}})
    if variant == "missing_ts":
        return orjson.dumps({"seq": seq, "metrics": {name: value}})
    if variant == "not_utf8":
        return b'{"ts":' + str(ts).encode() + b',"metrics":{"fw.note":"\xff\xfe\xc0"}}'
    if variant == "nan":
        return b'{"ts":%s,"seq":%d,"metrics":{"%s":NaN}}' % (
            str(ts).encode(),
            seq,
            name.encode(),
        )
    if variant == "bad_metric_name":
        return orjson.dumps({"ts": ts, "seq": seq, "metrics": {"Battery Charge %": value}})
    raise ValueError(f"unknown malformed variant {variant!r}")
