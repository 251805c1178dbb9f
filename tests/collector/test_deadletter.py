"""Bad input goes to ``kordon/v1/deadletter`` with the original topic and a reason, and writes
nothing; a line InfluxDB refuses for good is dead-lettered without blocking its batch; a value
of another type than its field's is stored under the derived name, never dead-lettered.

Real Mosquitto, real InfluxDB, the collector as a child process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kordon.model.topics import DEADLETTER_TOPIC
from kordon.storage.influx import InfluxClient, InfluxTarget
from testkit import InfluxServer, KordonProcess, MakeProcess, MosquittoServer, wait_until
from testkit.mqtt import Publisher, Recorder

MAX_PAYLOAD = 1024
DEADLETTER_PAYLOAD = 512


def _forget_session(mosquitto: MosquittoServer, client_id: str) -> None:
    """Connect once with a clean session so the broker drops the collector's queue."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        wait_until(client.is_connected, 10, what="clean-session connection")
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def collector(mosquitto: MosquittoServer, make_collector: MakeProcess) -> Iterator[KordonProcess]:
    client_id = f"dl-{uuid.uuid4().hex[:8]}"
    process = make_collector(
        client_id=client_id,
        extra_config=(
            f"  max_payload_bytes: {MAX_PAYLOAD}\n"
            f"  deadletter_payload_bytes: {DEADLETTER_PAYLOAD}\n"
        ),
    )
    process.start(ready_line="collector ready")
    yield process
    try:
        assert process.stop() == 0, process.tail_log()
    finally:
        _forget_session(mosquitto, client_id)


@pytest.fixture
def deadletters(mosquitto: MosquittoServer) -> Iterator[Recorder]:
    recorder = Recorder(mosquitto.host, mosquitto.port, DEADLETTER_TOPIC)
    yield recorder
    recorder.close()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.host, mosquitto.port)
    yield pub
    pub.close()


def _letters(recorder: Recorder) -> list[dict[str, Any]]:
    return [orjson.loads(payload) for payload in recorder.payloads()]


@dataclass
class Case:
    name: str
    topic: str
    payload: bytes
    reason: str  # must appear in the dead letter's reason
    code: str  # the dead letter's code, also its counter label


def _reading(ts: float, **metrics: Any) -> dict[str, Any]:
    return {"ts": ts, "seq": 1, "metrics": metrics or {"battery.charge": 50.0}}


def _bad_inputs(site: str, now: int) -> list[Case]:
    good = orjson.dumps(_reading(now - 60))

    def telemetry(name: str, kind: str = "ups") -> str:
        return f"kordon/v1/{site}-{name}/{kind}/dev-1/telemetry"

    oversize = orjson.dumps(_reading(now - 60, **{"fw.note": "x" * 2000}))
    return [
        Case(
            "unknown kind",
            f"kordon/v1/{site}-kind/toaster/dev-1/telemetry",
            good,
            "kind 'toaster' is not one of radio, scanner, ups",
            "topic",
        ),
        Case(
            "device name",
            f"kordon/v1/{site}-device/ups/bad device!/telemetry",
            good,
            "device 'bad device!' does not match",
            "topic",
        ),
        Case(
            "device name too long",
            f"kordon/v1/{site}-long/ups/{'d' * 65}/telemetry",
            good,
            "does not match ^[A-Za-z0-9_.-]{1,64}$",
            "topic",
        ),
        Case("not json", telemetry("notjson"), b"{ts: soon", "not UTF-8 JSON", "json"),
        Case(
            "invalid utf-8",
            telemetry("utf8"),
            b'{"ts": %d, "metrics": {"fw.note": "\xff\xfe"}}' % (now - 60),
            "not valid UTF-8",
            "json",
        ),
        Case("json scalar", telemetry("scalar"), b"42", "payload is a JSON int", "shape"),
        Case("empty array", telemetry("empty"), b"[]", "empty batch", "shape"),
        Case(
            "missing ts",
            telemetry("nots"),
            orjson.dumps({"metrics": {"battery.charge": 1.0}}),
            "ts is missing",
            "timestamp",
        ),
        Case(
            "future ts",
            telemetry("future"),
            orjson.dumps(_reading(now + 3600)),
            "in the future",
            "timestamp",
        ),
        Case(
            "ts in milliseconds",
            telemetry("millis"),
            orjson.dumps(_reading(now * 1000)),
            "not milliseconds",
            "timestamp",
        ),
        Case(
            "wrong type for a known metric",
            telemetry("type"),
            orjson.dumps(_reading(now - 60, **{"battery.charge": "full"})),
            "battery.charge must be a number, got 'full'",
            "type",
        ),
        Case(
            "enum value not allowed",
            telemetry("enum", "scanner"),
            orjson.dumps(_reading(now - 60, **{"scanner.state": "exploded"})),
            "scanner.state 'exploded' is not one of",
            "value",
        ),
        Case(
            "bad metric name",
            telemetry("name"),
            orjson.dumps(_reading(now - 60, **{"Battery-Charge": 1.0})),
            "metric name 'Battery-Charge' does not match",
            "metric_name",
        ),
        Case(
            "list value",
            telemetry("list"),
            orjson.dumps(_reading(now - 60, **{"fw.modes": [1, 2]})),
            "fw.modes must be a number, a bool or a string, got list",
            "type",
        ),
        Case(
            "oversize",
            telemetry("big"),
            oversize,
            f"payload of {len(oversize)} bytes exceeds the limit of {MAX_PAYLOAD}",
            "payload_size",
        ),
        Case(
            "bad status",
            f"kordon/v1/{site}-status/ups/dev-1/status",
            b"maybe",
            "status must be 'online' or 'offline', got 'maybe'",
            "status",
        ),
    ]


