"""Durability under faults, with real processes killed and restarted.

Every test compares what the broker acknowledged to the publisher with what InfluxDB holds:
at-least-once delivery plus device timestamps means every acknowledged (device, seq) must be
stored, and stored once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from testkit import InfluxServer, MakeProcess, MosquittoServer, wait_until
from testkit.mqtt import StreamPublisher


def stored(influxdb: InfluxServer, database: str, site: str) -> list[tuple[str, int]]:
    rows = influxdb.query(f"SELECT seq, device FROM ups WHERE site='{site}'", database)
    return [(row["device"], row["seq"]) for row in rows]


def assert_all_stored_once(
    influxdb: InfluxServer, database: str, site: str, acked: set[tuple[str, int]]
) -> None:
    def complete() -> bool:
        return acked <= set(stored(influxdb, database, site))

    wait_until(complete, 60, interval=0.5, what="every acknowledged reading in InfluxDB")
    points = stored(influxdb, database, site)
    assert len(points) == len(set(points)), "a reading was stored twice"
    missing = acked - set(points)
    assert not missing


def test_influxdb_down_for_20s_loses_nothing(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    own_influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    collector = make_collector(mosquitto=own_mosquitto, influxdb=own_influxdb)
    collector.start(ready_line="collector ready")
    stream = StreamPublisher(
        own_mosquitto.host, own_mosquitto.port, site, devices=50, rate=500
    ).start()
    wait_until(lambda: stored(own_influxdb, database, site), 20, what="first readings")
    own_influxdb.stop()
    outage_started = time.monotonic()
    sent_before = stream.sent
    # Devices keep publishing for 20 s while the database is away.
    wait_until(
        lambda: time.monotonic() - outage_started >= 20, 30, interval=0.5, what="20 s of outage"
    )
    assert stream.sent - sent_before > 5000
    own_influxdb.start()
    stream.stop()
    assert_all_stored_once(own_influxdb, database, site, stream.acked)
    assert "InfluxDB write failed" in collector.log_text()
    assert collector.stop() == 0


def test_collector_sigkill_loses_no_acknowledged_message(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    own_influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    collector = make_collector(mosquitto=own_mosquitto, influxdb=own_influxdb)
    collector.start(ready_line="collector ready")
    stream = StreamPublisher(
        own_mosquitto.host, own_mosquitto.port, site, devices=100, rate=2000
    ).start()
    for _ in range(3):
        wait_until(
            lambda: len(stored(own_influxdb, database, site)) > 0, 20, what="readings flowing"
        )
        marker = stream.sent
        wait_until(lambda m=marker: stream.sent > m + 2000, 20, what="more traffic")
        collector.stop(signal.SIGKILL)
        collector.start(ready_line="collector ready")
    stream.stop()
    assert_all_stored_once(own_influxdb, database, site, stream.acked)
    assert len(stream.acked) > 6000
    assert collector.stop() == 0


def test_mosquitto_restart_loses_nothing(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    own_influxdb: InfluxServer,
    database: str,
    site: str,
    make_collector: MakeProcess,
) -> None:
    collector = make_collector(mosquitto=own_mosquitto, influxdb=own_influxdb)
    collector.start(ready_line="collector ready")
    stream = StreamPublisher(
        own_mosquitto.host, own_mosquitto.port, site, devices=50, rate=1000
    ).start()
    wait_until(lambda: len(stored(own_influxdb, database, site)) > 500, 20, what="readings flowing")
    own_mosquitto.restart()
    marker = stream.sent
    wait_until(lambda: stream.sent > marker + 2000, 30, what="traffic after the restart")
    stream.stop(settle=60)
    assert_all_stored_once(own_influxdb, database, site, stream.acked)
    assert stream.sent == len(stream.acked)
    assert collector.stop() == 0
