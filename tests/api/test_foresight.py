"""Schedule foresight end to end: a real alerts process reads a fleet's schedule file,
forecasts the UPS units it hears over a real Mosquitto, writes ``foresight.json`` and the cuts
to a real InfluxDB; the API (another role, same data dir) serves the next cut and the verdicts,
and the operations page in headless Chromium shows them.

Three sites: ``fs-site`` (a 3 h cut from an hour on; ``ups-1`` lasts hours at 10 % load,
``ups-2`` 20 minutes at 60 %), ``fs-emergency`` (its group's day is an emergency day) and
``fs-none`` (no schedule source): known, emergency and unknown, never "no cuts".
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml

from api.foresight import Foresights
from api.state import iso
from kordon.schedule.render import to_json
from kordon.schedule.snapshot import SNAPSHOT_VERSION, snapshot_path, write_snapshot
from testkit import InfluxServer, KordonProcess, MosquittoServer, wait_until
from testkit.api import TOKENS, RunningApi, api_settings
from testkit.mqtt import Publisher

KYIV = ZoneInfo("Europe/Kyiv")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
UPS = {  # (site, device): (ups.load %, battery.runtime s at full charge)
    ("fs-site", "ups-1"): (10.0, 30000.0),
    ("fs-site", "ups-2"): (60.0, 1200.0),
    ("fs-emergency", "ups-1"): (30.0, 3000.0),
    ("fs-none", "ups-1"): (30.0, 3000.0),
}


@dataclass(frozen=True)
class Stack:
    api: RunningApi
    influx: InfluxServer
    database: str
    cut: tuple[float, float]


def _write_fleet(workdir: Path) -> tuple[Path, tuple[float, float]]:
    now = datetime.now(KYIV).replace(second=0, microsecond=0)
    start = (now + timedelta(hours=1)).timestamp()
    end = start + 3 * 3600
    today = now.date()
    (workdir / "s.json").write_bytes(to_json(
        {"3": [(start, end)], "4": []}, today, today + timedelta(days=1),
        status={("4", today): "emergency", ("4", today + timedelta(days=1)): "emergency"},
    ))
    fleet = {
        "name": "foresight-test",
        "schedules": {"dso": {"url": "s.json", "refresh": "1m"}},
        "sites": {
            "fs-site": {"queue": 3, "schedule": {"source": "dso"},
                        "devices": {"ups-1": {"kind": "ups"}, "ups-2": {"kind": "ups"}}},
            "fs-emergency": {"queue": 4, "schedule": {"source": "dso"},
                             "devices": {"ups-1": {"kind": "ups"}}},
            "fs-none": {"queue": 5, "devices": {"ups-1": {"kind": "ups"}}},
        },
    }
    path = workdir / "fleet.yaml"
    path.write_text(yaml.safe_dump(fleet))
    return path, (start, end)


def _publish_telemetry(mosquitto: MosquittoServer) -> None:
    """Ten minutes of float readings per UPS, ending now: the forecast's rated curve comes
    from the firmware's runtime estimate at full charge."""
    publisher = Publisher(mosquitto.host, mosquitto.port)
    now = time.time()
    try:
        for (site, device), (load, runtime) in UPS.items():
            batch = [
                {"ts": now - 600 + 60 * i, "seq": i,
                 "metrics": {"ups.status": "OL", "battery.charge": 100.0,
                             "battery.runtime": runtime, "ups.load": load,
                             "input.voltage": 230.0}}
                for i in range(11)
            ]
            publisher.publish(f"kordon/v1/{site}/ups/{device}/telemetry", orjson.dumps(batch))
    finally:
        publisher.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("api-foresight")
    database = f"foresight_{time.time_ns() % 10**9}"
    fleet, cut = _write_fleet(workdir)
    settings = api_settings(workdir, mosquitto, influxdb, database, fleet=fleet, live=False)
    config = workdir / "alerts.yaml"
    config.write_text("rules:\n  evaluation_interval: 200ms\n"
                      "  ScheduledOutageAtRisk: {step: 1s}\n")
    engine = KordonProcess(
        ["run", "--roles", "alerts"],
        {
            "KORDON_CONFIG": str(config),
            "KORDON_MQTT_URL": mosquitto.url,
            "KORDON_MQTT_CLIENT_ID": f"fs-alerts-{database}",
            "KORDON_INFLUX_URL": influxdb.url,
            "KORDON_INFLUX_DB": database,
            "KORDON_DATA_DIR": str(settings.data_dir),
            "KORDON_FLEET": str(fleet),
        },
        workdir / "alerts",
    )
    engine.start(ready_line="alerts ready")
    try:
        _publish_telemetry(mosquitto)
        with RunningApi(settings) as api:
            yield Stack(api, influxdb, database, cut)
    finally:
        engine.stop()


def _site(stack: Stack, site: str) -> dict:
    with stack.api.client("viewer") as client:
        response = client.get(f"/api/v1/sites/{site}/foresight")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _forecast_ready(stack: Stack) -> dict:
    def ready() -> dict | None:
        found = _site(stack, "fs-site")
        verdicts = {u["device"]: u["verdict"] for u in found["ups"]}
        return found if found["status"] == "known" and len(verdicts) == 2 and (
            "unknown" not in verdicts.values()) else None

    return wait_until(ready, 60, interval=0.2, what="verdicts for both UPS of fs-site")