def test_bad_input_is_dead_lettered_and_never_written(
    collector: KordonProcess,
    deadletters: Recorder,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    now = int(time.time())
    cases = _bad_inputs(site, now)
    for case in cases:
        publisher.publish(case.topic, case.payload)
    # The last message is valid: once it is in InfluxDB, everything before it was processed.
    publisher.publish(
        f"kordon/v1/{site}-ok/ups/dev-1/telemetry",
        orjson.dumps(_reading(now - 30, **{"battery.charge": 77.0})),
    )
    rows = wait_until(
        lambda: influxdb.query(f"SELECT * FROM ups WHERE site = '{site}-ok'", database),
        20,
        what="the valid reading",
    )
    assert rows[0]["battery.charge"] == 77.0

    expected = {case.topic: case for case in cases}
    letters = wait_until(
        lambda: (
            (found := {d["topic"]: d for d in _letters(deadletters) if d["topic"] in expected})
            and len(found) == len(expected)
            and found
        ),
        20,
        what=f"{len(expected)} dead letters",
    )
    for topic, case in expected.items():
        letter = letters[topic]
        assert case.reason in letter["reason"], (case.name, letter)
        assert letter["code"] == case.code, (case.name, letter)
        assert letter["errors"][0] == letter["reason"]
        assert letter["payload_bytes"] == len(case.payload), case.name
        shown = case.payload[:DEADLETTER_PAYLOAD].decode("utf-8", errors="replace")
        assert letter["payload"] == shown, case.name
        assert letter["truncated"] is (len(case.payload) > DEADLETTER_PAYLOAD), case.name
        assert letter["received_at"].endswith("Z")
    assert len(_letters(deadletters)) == len(expected)  # one letter per bad message, no more

    # Nothing of any bad message reached InfluxDB, in any measurement.
    with InfluxClient(InfluxTarget(url=influxdb.url, database=database)) as client:
        series = [row["key"] for row in client.series("SHOW SERIES")]
    assert any(f"site={site}-ok" in key for key in series)
    leaked = [key for key in series if site in key and f"site={site}-ok" not in key]
    assert leaked == []
    assert collector.process is not None and collector.process.poll() is None, "collector died"


def test_batch_with_one_bad_reading_writes_the_rest_and_dead_letters_the_one(
    collector: KordonProcess,
    deadletters: Recorder,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    now = int(time.time())
    topic = f"kordon/v1/{site}/radio/rbs-1/telemetry"
    batch = [
        {"ts": now - 30, "seq": 0, "metrics": {"tx.power": 20.0}},
        {"ts": now - 29, "seq": 1, "metrics": {"power.source": "ups"}},  # not for a radio
        {"ts": now - 28, "seq": 2, "metrics": {"tx.power": 21.0}},
    ]
    publisher.publish(topic, orjson.dumps(batch))
    rows = wait_until(
        lambda: (
            (r := influxdb.query(f"SELECT * FROM radio WHERE site = '{site}'", database))
            and len(r) == 2
            and r
        ),
        20,
        what="the two good readings",
    )
    assert [row["seq"] for row in rows] == [0, 2]
    letter = wait_until(
        lambda: next((d for d in _letters(deadletters) if d["topic"] == topic), None),
        20,
        what="the dead letter",
    )
    assert letter["reason"].startswith("reading 1: power.source 'ups' is not one of")
    assert letter["code"] == "value"


def test_a_line_influxdb_refuses_for_good_is_dead_lettered_and_the_rest_of_the_batch_written(
    collector: KordonProcess,
    deadletters: Recorder,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    now = int(time.time())
    topic = f"kordon/v1/{site}/ups/ups-1/telemetry"
    publisher.publish(topic, orjson.dumps({"ts": now - 100, "metrics": {"fw.mode": 1.5}}))
    wait_until(
        lambda: influxdb.query(f"SELECT * FROM ups WHERE site = '{site}'", database),
        20,
        what="the first reading",
    )
    # "time" passes the metric name pattern, but InfluxDB drops a field of that name, and
    # refuses a line that has no other ("invalid field name"): it can never be written.
    batch = [
        {"ts": now - 90, "seq": 1, "metrics": {"battery.charge": 90.0}},
        {"ts": now - 89, "metrics": {"time": "eco"}},
        {"ts": now - 88, "seq": 3, "metrics": {"battery.charge": 88.0, "fw.mode": 2.5}},
    ]
    publisher.publish(topic, orjson.dumps(batch))
    other = f"kordon/v1/{site}/ups/ups-2/telemetry"
    publisher.publish(other, orjson.dumps({"ts": now - 87, "seq": 4, "metrics": {"ups.load": 3.0}}))

    letter = wait_until(
        lambda: next(
            (d for d in _letters(deadletters) if d["topic"] == "influxdb" and site in d["payload"]),
            None,
        ),
        20,
        what="the refused line in the dead-letter topic",
    )
    assert "InfluxDB rejected the line" in letter["reason"]
    assert "invalid field name" in letter["reason"]
    assert letter["code"] == "influx_rejected"
    assert 'time="eco"' in letter["payload"]
    assert f"{now - 89}000000000" in letter["payload"]

    rows = wait_until(
        lambda: (
            (r := influxdb.query(f"SELECT * FROM ups WHERE site = '{site}'", database))
            and len(r) == 4
            and r
        ),
        20,
        what="every good line",
    )
    by_time = {row["time"] // 10**9: row for row in rows}
    assert sorted(by_time) == [now - 100, now - 90, now - 88, now - 87]
    assert by_time[now - 90]["battery.charge"] == 90.0
    assert by_time[now - 88]["fw.mode"] == 2.5
    assert by_time[now - 87]["device"] == "ups-2"
    # Exactly one letter for the one bad line, and the collector carries on.
    refused = [
        d for d in _letters(deadletters) if d["topic"] == "influxdb" and site in d["payload"]
    ]
    assert len(refused) == 1
    publisher.publish(topic, orjson.dumps({"ts": now - 10, "seq": 9, "metrics": {"ups.load": 9.0}}))
    wait_until(
        lambda: influxdb.query(f"SELECT * FROM ups WHERE site = '{site}' AND seq = 9", database),
        20,
        what="a reading after the refusal",
    )
    assert collector.process is not None and collector.process.poll() is None, "collector died"


def test_a_value_of_another_type_is_stored_under_its_derived_name_never_dead_lettered(
    collector: KordonProcess,
    deadletters: Recorder,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    """Issue 12: a field's type is fixed by its first write; a later firmware that sends the
    field as a string loses nothing: the string goes to ``fw.mode.text`` (type rule)."""
    now = int(time.time())
    topic = f"kordon/v1/{site}/ups/ups-1/telemetry"
    # New firmware adds "fw.mode" as a number: InfluxDB fixes the field's type to float.
    publisher.publish(topic, orjson.dumps({"ts": now - 100, "metrics": {"fw.mode": 1.5}}))
    wait_until(
        lambda: influxdb.query(f"SELECT * FROM ups WHERE site = '{site}'", database),
        20,
        what="the first reading",
    )
    # Later firmware sends it as a string, then as a number again.
    batch = [
        {"ts": now - 90, "seq": 1, "metrics": {"battery.charge": 90.0}},
        {"ts": now - 89, "seq": 2, "metrics": {"fw.mode": "eco", "battery.charge": 89.0}},
        {"ts": now - 88, "seq": 3, "metrics": {"battery.charge": 88.0, "fw.mode": 2.5}},
    ]
    publisher.publish(topic, orjson.dumps(batch))
    other = f"kordon/v1/{site}/ups/ups-2/telemetry"
    publisher.publish(other, orjson.dumps({"ts": now - 87, "seq": 4, "metrics": {"ups.load": 3.0}}))
    rows = wait_until(
        lambda: (
            (r := influxdb.query(f"SELECT * FROM ups WHERE site = '{site}'", database))
            and len(r) == 5
            and r
        ),
        20,
        what="every reading, the string one included",
    )
    by_time = {row["time"] // 10**9: row for row in rows}
    assert sorted(by_time) == [now - 100, now - 90, now - 89, now - 88, now - 87]
    assert by_time[now - 89]["fw.mode.text"] == "eco"
    assert by_time[now - 89]["fw.mode"] is None
    assert by_time[now - 89]["battery.charge"] == 89.0 and by_time[now - 89]["seq"] == 2
    assert by_time[now - 88]["fw.mode"] == 2.5
    types = {
        r["fieldKey"]: r["fieldType"] for r in influxdb.query("SHOW FIELD KEYS FROM ups", database)
    }
    assert types["fw.mode"] == "float" and types["fw.mode.text"] == "string"
    assert not [d for d in _letters(deadletters) if site in d["topic"] or site in d["payload"]]
    assert collector.process is not None and collector.process.poll() is None, "collector died"
