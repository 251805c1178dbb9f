"""decode_telemetry: the MQTT payload contract, every way a payload can be refused, and that
decoding never raises whatever arrives (hypothesis)."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.lines import decode_telemetry_lines
from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, MetricType
from kordon.model.payload import (
    DecodeErrorCode,
    DecodeLimits,
    Reading,
    TelemetryDecode,
    decode_telemetry,
)
from kordon.storage.lineprotocol import encode_line

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
TS = 1_789_990_000  # a little before NOW
UPS, SCANNER, RADIO = DeviceKind.UPS, DeviceKind.SCANNER, DeviceKind.RADIO
Code = DecodeErrorCode


DEFAULT_LIMITS = DecodeLimits()


def decode(
    document: Any, kind: DeviceKind = UPS, limits: DecodeLimits = DEFAULT_LIMITS
) -> TelemetryDecode:
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    return decode_telemetry(payload, kind, NOW, limits)


def reading(metrics: Any = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ts": TS,
        "metrics": {"battery.charge": 50.0} if metrics is None else metrics,
    }
    doc.update(extra)
    return doc


def only_error(result: TelemetryDecode, code: DecodeErrorCode) -> str:
    """The one error's text, after checking that nothing was decoded and the error's code."""
    assert result.readings == [], result.readings
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].code is code, result.errors
    return result.errors[0].text


def only_reading(result: TelemetryDecode) -> Reading:
    assert result.errors == [], result.errors
    assert len(result.readings) == 1
    return result.readings[0]


# --- accepted shapes -------------------------------------------------------------------------


def test_single_object_with_seq() -> None:
    r = only_reading(decode({"ts": TS, "seq": 7, "metrics": {"battery.charge": 87.5}}))
    assert r.ts_ns == TS * 10**9
    assert r.seq == 7
    assert r.fields == {"battery.charge": 87.5}


def test_batch_keeps_order() -> None:
    result = decode([reading({"ups.load": float(i)}, seq=i, ts=TS + i) for i in range(3)])
    assert result.errors == []
    assert [(r.ts_ns, r.seq, r.fields["ups.load"]) for r in result.readings] == [
        ((TS + i) * 10**9, i, float(i)) for i in range(3)
    ]


def test_seq_is_optional_and_null_means_absent() -> None:
    assert only_reading(decode(reading())).seq is None
    assert only_reading(decode(reading(seq=None))).seq is None
    assert only_reading(decode(reading(seq=0))).seq == 0
    assert only_reading(decode(reading(seq=2**63 - 1))).seq == 2**63 - 1


@pytest.mark.parametrize(
    ("ts", "expected_ns"),
    [
        ("2026-09-21T10:00:00Z", 1_789_984_800 * 10**9),
        ("2026-09-21T10:00:00.250Z", 1_789_984_800_250_000_000),
        ("2026-09-21T12:00:00+02:00", 1_789_984_800 * 10**9),
        ("2026-09-21T07:30:00-02:30", 1_789_984_800 * 10**9),
        ("2026-09-21T10:00:00.123456+00:00", 1_789_984_800_123_456_000),
        ("2026-09-21 10:00:00Z", 1_789_984_800 * 10**9),  # RFC 3339 allows a space
        (1_789_984_800, 1_789_984_800 * 10**9),
        (1_789_984_800.5, 1_789_984_800_500_000_000),
        (1_789_984_800.123456, 1_789_984_800_123_456_000),  # microseconds survive the float
        (946_684_800, 946_684_800 * 10**9),  # 2000-01-01 exactly is allowed
    ],
)
def test_timestamps(ts: Any, expected_ns: int) -> None:
    assert only_reading(decode(reading(ts=ts))).ts_ns == expected_ns


def test_timestamp_up_to_five_minutes_ahead_is_accepted() -> None:
    assert only_reading(decode(reading(ts=NOW + 299))).ts_ns == int((NOW + 299) * 10**9)


# --- known metrics: type normalisation ---------------------------------------------------------


def test_integer_for_a_float_metric_becomes_a_float() -> None:
    r = only_reading(decode(reading({"battery.charge": 87, "input.voltage": 0})))
    assert r.fields == {"battery.charge": 87.0, "input.voltage": 0.0}
    assert all(type(v) is float for v in r.fields.values())


def test_integral_float_for_an_int_metric_becomes_an_int() -> None:
    r = only_reading(decode(reading({"scans.total": 1200.0}), SCANNER))
    assert r.fields["scans.total"] == 1200 and type(r.fields["scans.total"]) is int
    r = only_reading(decode(reading({"terminals.registered": 12}), RADIO))
    assert r.fields["terminals.registered"] == 12 and type(r.fields["terminals.registered"]) is int


@pytest.mark.parametrize("value", [12.5, True, "12", None, [1], {"n": 1}, 2**63, 1e300])
def test_int_metric_refuses_non_integers(value: Any) -> None:
    error = only_error(decode(reading({"scans.total": value}), SCANNER), Code.TYPE)
    assert "scans.total must be an integer" in error


def test_int_metric_limits_are_int64() -> None:
    r = only_reading(decode(reading({"scans.total": 2**63 - 1}), SCANNER))
    assert r.fields["scans.total"] == 2**63 - 1
    r = only_reading(decode(reading({"scans.total": -(2**63)}), SCANNER))
    assert r.fields["scans.total"] == -(2**63)


@pytest.mark.parametrize("value", [True, "87", None, [87.0], {"v": 87.0}])
def test_float_metric_refuses_non_numbers(value: Any) -> None:
    error = only_error(decode(reading({"battery.charge": value})), Code.TYPE)
    assert "battery.charge must be a number" in error


def test_bool_metric() -> None:
    r = only_reading(decode(reading({"xray.ready": True, "backhaul.up": False}), SCANNER))
    assert r.fields["xray.ready"] is True
    assert r.fields["backhaul.up"] is False  # unknown to scanners: kept, still a bool
    for value in (1, 0, "true", None):
        error = only_error(decode(reading({"xray.ready": value}), SCANNER), Code.TYPE)
        assert "xray.ready must be true or false" in error


def test_enum_metric_accepts_only_its_words() -> None:
    r = only_reading(decode(reading({"scanner.state": "scanning", "power.source": "ups"}), SCANNER))
    assert r.fields == {"scanner.state": "scanning", "power.source": "ups"}
    error = only_error(decode(reading({"scanner.state": "READY"}), SCANNER), Code.VALUE)
    assert "scanner.state 'READY' is not one of" in error and "scanning" in error
    # The allowed words depend on the kind: radios have no UPS as power source.
    error = only_error(decode(reading({"power.source": "ups"}), RADIO), Code.VALUE)
    assert "power.source 'ups' is not one of battery, mains, none" in error
    error = only_error(decode(reading({"scanner.state": 3}), SCANNER), Code.TYPE)
    assert "scanner.state must be a string" in error


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("OL", "OL"), ("OB  DISCHRG", "OB DISCHRG"), (" OL CHRG ", "OL CHRG"), ("OB\tLB", "OB LB")],
)
def test_flags_are_normalised(sent: str, stored: str) -> None:
    assert only_reading(decode(reading({"ups.status": sent}))).fields["ups.status"] == stored


@pytest.mark.parametrize("value", ["", "   ", "OL XX", "ol", "OL,OB"])
def test_flags_refuse_unknown_or_no_flags(value: str) -> None:
    error = only_error(decode(reading({"ups.status": value})), Code.VALUE)
    assert "ups.status" in error and "space-separated flags" in error


def test_string_metric() -> None:
    r = only_reading(decode(reading({"fault.code": 'E42 "door"'}), SCANNER))
    assert r.fields["fault.code"] == 'E42 "door"'
    error = only_error(decode(reading({"fault.code": 42}), SCANNER), Code.TYPE)
    assert "fault.code must be a string" in error


def test_huge_numbers() -> None:
    r = only_reading(decode(reading({"battery.charge": 1e308, "x.big": 10**19, "x.huge": 10**30})))
    assert r.fields == {"battery.charge": 1e308, "x.big": 1e19, "x.huge": 1e30}
    assert type(r.fields["x.huge"]) is float
    # JSON has no NaN or infinity; a number too large for a double is refused as JSON.
    assert "not UTF-8 JSON" in only_error(
        decode(b'{"ts": 1789990000, "metrics": {"battery.charge": 1e400}}'), Code.JSON
    )
    assert "not UTF-8 JSON" in only_error(
        decode(b'{"ts": 1789990000, "metrics": {"x": NaN}}'), Code.JSON
    )


# --- unknown metrics ---------------------------------------------------------------------------


def test_unknown_metrics_are_kept_numbers_as_floats() -> None:
    r = only_reading(
        decode(reading({"fw.build": 42, "fw.temp_2": 1.5, "fw.beta": True, "fw.note": "hi"}))
    )
    assert r.fields == {"fw.build": 42.0, "fw.temp_2": 1.5, "fw.beta": True, "fw.note": "hi"}
    assert type(r.fields["fw.build"]) is float


def test_longest_unknown_name_is_kept() -> None:
    name = "a" * 64
    assert only_reading(decode(reading({name: 1}))).fields == {name: 1.0}


@pytest.mark.parametrize("name", ["Bad", "1abc", "a-b", "a b", "", "a" * 65, "é", "_x", "seq"])
def test_bad_metric_names(name: str) -> None:
    error = only_error(decode(reading({name: 1.0})), Code.METRIC_NAME)
    assert "metric name" in error and repr(name) in error


@pytest.mark.parametrize(
    ("value", "type_name"), [([1], "list"), ({"a": 1}, "dict"), (None, "NoneType")]
)
def test_unknown_metric_refuses_lists_objects_and_null(value: Any, type_name: str) -> None:
    error = only_error(decode(reading({"fw.extra": value})), Code.TYPE)
    assert f"fw.extra must be a number, a bool or a string, got {type_name}" == error


@pytest.mark.parametrize("value", [[1], {"a": 1}, None])
def test_known_metric_refuses_lists_objects_and_null(value: Any) -> None:
    assert "ups.load must be a number" in only_error(
        decode(reading({"ups.load": value})), Code.TYPE
    )


def test_string_length_limit() -> None:
    limit = DecodeLimits().max_string
    assert only_reading(decode(reading({"fw.note": "x" * limit}))).fields["fw.note"] == "x" * limit
    error = only_error(decode(reading({"fw.note": "x" * (limit + 1)})), Code.STRING_LENGTH)
    assert error == f"fw.note is longer than {limit} characters"
    error = only_error(
        decode(reading({"fault.code": "é" * (limit + 1)}), SCANNER), Code.STRING_LENGTH
    )
    assert error == f"fault.code is longer than {limit} characters"


def test_metric_count_limit() -> None:
    limits = DecodeLimits(max_metrics=3)
    assert only_reading(decode(reading({f"m.{i}": i for i in range(3)}), limits=limits))
    error = only_error(
        decode(reading({f"m.{i}": i for i in range(4)}), limits=limits), Code.METRIC_COUNT
    )
    assert error == "4 metrics exceed the limit of 3"


# --- whole-payload rejections --------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"{", b"ts=1", b'{"ts": 1,}', b"\x00"])
def test_not_json(payload: bytes) -> None:
    assert only_error(decode(payload), Code.JSON).startswith("not UTF-8 JSON")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"ts": 1789990000, "metrics": {"fw.note": "\xff"}}',
        b'{"ts": 1789990000, "metrics": {"fw.note": "\xc3\x28"}}',
        '{"ts": 1789990000, "metrics": {"fw.note": "é"}}'.encode("latin-1"),
    ],
)
def test_not_utf8(payload: bytes) -> None:
    error = only_error(decode(payload), Code.JSON)
    assert error.startswith("not UTF-8 JSON") and "UTF-8" in error


@pytest.mark.parametrize(
    ("payload", "type_name"),
    [(b"42", "int"), (b"4.2", "float"), (b'"x"', "str"), (b"null", "NoneType"), (b"true", "bool")],
)
def test_wrong_top_level_type(payload: bytes, type_name: str) -> None:
    error = only_error(decode(payload), Code.SHAPE)
    assert error == f"payload is a JSON {type_name}, not an object or an array of objects"


def test_empty_batch() -> None:
    assert only_error(decode([]), Code.SHAPE) == "empty batch: the array holds no readings"


def test_batch_limit() -> None:
    limits = DecodeLimits(max_batch=3)
    assert len(decode([reading()] * 3, limits=limits).readings) == 3
    error = only_error(decode([reading()] * 4, limits=limits), Code.BATCH_LENGTH)
    assert error == "batch of 4 readings exceeds the limit of 3"


def test_oversize_payload() -> None:
    limits = DecodeLimits(max_payload_bytes=100)
    fits = json.dumps(reading({"fw.note": ""})).encode()
    fits = fits.replace(b'""', b'"' + b"x" * (100 - len(fits)) + b'"')
    assert len(fits) == 100
    assert only_reading(decode(fits, limits=limits))
    error = only_error(decode(fits + b" ", limits=limits), Code.PAYLOAD_SIZE)
    assert error == "payload of 101 bytes exceeds the limit of 100"


def test_batch_item_that_is_not_an_object() -> None:
    result = decode([reading(), 5, "x"])
    assert len(result.readings) == 1
    assert [error.text for error in result.errors] == [
        "reading 1: a reading must be a JSON object, not int",
        "reading 2: a reading must be a JSON object, not str",
    ]
    assert [(error.code, error.index) for error in result.errors] == [
        (Code.SHAPE, 1),
        (Code.SHAPE, 2),
    ]


# --- reading-level rejections ------------------------------------------------------------------


def test_missing_ts() -> None:
    assert (
        only_error(decode({"metrics": {"battery.charge": 1.0}}), Code.TIMESTAMP) == "ts is missing"
    )


@pytest.mark.parametrize(
    ("ts", "needle"),
    [
        ("2026-09-21T10:00:00", "has no UTC offset"),
        ("2026-09-21", "has no UTC offset"),
        ("yesterday", "is not an RFC 3339 timestamp"),
        ("2026-13-01T00:00:00Z", "is not an RFC 3339 timestamp"),
        ("", "is not an RFC 3339 timestamp"),
        (None, "ts must be an RFC 3339 string or epoch seconds"),
        (True, "ts must be an RFC 3339 string or epoch seconds"),
        ([TS], "ts must be an RFC 3339 string or epoch seconds"),
        ({"s": TS}, "ts must be an RFC 3339 string or epoch seconds"),
    ],
)
def test_bad_ts(ts: Any, needle: str) -> None:
    assert needle in only_error(decode(reading(ts=ts)), Code.TIMESTAMP)


@pytest.mark.parametrize(
    "ts", [NOW + 301, int(NOW) + 3600, "2026-09-21T14:20:00Z", "2100-01-01T00:00:00Z"]
)
def test_ts_more_than_five_minutes_ahead(ts: Any) -> None:
    error = only_error(decode(reading(ts=ts)), Code.TIMESTAMP)
    assert error == "ts is more than 300 s in the future (device clock ahead?)"


def test_future_limit_is_configurable() -> None:
    limits = DecodeLimits(max_future_seconds=10)
    assert only_reading(decode(reading(ts=NOW + 9), limits=limits))
    assert "more than 10 s in the future" in only_error(
        decode(reading(ts=NOW + 11), limits=limits), Code.TIMESTAMP
    )


@pytest.mark.parametrize(
    "ts", [946_684_799, 0, -1, 946_684_799.9, "1999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"]
)
def test_ts_before_2000(ts: Any) -> None:
    assert (
        only_error(decode(reading(ts=ts)), Code.TIMESTAMP)
        == "ts is before 2000-01-01 (device clock not set?)"
    )


@pytest.mark.parametrize(
    "ts", [1_789_990_000_000, 1_789_990_000_000.0, 1_789_990_000_000_000_000, 10**30]
)
def test_ts_in_milliseconds_or_larger(ts: Any) -> None:
    error = only_error(decode(reading(ts=ts)), Code.TIMESTAMP)
    assert "out of range; send epoch seconds, not milliseconds" in error


@pytest.mark.parametrize("seq", [-1, 1.5, 1.0, "3", True, 2**63, [1]])
def test_bad_seq(seq: Any) -> None:
    error = only_error(decode(reading(seq=seq)), Code.SEQ)
    assert error.startswith("seq must be a non-negative integer, got")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"ts": TS}, "metrics must be a JSON object of name: value"),
        ({"ts": TS, "metrics": None}, "metrics must be a JSON object of name: value"),
        (
            {"ts": TS, "metrics": [["battery.charge", 1]]},
            "metrics must be a JSON object of name: value",
        ),
        ({"ts": TS, "metrics": "battery.charge=1"}, "metrics must be a JSON object of name: value"),
        ({"ts": TS, "metrics": {}}, "metrics is empty"),
    ],
)
def test_bad_metrics(doc: dict[str, Any], expected: str) -> None:
    assert only_error(decode(doc), Code.SHAPE) == expected


def test_extra_keys() -> None:
    error = only_error(decode(reading(device="ups-1", site="x")), Code.SHAPE)
    assert error == "unexpected keys ['device', 'site']; a reading has ts, seq and metrics"


def test_one_bad_metric_refuses_the_whole_reading() -> None:
    # Half a reading would be a silent partial write: the reading goes whole or not at all.
    error = only_error(decode(reading({"battery.charge": 50.0, "ups.load": "high"})), Code.TYPE)
    assert "ups.load must be a number" in error


def test_batch_with_one_bad_reading_keeps_the_good_ones() -> None:
    batch = [
        reading({"ups.load": 1.0}, seq=0),
        reading({"ups.load": 2.0}, seq=1),
        reading({"ups.load": "two"}, seq=2),
        reading({"ups.load": 3.0}, seq=3, ts=NOW + 3600),
        reading({"ups.load": 4.0}, seq=4),
    ]
    result = decode(batch)
    assert [r.seq for r in result.readings] == [0, 1, 4]
    assert len(result.errors) == 2
    assert result.errors[0].text.startswith("reading 2: ups.load must be a number")
    assert result.errors[1].text.startswith("reading 3: ts is more than 300 s in the future")
    assert [error.code for error in result.errors] == [Code.TYPE, Code.TIMESTAMP]


def test_batch_of_one_still_names_the_index() -> None:
    assert (
        only_error(decode([{"metrics": {"ups.load": 1.0}}]), Code.TIMESTAMP)
        == "reading 0: ts is missing"
    )


# --- properties ---------------------------------------------------------------------------

_ALL_NAMES = sorted({name for specs in METRICS.values() for name in specs})
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
timestamps = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=900_000_000, max_value=int(NOW) + 1000),
    st.text(max_size=40),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    json_values,
)
metric_names = st.one_of(
    st.sampled_from(_ALL_NAMES),
    st.from_regex(r"[a-z][a-z0-9_.]{0,5}", fullmatch=True),
    st.text(max_size=10),
)
metric_values = st.one_of(
    json_values,
    st.sampled_from(["OL", "OB DISCHRG", "ready", "mains", "ups", "battery", "OL  LB", ""]),
    st.integers(min_value=-(2**64), max_value=2**64).map(float),
)
readings_like = st.fixed_dictionaries(
    {"ts": timestamps, "metrics": st.dictionaries(metric_names, metric_values, max_size=6)},
    optional={"seq": json_values, "extra": json_values},
)
documents = st.one_of(json_values, readings_like, st.lists(readings_like, max_size=5))
kinds = st.sampled_from(list(DeviceKind))


def _check_invariants(result: TelemetryDecode, kind: DeviceKind, items: int | None) -> None:
    assert result.readings or result.errors
    for error in result.errors:
        assert type(error.code) is DecodeErrorCode and error.detail
        assert error.index is None or items is None or 0 <= error.index < items
    if items is not None and not (len(result.errors) == 1 and not result.readings):
        assert len(result.readings) + len(result.errors) == items
    specs = METRICS[kind]
    max_ns = int((NOW + 300) * 10**9)
    for r in result.readings:
        assert type(r.ts_ns) is int and 946_684_800 * 10**9 <= r.ts_ns <= max_ns
        assert r.seq is None or (type(r.seq) is int and 0 <= r.seq < 2**63)
        assert r.fields
        for name, value in r.fields.items():
            spec = specs.get(name)
            if spec is None:
                assert type(value) in (float, bool, str)
            elif spec.type is MetricType.FLOAT:
                assert type(value) is float
            elif spec.type is MetricType.INT:
                assert type(value) is int and -(2**63) <= value < 2**63
            elif spec.type is MetricType.BOOL:
                assert type(value) is bool
            elif spec.type is MetricType.ENUM:
                assert value in spec.allowed
            elif spec.type is MetricType.FLAGS:
                assert value.split(" ") and all(flag in spec.allowed for flag in value.split(" "))
            else:
                assert type(value) is str
            if type(value) is float:
                assert math.isfinite(value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=300), kind=kinds)
def test_decode_never_raises_on_arbitrary_bytes(payload: bytes, kind: DeviceKind) -> None:
    _check_invariants(decode_telemetry(payload, kind, NOW), kind, None)


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, kind=kinds)
def test_decode_never_raises_on_arbitrary_json(document: Any, kind: DeviceKind) -> None:
    payload = json.dumps(document).encode()
    result = decode_telemetry(payload, kind, NOW)
    items = len(document) if isinstance(document, list) and document else None
    if isinstance(document, dict):
        items = 1
    _check_invariants(result, kind, items)


@settings(max_examples=100)
@given(document=documents, kind=kinds)
def test_decode_is_deterministic_and_orjson_agrees(document: Any, kind: DeviceKind) -> None:
    # Same document, serialised by another encoder (orjson cannot hold ints over 64 bits).
    try:
        other = orjson.dumps(document)
    except TypeError:
        return
    first = decode_telemetry(json.dumps(document).encode(), kind, NOW)
    second = decode_telemetry(other, kind, NOW)
    assert first.readings == second.readings
    assert len(first.errors) == len(second.errors)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, kind=kinds)
def test_line_encoding_path_agrees_with_decode_then_encode(document: Any, kind: DeviceKind) -> None:
    # The collector's fused path (collector.lines) must accept, refuse and encode exactly as
    # decoding the readings and encoding them with the general line-protocol encoder would.
    payload = json.dumps(document).encode()
    decoded = decode_telemetry(payload, kind, NOW)
    prefix = f"{kind.value},device=d-1,site=s "
    lines = decode_telemetry_lines(payload, kind, NOW, prefix)
    assert lines.errors == decoded.errors
    assert lines.seqs == [reading.seq for reading in decoded.readings]
    expected = []
    for reading in decoded.readings:
        fields = dict(reading.fields)
        if reading.seq is not None:
            fields["seq"] = reading.seq
        line = encode_line(kind.value, {"site": "s", "device": "d-1"}, fields, reading.ts_ns)
        expected.append(line.encode())
    assert lines.lines == expected
