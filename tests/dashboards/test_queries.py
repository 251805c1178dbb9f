"""Every query of every shipped dashboard runs against a real InfluxDB and returns series.

The database is filled the way production fills it: realistic readings of all three device
kinds (a grid outage at one site, a normal day at the other) and availability messages are
published over a real Mosquitto and stored by a real collector process. Alert events are
written straight to the ``alerts`` measurement, as the alert engine does, because the alert
role is not part of this test; so are the planned cuts (``outage_schedule``, encoded by the
function the alerts role uses; tests/api/test_foresight.py sees the role write them).

Variables are substituted the way Grafana's InfluxQL data source does it: the ``site`` and
``device`` variable queries run first and "All" becomes the anchored alternation of their
values; ``$timeFilter`` becomes millisecond bounds, ``$__interval`` a bucket width.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dashboards.check import all_panels
from dashboards.locate import dashboard_files, dashboards_dir
from kordon.model.battery import BATTERY_MEASUREMENT
from kordon.schedule import Cut
from kordon.schedule.points import CANCELLED, cut_line
from kordon.storage.lineprotocol import encode_line
from testkit import InfluxServer, KordonProcess, MosquittoServer, wait_until
from testkit.collector import collector_process
from testkit.mqtt import Publisher

STEP = 60  # seconds between readings
READINGS = 120  # two hours per device
OUTAGE_READINGS = 40  # the last 40 minutes of them at the outage site
SITES = {"uzhhorod": True, "chop": False}  # site -> grid lost
DEVICES = {
    "ups": ["ups-scan-1", "ups-it"],
    "scanner": ["scanner-1", "scanner-2"],
    "radio": ["radio-1"],
}
OFFLINE = ("uzhhorod", "scanner", "scanner-2")


@dataclass(frozen=True)
class Filled:
    influx: InfluxServer
    database: str
    start_ms: int
    end_ms: int
    points: int
    now: int


def _ups(i: int, outage: bool) -> dict[str, Any]:
    if not outage:
        return {
            "ups.status": "OL CHRG" if i % 30 == 0 else "OL",
            "battery.charge": 100.0,
            "battery.runtime": 5400.0,
            "battery.voltage": 54.6,
            "input.voltage": 229.0 + (i % 5),
            "input.frequency": 50.0,
            "output.voltage": 230.0,
            "ups.load": 41.0 + (i % 7),
            "ups.realpower": 16400.0,
            "ups.temperature": 27.5,
        }
    minutes = i - (READINGS - OUTAGE_READINGS)
    charge = max(100.0 - 2.1 * minutes, 5.0)
    status = "OB DISCHRG LB" if charge < 20 else "OB DISCHRG"
    return {
        "ups.status": status,
        "battery.charge": charge,
        "battery.runtime": charge * 54.0,
        "battery.voltage": 48.0 + charge / 20,
        "input.voltage": 0.0,
        "input.frequency": 0.0,
        "output.voltage": 230.0,
        "ups.load": 44.0,
        "ups.realpower": 17600.0,
        "ups.temperature": 31.0,
    }


def _scanner(i: int, outage: bool, device: str) -> dict[str, Any]:
    fault = device == "scanner-2" and i == READINGS - 5
    state = "fault" if fault else ("scanning" if i % 3 == 0 else "ready")
    return {
        "scanner.state": state,
        "power.source": "ups" if outage else "mains",
        "power.draw": 15000.0 if state == "scanning" else 5000.0,
        "xray.ready": state in ("ready", "scanning"),
        "scans.total": 10_000 + i // 2,
        "cabinet.temperature": 24.0 + (i % 10) / 2,
        "fault.code": "E217 HV interlock open" if fault else "",
    }


def _radio(i: int, outage: bool) -> dict[str, Any]:
    minutes = i - (READINGS - OUTAGE_READINGS) if outage else 0
    return {
        "power.source": "battery" if outage else "mains",
        "supply.voltage": 53.5 - 0.08 * minutes,
        "battery.charge": 100.0 - 1.2 * minutes,
        "tx.power": 25.0,
        "tx.vswr": 1.3 + (0.5 if outage and minutes > 30 else 0.0),
        "rx.rssi": -92.0 + (i % 6),
        "pa.temperature": 41.0,
        "backhaul.up": not (outage and minutes > 20),
        "terminals.registered": 60 - (i % 4),
    }


def _readings(kind: str, device: str, grid_lost: bool, start: int) -> list[dict[str, Any]]:
    readings = []
    for i in range(READINGS):
        outage = grid_lost and i >= READINGS - OUTAGE_READINGS
        if kind == "ups":
            metrics = _ups(i, outage)
        elif kind == "scanner":
            metrics = _scanner(i, outage, device)
        else:
            metrics = _radio(i, outage)
        readings.append({"ts": start + i * STEP, "seq": i, "metrics": metrics})
    return readings


def _alert_lines(start: int) -> str:
    outage_start = start + (READINGS - OUTAGE_READINGS) * STEP
    events = [
        ("SitePowerOutage", "", "critical", "firing", outage_start + 60),
        ("MainsPowerLost", "ups-scan-1", "warning", "firing", outage_start + 90),
        ("BatteryDepletionImminent", "ups-scan-1", "critical", "firing", outage_start + 1500),
        ("DeviceOffline", "scanner-2", "warning", "firing", outage_start + 1800),
        ("MainsPowerLost", "ups-it", "warning", "resolved", outage_start + 2000),
    ]
    lines = []
    for number, (name, device, severity, state, ts) in enumerate(events):
        tags = {"alertname": name, "site": "uzhhorod", "device": device}
        tags |= {"severity": severity, "state": state}
        fields = {
            "summary": f"{name} at uzhhorod {device}".strip(),
            "description": f"Test event {number}: grid lost at 'uzhhorod'.\nCheck the generator.",
            "fingerprint": f"{number:016x}",
        }
        lines.append(encode_line("alerts", tags, fields, ts * 1_000_000_000))
    return "\n".join(lines)


def _battery_lines(start: int) -> str:
    """What the alerts role writes after each finished discharge (measurement battery_health),
    for every UPS of the test sites: the learned health falling over the test window."""
    lines = []
    for site in SITES:
        for device in DEVICES["ups"]:
            for number, health in enumerate((97.5, 91.0, 78.25)):
                ts = start + (number + 1) * (READINGS * STEP) // 4
                fields = {"health_pct": health, "runtime_ref_s": 1500.0 - 100.0 * number,
                          "confidence": 0.78, "discharges": float(number + 1)}
                tags = {"site": site, "device": device}
                lines.append(encode_line(BATTERY_MEASUREMENT, tags, fields, ts * 1_000_000_000))
    return "\n".join(lines)


def _schedule_cuts(now: int) -> dict[str, Cut]:
    """A cut the charge panel shades (inside the test window), one ahead for the table, and
    one the schedule later dropped (written again as cancelled: shown nowhere)."""
    return {
        "past": Cut("3.1", now - 90 * 60, now - 30 * 60),
        "ahead": Cut("3.1", now + 3600, now + 4 * 3600),
        "dropped": Cut("3.1", now - 20 * 60, now - 10 * 60),
    }


def _schedule_lines(now: int) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Kyiv")
    cuts = _schedule_cuts(now)
    lines = [cut_line(site, cut, zone) for site in SITES for cut in cuts.values()]
    lines.append(cut_line("uzhhorod", cuts["dropped"], zone, CANCELLED))
    lines.append(cut_line("chop", cuts["dropped"], zone, CANCELLED))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def private_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A broker of this module's own: the dashboards use the real site names of the default
    fleet, and other tests leave retained status messages for those names on the shared one."""
    server = MosquittoServer(tmp_path_factory.mktemp("dashboards-mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory,
    private_mosquitto: MosquittoServer,
    influxdb: InfluxServer,
) -> Filled:
    mosquitto = private_mosquitto
    database = f"dashboards_{uuid.uuid4().hex[:8]}"
    workdir = tmp_path_factory.mktemp("dashboards-collector")
    collector: KordonProcess = collector_process(
        workdir, mosquitto, influxdb, database, client_id="collector-dashboards"
    )
    collector.start(ready_line="collector ready")
    publisher = Publisher(mosquitto.host, mosquitto.port)
    now = int(time.time())
    start = now - READINGS * STEP
    status_topics = []
    try:
        for site, grid_lost in SITES.items():
            for kind, devices in DEVICES.items():
                for device in devices:
                    base = f"kordon/v1/{site}/{kind}/{device}"
                    readings = _readings(kind, device, grid_lost, start)
                    for first in range(0, READINGS, 40):  # batches, as devices send after a gap
                        publisher.publish(
                            f"{base}/telemetry", orjson.dumps(readings[first : first + 40])
                        )
                    state = "offline" if (site, kind, device) == OFFLINE else "online"
                    publisher.publish(f"{base}/status", state, retain=True)
                    status_topics.append(f"{base}/status")
        devices = len(SITES) * sum(len(d) for d in DEVICES.values())

        def stored() -> bool:
            counts = [
                influxdb.query(f'SELECT count("seq") FROM "{kind}"', database) for kind in DEVICES
            ]
            total = sum(rows[0]["count"] for rows in counts if rows)
            status = influxdb.query(
                'SELECT count("state") FROM "device_status" WHERE "site" =~ /^(uzhhorod|chop)$/',
                database,
            )
            return total == devices * READINGS and bool(status) and status[0]["count"] == devices

        wait_until(stored, 30, what="every reading and status in InfluxDB")
    finally:
        # The queries need only the database: stop the collector now (function-scoped
        # fixtures kill stray Kordon processes after each test) and leave no retained
        # messages for other tests' collectors.
        stopped = collector.stop()
        for topic in status_topics:
            publisher.publish(topic, b"", retain=True)
        publisher.close()
    assert stopped == 0, collector.tail_log()
    for lines in (_alert_lines(start), _battery_lines(start), _schedule_lines(now)):
        response = httpx.post(f"{influxdb.url}/write", params={"db": database}, content=lines)
        assert response.status_code == 204, response.text
    return Filled(
        influxdb, database, (start - 60) * 1000, (now + 60) * 1000, devices * READINGS, now
    )


def _raw_query(filled: Filled, q: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{filled.influx.url}/query", data={"q": q, "db": filled.database, "epoch": "ms"}
    )
    response.raise_for_status()
    result = response.json()["results"][0]
    assert "error" not in result, f"{result['error']}\nquery: {q}"
    return result.get("series", [])


def _regex_alternation(values: list[str]) -> str:
    """How Grafana formats a multi-value variable for an InfluxQL regex."""
    return "(" + "|".join(re.sub(r"([\\/^$.|?*+()\[\]{}-])", r"\\\1", v) for v in values) + ")"


class Grafana:
    """Grafana's InfluxQL interpolation, for one dashboard with every variable at "All"."""

    def __init__(
        self, filled: Filled, dashboard: dict[str, Any], fixed: dict[str, str] | None = None
    ) -> None:
        self.filled = filled
        self.values: dict[str, str] = {
            "timeFilter": f"time >= {filled.start_ms}ms and time <= {filled.end_ms}ms",
            "__from": str(filled.start_ms),
            "__to": str(filled.end_ms),
            "__interval": "5m",
            "interval": "5m",
            "__interval_ms": "300000",
        }
        for variable in dashboard["templating"]["list"]:  # in order: device depends on site
            if fixed and variable["name"] in fixed:
                self.values[variable["name"]] = fixed[variable["name"]]
                continue
            series = _raw_query(filled, self.interpolate(variable["query"]))
            options = sorted({value for s in series for _key, value in s["values"]})
            assert options, f"variable {variable['name']} has no values"
            self.values[variable["name"]] = _regex_alternation(options)

    def interpolate(self, query: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return self.values[name]

        return re.sub(r"\$\{(\w+)[^}]*\}|\$(\w+)", replace, query)


def _dashboards() -> list[Path]:
    return dashboard_files(dashboards_dir())


@pytest.mark.parametrize("path", _dashboards(), ids=lambda p: p.stem)
def test_every_panel_query_returns_series(filled: Filled, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    grafana = Grafana(filled, dashboard)
    empty = []
    checked = 0
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            series = _raw_query(filled, grafana.interpolate(target["query"]))
            checked += 1
            values = [v for s in series for row in s["values"] for v in row[1:] if v is not None]
            if not values:
                empty.append(f"{panel['title']!r} {target['refId']}: {target['query']}")
    assert checked >= 5
    assert not empty, "queries without data:\n" + "\n".join(empty)


@pytest.mark.parametrize("path", _dashboards(), ids=lambda p: p.stem)
def test_alert_annotations_return_events(filled: Filled, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    grafana = Grafana(filled, dashboard)
    queries = [a for a in dashboard["annotations"]["list"]
               if a.get("query") and a["name"].startswith("Alerts")]
    assert {a["name"] for a in queries} == {"Alerts firing", "Alerts resolved"}
    for annotation in queries:
        series = _raw_query(filled, grafana.interpolate(annotation["query"]))
        assert series, annotation["name"]
        columns = series[0]["columns"]
        mapped = [annotation["textColumn"], annotation["titleColumn"]]
        mapped += annotation["tagsColumn"].split(",")
        assert set(mapped) <= set(columns), (mapped, columns)


def test_overview_counts_what_happened(filled: Filled) -> None:
    """The headline numbers are right, not merely present."""
    dashboard = json.loads((dashboards_dir() / "overview.json").read_text())
    # Only this test's sites: retained statuses of other tests may reach the database too.
    grafana = Grafana(filled, dashboard, {"site": _regex_alternation(sorted(SITES))})
    panels = {p["title"]: p for p in all_panels(dashboard["panels"])}

    def first_value(title: str) -> Any:
        series = _raw_query(filled, grafana.interpolate(panels[title]["targets"][0]["query"]))
        return series[0]["values"][0][1]

    assert first_value("UPS on battery") == 2  # both UPS units at uzhhorod
    assert first_value("Devices offline") == 1
    assert first_value("Alerts fired") == 4
    lowest_charge = 100.0 - 2.1 * (OUTAGE_READINGS - 1)  # the last reading of the outage
    assert first_value("Shortest time to empty") == pytest.approx(lowest_charge * 54.0)
    offline = _raw_query(
        filled, grafana.interpolate(panels["Offline devices"]["targets"][0]["query"])
    )
    assert [s["tags"] for s in offline] == [
        {"site": "uzhhorod", "kind": "scanner", "device": "scanner-2"}
    ]


def test_scheduled_cuts_shade_the_charge_panel(filled: Filled) -> None:
    """The UPS board's "Scheduled cuts" annotation draws each planned cut as a region (start
    to ``time_end``) on the charge panel only; a cut the schedule dropped is not drawn."""
    dashboard = json.loads((dashboards_dir() / "ups.json").read_text())
    grafana = Grafana(filled, dashboard, {"site": "uzhhorod", "device": "ups-it"})
    (annotation,) = [a for a in dashboard["annotations"]["list"]
                     if a["name"] == "Scheduled cuts"]
    panels = {p["title"]: p for p in all_panels(dashboard["panels"])}
    assert annotation["filter"] == {"exclude": False, "ids": [panels["Battery charge"]["id"]]}
    (series,) = _raw_query(filled, grafana.interpolate(annotation["query"]))
    columns = series["columns"]
    assert {annotation["timeEndColumn"], annotation["textColumn"]} <= set(columns)
    rows = [dict(zip(columns, row, strict=True)) for row in series["values"]]
    cuts = _schedule_cuts(filled.now)
    # the range ends a minute from now: the past cut only; the dropped one is not drawn
    assert [(r["time"], r["time_end"]) for r in rows] == [
        (cuts["past"].start * 1000, cuts["past"].end * 1000)
    ]
    assert rows[0]["group"] == "3.1" and "uzhhorod: scheduled cut" in rows[0]["summary"]

    table = panels["Scheduled cuts ahead"]["targets"][0]["query"]
    ahead = _raw_query(filled, grafana.interpolate(table))
    starts = sorted(row[0] for s in ahead for row in s["values"])
    assert starts == [cuts["past"].start * 1000, cuts["ahead"].start * 1000]
