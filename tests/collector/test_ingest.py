"""Readings published over a real Mosquitto end up in a real InfluxDB, typed and timed."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from testkit import InfluxServer, KordonProcess, MakeProcess, MosquittoServer, wait_until
from testkit.mqtt import Publisher

TS = 1_790_000_000  # 2026-09-21


@pytest.fixture
def collector(make_collector: MakeProcess) -> Iterator[KordonProcess]:
    process = make_collector()
    process.start(ready_line="collector ready")
    yield process
    assert process.stop() == 0, process.tail_log()


@pytest.fixture
def publisher(mosquitto: MosquittoServer) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.host, mosquitto.port)
    yield pub
    pub.close()


def test_single_reading_is_stored_with_types_tags_and_timestamp(
    collector: KordonProcess,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    payload = {
        "ts": "2026-09-21T10:00:00.250Z",
        "seq": 7,
        "metrics": {
            "ups.status": "OB  DISCHRG",
            "battery.charge": 87,
            "battery.runtime": 1260.5,
            "input.voltage": 0,
            "ups.firmware.note": 'v2 "beta"',
            "ups.beeper.enabled": True,
        },
    }
    publisher.publish(f"kordon/v1/{site}/ups/ups-1/telemetry", orjson.dumps(payload))
    rows = wait_until(
        lambda: influxdb.query(f"SELECT * FROM ups WHERE site='{site}'", database),
        20,
        what="the reading in InfluxDB",
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["time"] == 1_789_984_800_250_000_000  # 2026-09-21T10:00:00.250Z
    assert row["device"] == "ups-1" and row["site"] == site
    assert row["ups.status"] == "OB DISCHRG"
    assert row["battery.charge"] == 87.0 and row["seq"] == 7
    assert row["ups.firmware.note"] == 'v2 "beta"'
    assert row["ups.beeper.enabled"] is True
    types = {
        r["fieldKey"]: r["fieldType"] for r in influxdb.query("SHOW FIELD KEYS FROM ups", database)
    }
    assert types["battery.charge"] == "float"
    assert types["input.voltage"] == "float"  # sent as the JSON integer 0
    assert types["seq"] == "integer"
    assert types["ups.status"] == "string"
    assert types["ups.beeper.enabled"] == "boolean"


def test_batch_is_stored_reading_by_reading(
    collector: KordonProcess,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    batch = [
        {
            "ts": TS + i,
            "seq": i,
            "metrics": {
                "scanner.state": "ready",
                "scans.total": 100 + i,
                "xray.ready": True,
                "power.source": "mains",
            },
        }
        for i in range(100)
    ]
    publisher.publish(f"kordon/v1/{site}/scanner/sc-1/telemetry", orjson.dumps(batch))
    rows = wait_until(
        lambda: (
            (r := influxdb.query(f"SELECT * FROM scanner WHERE site='{site}'", database))
            and len(r) == 100
            and r
        ),
        20,
        what="100 readings",
    )
    assert [row["seq"] for row in rows] == list(range(100))
    assert [row["time"] for row in rows] == [(TS + i) * 10**9 for i in range(100)]
    assert rows[5]["scans.total"] == 105
    types = {
        r["fieldKey"]: r["fieldType"]
        for r in influxdb.query("SHOW FIELD KEYS FROM scanner", database)
    }
    assert types["scans.total"] == "integer"


def test_availability_goes_to_device_status(
    collector: KordonProcess,
    publisher: Publisher,
    influxdb: InfluxServer,
    database: str,
    site: str,
) -> None:
    publisher.publish(f"kordon/v1/{site}/radio/rbs-1/status", "offline", retain=True)
    rows = wait_until(
        lambda: influxdb.query(f"SELECT * FROM device_status WHERE site='{site}'", database),
        20,
        what="the status point",
    )
    assert rows[0]["state"] == "offline" and rows[0]["online"] is False
    assert rows[0]["kind"] == "radio" and rows[0]["device"] == "rbs-1"
