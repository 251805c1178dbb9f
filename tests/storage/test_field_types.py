"""Type-stable storage (issue 12): the first type a field is written with wins, a value of
another type is stored under the derived name, and no reading is refused for it.

- InfluxDB and the SQLite store hold, refuse and report field types alike (real InfluxDB).
- A collector started on a database that already holds a field reads its type back, and
  stores a value of another type under the derived name without a single refused write.
- Two collectors in one shared-subscription group race on the first type of new fields: one
  loses at write time, learns the type from the refusal, rewrites its lines, and nothing is
  dead-lettered.
- The collector's table alone: NUT's documentation types ``ups`` fields; the derived name
  chain; the writer's rewrite.

Real Mosquitto, InfluxDB and collector processes; the SQLite store is Kordon's own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from collector.fieldtypes import FieldTypes
from collector.lines import decode_telemetry_lines
from kordon.config import InfluxSettings
from kordon.model.kinds import DeviceKind
from kordon.storage.fieldtypes import (
    FieldConflict,
    conflict_message,
    derived_name,
    parse_conflict,
    type_name,
)
from kordon.storage.lineprotocol import encode_line
from kordon.storage.stores import open_telemetry_store
from kordon.storage.telemetry import StoreRejected, TelemetryStore
from testkit import InfluxServer, MosquittoServer, wait_until
from testkit.field_types import Collector
from testkit.mqtt import Publisher, Recorder

T0 = 1_790_000_400 * 10**9
S = 10**9


# --- the rule, in process --------------------------------------------------------------------
def test_derived_names_and_the_conflict_message_round_trip() -> None:
    assert derived_name("input.source", type_name("normal")) == "input.source.text"
    assert derived_name("input.source", type_name(2.0)) == "input.source.num"
    assert derived_name("x", type_name(3)) == "x.int"
    assert derived_name("x", type_name(True)) == "x.bool"
    conflict = FieldConflict("ups", 'odd "name"', "string", "float")
    assert parse_conflict(conflict_message(conflict, 2).replace('"name"', '\\"name\\"')) == conflict
    assert parse_conflict("field type conflict") is None


def test_nut_documentation_types_ups_fields_whichever_driver_reports_first() -> None:
    types = FieldTypes()
    prefix = "ups,device=a,site=s "
    # Eaton says 128.00 for a documented word, an MGE unit says yes; efficiency is a number.
    first = decode_telemetry_lines(
        orjson.dumps({"ts": T0 // S, "metrics": {"ups.start.auto": 128.0,
                                                 "ups.efficiency": "LoadTooLow",
                                                 "vendor.x": "on"}}),
        DeviceKind.UPS, T0 / S, prefix, types=types,
    )
    assert first.errors == []
    line = first.lines[0].decode()
    assert 'ups.start.auto.num=128.0' in line
    assert 'ups.efficiency.text="LoadTooLow"' in line
    assert 'vendor.x="on"' in line  # undocumented: the first value seen types it
    second = decode_telemetry_lines(
        orjson.dumps({"ts": T0 // S, "metrics": {"ups.start.auto": "yes",
                                                 "ups.efficiency": 95, "vendor.x": 1}}),
        DeviceKind.UPS, T0 / S, prefix, types=types,
    )
    line = second.lines[0].decode()
    assert 'ups.start.auto="yes"' in line and "ups.efficiency=95.0" in line
    assert "vendor.x.num=1.0" in line
    assert types.stats.values_retyped == {("ups", "num"): 2, ("ups", "text"): 1}
    # The same names on a scanner are not NUT's: first seen wins there.
    scanner = decode_telemetry_lines(
        orjson.dumps({"ts": T0 // S, "metrics": {"ups.efficiency": "LoadTooLow"}}),
        DeviceKind.SCANNER, T0 / S, "scanner,device=a,site=s ", types=types,
    )
    assert 'ups.efficiency="LoadTooLow"' in scanner.lines[0].decode()


def test_a_derived_name_held_with_another_type_derives_again() -> None:
    types = FieldTypes()
    types.learn("ups", "vendor.y", "float")
    types.learn("ups", "vendor.y.text", "boolean")
    assert types.stored_name("ups", "vendor.y", str) == "vendor.y.text.text"
    assert types.retype("ups", {"vendor.y": "a", "seq": 3}) == {"vendor.y.text.text": "a",
                                                               "seq": 3}
    assert types.retype("ups", {"vendor.y": 1.0}) is None


# --- the stores refuse alike ------------------------------------------------------------------
@pytest.fixture
def both(tmp_path: Path, influxdb: InfluxServer, database: str) -> Iterator[list[TelemetryStore]]:
    stores = [
        open_telemetry_store(InfluxSettings(url=influxdb.url, database=database)),
        open_telemetry_store(InfluxSettings(url=f"sqlite://{tmp_path}/telemetry.db")),
    ]
    for store in stores:
        store.create_database()
    yield stores
    for store in stores:
        store.close()


def _line(device: str, fields: dict, offset: int = 0) -> str:
    return encode_line("ups", {"site": "s", "device": device}, fields, T0 + offset * S)


def _answer(store: TelemetryStore, body: str) -> str | None:
    try:
        store.write(body.encode())
    except StoreRejected as exc:
        return f"{exc.status} {exc.message}"
    return None


def test_sqlite_refuses_and_reports_field_types_as_influxdb_does(
    both: list[TelemetryStore],
) -> None:
    writes = [
        # The first write fixes the types.
        "\n".join([_line("a", {"f": 1.5, "s": "x", "b": True, "i": 3}),
                   _line("b", {"f": 2.5}, 1)]),
        # A conflict on an existing field drops that point only (a partial write).
        "\n".join([_line("c", {"f": "text", "g": 1.0}), _line("d", {"f": 4.0}),
                   _line("e", {"s": 5.0})]),
        # An integer is not a float; a float is not a boolean.
        _line("f", {"f": 7}),
        _line("g", {"b": 1.0, "new": 2.0}),
        # A new field whose points disagree within one write: the first one wins.
        "\n".join([_line("h", {"n": 1.0}), _line("i", {"n": "one"})]),
        # "time" cannot be a field: InfluxDB drops it, and refuses a point of nothing else.
        "\n".join([_line("j", {"time": 1.0, "k": 2.0}), _line("k", {"time": 1.0})]),
        # Values of every type under their derived names go through.
        _line("c", {"f.text": "text", "g": 1.0}),
    ]
    answers = [[_answer(store, body) for body in writes] for store in both]
    assert answers[0] == answers[1]
    assert [answer is None for answer in answers[0]] == [True, False, False, False, False, False,
                                                        True]
    assert 'input field "f" on measurement "ups" is type string, already exists as type float ' \
           "dropped=2" in str(answers[0][1])
    influx, sqlite = (store.field_types("ups") for store in both)
    assert influx == sqlite == {"b": "boolean", "f": "float", "f.text": "string", "g": "float",
                                "i": "integer", "k": "float", "n": "float", "s": "string"}
    views = []
    for store in both:
        views.append(sorted(
            (p.device, p.ts_ns, sorted(p.fields.items()), sorted(p.last_values.items()))
            for p in store.latest("ups", T0 - S)
        ))
    assert views[0] == views[1]
    assert {device for device, *_ in views[0]} == {"a", "b", "c", "d", "h", "j"}
    assert both[0].field_types("nothing") == both[1].field_types("nothing") == {}


# --- collectors -------------------------------------------------------------------------------
def _store(tmp_path: Path, influxdb: InfluxServer, database: str, backend: str) -> TelemetryStore:
    url = f"sqlite://{tmp_path}/telemetry.db" if backend == "sqlite" else influxdb.url
    return open_telemetry_store(InfluxSettings(url=url, database=database))


def _values(store: TelemetryStore, site: str) -> dict[str, dict]:
    return {p.device: p.last_values for p in store.latest("ups", 0) if p.site == site}


@pytest.mark.parametrize("backend", ["influxdb", "sqlite"])
def test_a_restarted_collector_reads_the_types_back(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, database: str,
    site: str, backend: str,
) -> None:
    publisher = Publisher(mosquitto.host, mosquitto.port)
    deadletters = Recorder(mosquitto.host, mosquitto.port, "kordon/v1/deadletter")
    store = _store(tmp_path, influxdb, database, backend)
    now = int(time.time())
    topic = f"kordon/v1/{site}/ups/ups-1/telemetry"
    try:
        run = uuid.uuid4().hex[:6]  # persistent sessions: a client id of this test's own
        first = Collector(tmp_path, mosquitto, influxdb, database, backend, f"c1-{run}").start()
        publisher.publish(topic, orjson.dumps(
            {"ts": now - 10, "seq": 0, "metrics": {"vendor.mode": "eco"}}))
        wait_until(lambda: _values(store, site).get("ups-1", {}).get("vendor.mode") == "eco",
                   20, what="the string to be stored")
        first.stop()
        # A new collector (new client, new data folder: nothing of the first one's memory).
        second = Collector(tmp_path, mosquitto, influxdb, database, backend, f"c2-{run}").start()
        assert "field types read from the store: ups 2" in second.process.log_text()
        publisher.publish(topic, orjson.dumps(
            {"ts": now - 5, "seq": 1, "metrics": {"vendor.mode": 2.5}}))
        wait_until(lambda: _values(store, site).get("ups-1", {}).get("vendor.mode.num") == 2.5,
                   20, what="the number under vendor.mode.num")
        assert second.counter("kordon_collector_type_conflicts_total") == 0  # no refusal
        assert second.metrics()[
            'kordon_collector_values_retyped_total{kind="ups",stored_as="num"}'] == 1
        assert store.field_types("ups") == {"seq": "integer", "vendor.mode": "string",
                                            "vendor.mode.num": "float"}
        assert second.counter("kordon_collector_deadlettered_total") == 0
        second.stop()
        assert not list(deadletters.messages)
    finally:
        store.close()
        publisher.close()
        deadletters.close()


@pytest.mark.parametrize("backend", ["influxdb", "sqlite"])
def test_two_collectors_racing_on_a_fields_first_type_lose_nothing(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, database: str,
    site: str, backend: str,
) -> None:
    group = f"race-{uuid.uuid4().hex[:6]}"
    collectors = [
        Collector(tmp_path, mosquitto, influxdb, database, backend, f"{group}-{n}",
                  protocol="5", group=group).start()
        for n in range(2)
    ]
    publisher = Publisher(mosquitto.host, mosquitto.port)
    deadletters = Recorder(mosquitto.host, mosquitto.port, "kordon/v1/deadletter")
    store = _store(tmp_path, influxdb, database, backend)
    now = int(time.time())
    fields = [f"vendor.race{n}" for n in range(10)]
    try:
        # Round robin hands one message of each pair to each collector: each thinks it types
        # the field first (a float on ups-a, a string on ups-b).
        for n, name in enumerate(fields):
            publisher.publish(f"kordon/v1/{site}/ups/ups-a/telemetry", orjson.dumps(
                {"ts": now - 100 + n, "seq": n, "metrics": {name: float(n)}}))
            publisher.publish(f"kordon/v1/{site}/ups/ups-b/telemetry", orjson.dumps(
                {"ts": now - 100 + n, "seq": n, "metrics": {name: f"w{n}"}}))

        def stored() -> bool:
            values = _values(store, site)
            types = store.field_types("ups")
            for n, name in enumerate(fields):
                held = types.get(name)
                if held is None:
                    return False
                a = name if held == "float" else f"{name}.num"
                b = name if held == "string" else f"{name}.text"
                if values.get("ups-a", {}).get(a) != float(n):
                    return False
                if values.get("ups-b", {}).get(b) != f"w{n}":
                    return False
            return True

        wait_until(stored, 30, what="every value of both devices, under its name or derived")
        received = sum(c.counter("kordon_collector_messages_received_total") for c in collectors)
        assert received >= 2 * len(fields)  # and other tests' retained statuses, if any
        assert all(c.counter("kordon_collector_messages_received_total") > 0 for c in collectors)
        conflicts = sum(c.counter("kordon_collector_type_conflicts_total") for c in collectors)
        assert conflicts >= 1, "no collector lost a race: the test proved nothing"
        for c in collectors:
            assert c.counter("kordon_collector_deadlettered_total") == 0
            assert c.counter("kordon_collector_lines_rejected_total") == 0
        assert not list(deadletters.messages)
        # The losers said so once per name in their logs, and counted what they moved.
        retyped = sum(c.counter("kordon_collector_values_retyped_total") for c in collectors)
        assert retyped == len(fields)
    finally:
        for c in collectors:
            c.stop()
        store.close()
        publisher.close()
        deadletters.close()
