"""Alert events reach the telemetry store as Grafana annotations, whichever store it is.

The alerts role runs as a child process over a real broker, once with the embedded SQLite
store (``sqlite://``, as ``kordon demo`` runs) and once with a real InfluxDB. Annotations go
through the same store seam as the collector's writes, so under ``sqlite://`` they land in the
SQLite file instead of an HTTP client failing with ``UnsupportedProtocol`` and retrying for
ever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from testkit import InfluxServer, KordonProcess, MosquittoServer, wait_until
from testkit.alerts import FAST_RULES, UPS_ON_MAINS, Devices, ups_on_battery

Events = Callable[[], set[tuple[str, str]]]  # () -> {(alertname, state)} of the test's site


def _sqlite_events(path: Path, site: str) -> Events:
    def events() -> set[tuple[str, str]]:
        if not path.exists():
            return set()
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT DISTINCT s.tags FROM series s JOIN samples m ON m.series = s.id "
                "WHERE s.measurement = 'alerts' AND m.field = 'fingerprint'"
            ).fetchall()
        tags = [orjson.loads(row[0]) for row in rows]
        return {(t["alertname"], t["state"]) for t in tags if t.get("site") == site}

    return events


def _influx_events(influxdb: InfluxServer, database: str, site: str) -> Events:
    def events() -> set[tuple[str, str]]:
        rows = influxdb.query(f"SELECT * FROM alerts WHERE site = '{site}'", database)
        return {(row["alertname"], row["state"]) for row in rows}

    return events


@pytest.mark.parametrize("backend", ["sqlite", "influxdb"])
def test_alert_events_land_in_the_telemetry_store(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    database: str,
    site: str,
) -> None:
    if backend == "sqlite":
        store = tmp_path / "data" / "telemetry.db"
        url = f"sqlite://{store}"
        events = _sqlite_events(store, site)
    else:
        influxdb: InfluxServer = request.getfixturevalue("influxdb")
        url = influxdb.url
        events = _influx_events(influxdb, database, site)
    config = tmp_path / "alerts.yaml"
    config.write_text(f"log_level: INFO\n{FAST_RULES}")
    engine = KordonProcess(
        ["run", "--roles", "alerts"],
        {
            "KORDON_CONFIG": str(config),
            "KORDON_MQTT_URL": own_mosquitto.url,
            "KORDON_DATA_DIR": str(tmp_path / "data"),
            "KORDON_MQTT_CLIENT_ID": "alerts-annotations-test",
            "KORDON_INFLUX_URL": url,
            "KORDON_INFLUX_DB": database,
        },
        tmp_path / "alerts",
    )
    engine.start(ready_line="alerts ready")
    devices = Devices(own_mosquitto, site)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.start()
    try:
        devices.set("ups-1", **ups_on_battery(90.0, drain=0.0))
        wait_until(
            lambda: ("MainsPowerLost", "firing") in events(), 30, what="a firing annotation"
        )
        devices.set("ups-1", **UPS_ON_MAINS)
        wait_until(
            lambda: ("MainsPowerLost", "resolved") in events(), 30, what="a resolved annotation"
        )
    finally:
        devices.stop()
        engine.stop()

    log = engine.log_text()
    assert "UnsupportedProtocol" not in log
    assert "unavailable for alert annotations" not in log
    assert "refused alert annotations" not in log