@pytest.mark.slow
def test_api_serves_the_next_cut_and_each_ups_verdict(stack: Stack) -> None:
    found = _forecast_ready(stack)
    start, end = stack.cut
    assert found["next_cut"] == {"start": iso(start), "end": iso(end), "duration_s": 3 * 3600.0,
                                 "definite": True, "in_progress": False}
    assert found["group"] == "3" and found["source"] == "dso" and found["configured"]
    ups = {u["device"]: u for u in found["ups"]}
    strong, weak = ups["ups-1"], ups["ups-2"]
    assert strong["verdict"] == "survives" and strong["text"].startswith("survives with margin")
    assert strong["cuts"][0]["charge_end_pct"] > 10
    assert weak["verdict"] == "runs-out"
    (cut,) = weak["cuts"]
    # 20 minutes of battery for a 3 h cut: it runs out about 2 h 40 min before the grid returns
    assert cut["short_s"] == pytest.approx(3 * 3600 - 1200, abs=120)
    assert cut["needed_pct"] > 100 and cut["charge_start_pct"] == pytest.approx(100)
    assert weak["text"].startswith("runs out about 2 h 4")
    assert "even a full battery would not last it" in weak["text"]

    with stack.api.client("viewer") as client:
        every = {s["site"]: s for s in client.get("/api/v1/foresight").json()}
        missing = client.get("/api/v1/sites/nowhere/foresight")
    with stack.api.client() as anonymous:
        refused = anonymous.get("/api/v1/foresight")
    assert set(every) == {"fs-site", "fs-emergency", "fs-none"}
    emergency, none = every["fs-emergency"], every["fs-none"]
    assert emergency["status"] == "emergency" and emergency["next_cut"] is None
    assert [u["verdict"] for u in emergency["ups"]] == ["emergency"]
    assert none["status"] == "unknown" and not none["configured"] and none["cuts"] == []
    assert "no schedule source" in none["reason"]
    assert missing.status_code == 404 and refused.status_code == 401


def test_the_at_risk_ups_is_alerted(stack: Stack) -> None:
    _forecast_ready(stack)

    def raised() -> list[dict]:
        with stack.api.client("viewer") as client:
            alerts = client.get("/api/v1/alerts", params={"site": "fs-site"}).json()
        return [a for a in alerts if a["alertname"] == "ScheduledOutageAtRisk"]

    (alert,) = wait_until(raised, 30, interval=0.2, what="ScheduledOutageAtRisk")
    assert alert["labels"]["device"] == "ups-2"


def test_alerts_role_writes_the_planned_cut_to_influxdb(stack: Stack) -> None:
    start, end = stack.cut

    def written() -> list[dict]:
        return stack.influx.query(  # type: ignore[no-any-return]
            'SELECT "time_end", "status", "summary", "group" FROM "outage_schedule" '
            "WHERE \"site\" = 'fs-site'", stack.database)

    (point,) = wait_until(written, 30, interval=0.2, what="the cut in outage_schedule")
    assert point["time"] == start * 1e9 and point["time_end"] == end * 1000
    assert point["status"] == "planned" and point["group"] == "3"
    # emergency and unknown sites have no plan, so nothing is written for them
    others = stack.influx.query('SELECT count("time_end") FROM "outage_schedule" '
                                "WHERE \"site\" != 'fs-site'", stack.database)
    assert others == []


def test_a_stale_or_missing_snapshot_is_unknown_not_quiet(tmp_path: Path) -> None:
    """The API's reading of the file alone: a stopped alerts role leaves no 'no cuts'."""
    foresights = Foresights(tmp_path, None)
    assert foresights.sites(1000.0) == []
    document = {"version": SNAPSHOT_VERSION, "written_at": 1000.0, "evaluated_at": 1000.0,
                "sites": {"a": {"outlook": {"status": "known", "reason": "", "source": "dso",
                                            "group": "1", "known_until": 90000.0,
                                            "updated_at": None, "cuts": []}, "ups": []}}}
    write_snapshot(snapshot_path(tmp_path), document)
    (fresh,) = foresights.sites(1010.0)
    assert fresh["status"] == "known" and fresh["next_cut"] is None and fresh["configured"]
    (stale,) = foresights.sites(1000.0 + 3600)
    assert stale["status"] == "unknown" and "stale" in stale["reason"]
    snapshot_path(tmp_path).write_text('{"version": 99}')
    assert foresights.sites(1010.0) == []  # a document of another version is not read


@pytest.mark.skipif(
    importlib.util.find_spec("playwright") is None or not Path(CHROMIUM).exists(),
    reason="needs playwright (pip) and chromium (apt)",
)
@pytest.mark.timeout(180)
def test_page_shows_the_next_cut_and_the_verdicts(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    _forecast_ready(stack)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(stack.api.url + "/")
            page.get_by_label("Token", exact=True).fill(TOKENS["viewer"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#whoami")).to_have_text("test-viewer (viewer)")

            section = page.locator("#foresight")
            expect(section).to_be_visible(timeout=15_000)
            row = section.locator('tr[data-site="fs-site"]')
            expect(row.locator(".next-cut")).to_contain_text("Next cut", timeout=15_000)
            expect(row).to_contain_text("3 h")
            weak = row.locator('li[data-device="ups-2"]')
            expect(weak).to_have_attribute("data-verdict", "runs-out")
            expect(weak).to_contain_text("runs out about 2 h")
            expect(weak).to_contain_text("before the grid returns")
            strong = row.locator('li[data-device="ups-1"]')
            expect(strong).to_contain_text("survives with margin")
            expect(section.locator('tr[data-site="fs-emergency"]')).to_contain_text("EMERGENCY")
            none = section.locator('tr[data-site="fs-none"]')
            expect(none).to_contain_text("UNKNOWN")
            expect(none).not_to_contain_text("No cuts")
            page.screenshot(path=str(ARTIFACTS / "api-foresight.png"), full_page=True)
        finally:
            browser.close()
