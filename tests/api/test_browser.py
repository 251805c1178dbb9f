"""The operations page in headless Chromium (Debian's package, driven by Playwright).

During the single-site-blackout scenario, started from the page's scenario launcher and
published through the broker and the collector, the board shows the site on UPS battery;
the alert raised by the real alert engine (a ``kordon run --roles alerts`` process) appears;
the operator acknowledges it and the page
shows it acknowledged. The test saves a screenshot under tests/artifacts/.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators.library import default_fleet_path
from tests.harness import InfluxServer, KordonProcess, MakeProcess, MosquittoServer, wait_until
from tests.harness.api import TOKENS, RunningApi, api_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SITE = "solotvyno"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None or not Path(CHROMIUM).exists(),
        reason="needs playwright (pip) and chromium (apt)",
    ),
    pytest.mark.timeout(180),
]


@pytest.fixture
def api(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, make_collector: MakeProcess
) -> Iterator[RunningApi]:
    database = f"browser_{time.time_ns() % 10**9}"
    collector = make_collector(database=database, client_id="br-coll")
    collector.start(ready_line="collector ready")
    settings = api_settings(tmp_path, mosquitto, influxdb, database, fleet=default_fleet_path())
    # The live engine measures `for` on the wall clock, and the scenario runs 360 times
    # faster than that: a short `for` lets the site alert fire while the blackout lasts.
    engine_config = tmp_path / "alerts.yaml"
    engine_config.write_text(
        "rules:\n  SitePowerOutage:\n    for: 1s\n  MainsPowerLost:\n    for: 1s\n"
    )
    engine = KordonProcess(
        ["run", "--roles", "alerts"],
        {
            "KORDON_CONFIG": str(engine_config),
            "KORDON_MQTT_URL": mosquitto.url,
            "KORDON_MQTT_CLIENT_ID": f"br-alerts-{database}",
            "KORDON_INFLUX_URL": influxdb.url,
            "KORDON_INFLUX_DB": database,
            "KORDON_DATA_DIR": str(settings.data_dir),
            "KORDON_FLEET": str(default_fleet_path()),
        },
        tmp_path / "alerts",
    )
    engine.start(ready_line="alerts ready")
    try:
        with RunningApi(settings) as running:
            yield running
    finally:
        engine.stop()
        collector.stop()


def _site_outage_fingerprint(api: RunningApi) -> str:
    """The SitePowerOutage the real alert engine raised for the blacked-out site."""

    def raised() -> str | None:
        response = httpx.get(
            f"{api.url}/api/v1/alerts",
            params={"site": SITE},
            headers={"Authorization": f"Bearer {TOKENS['viewer']}"},
        )
        for alert in response.json():
            if alert["alertname"] == "SitePowerOutage":
                return str(alert["fingerprint"])
        return None

    return wait_until(raised, 60, interval=0.5, what="SitePowerOutage from the alert engine")


def test_blackout_on_the_board_then_acknowledged(api: RunningApi) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        try:
            page.goto(api.url + "/")
            page.get_by_label("Token", exact=True).fill(TOKENS["operator"])
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#whoami")).to_have_text("test-operator (operator)")

            # the scenario launcher, from the keyboard
            page.keyboard.press("3")
            page.get_by_label("Speed (simulated seconds per second)").fill("360")
            page.get_by_role("button", name="Run single-site-blackout").click()
            expect(page.locator(".run-state").first).to_have_text("RUNNING", timeout=10_000)
            expect(page.locator("#run-log")).not_to_have_text("Start or pick a run to follow it.")
            page.keyboard.press("1")

            card = page.locator(f'article[data-site="{SITE}"]')
            expect(card.locator(".power")).to_have_text("On UPS battery", timeout=60_000)
            expect(card).to_contain_text("UPS on battery")
            expect(card.locator(".tte")).not_to_have_text("on mains")
            expect(page.locator('article[data-site="chop"] .power')).not_to_have_text(
                "On UPS battery"
            )

            fp = _site_outage_fingerprint(api)
            alert = page.locator(f'li.alert[data-fingerprint="{fp}"]')
            expect(alert).to_contain_text("SitePowerOutage", timeout=15_000)
            expect(alert).to_contain_text("critical")
            alert.get_by_role("button", name="Acknowledge SitePowerOutage").click()
            expect(alert.locator(".acked")).to_have_text(
                "Acknowledged by test-operator", timeout=10_000
            )
            page.screenshot(path=str(ARTIFACTS / "api-board-blackout.png"), full_page=True)

            # the device view: charts of the last hours, drawn by the page itself
            card.get_by_role("button", name="ups-scan-1, ups").click()
            expect(page.locator("#device-title")).to_have_text(f"Device {SITE}:ups-scan-1")
            charts = page.locator("#device-charts figure")
            expect(charts.first).to_contain_text("battery.charge", timeout=10_000)
            expect(charts.first.locator("polyline")).to_have_count(1, timeout=15_000)
            page.locator("#device").screenshot(path=str(ARTIFACTS / "api-device-view.png"))
            page.keyboard.press("Escape")
            expect(page.locator("#device")).to_be_hidden()
        finally:
            browser.close()

    with httpx.Client(
        base_url=api.url, headers={"Authorization": f"Bearer {TOKENS['operator']}"}
    ) as client:
        runs = client.get("/api/v1/scenarios/runs").json()
        assert runs and runs[0]["scenario"] == "single-site-blackout"
        stopped = client.delete(f"/api/v1/scenarios/runs/{runs[0]['id']}").json()
        assert stopped["state"] in ("stopped", "finished"), stopped
        alerts = client.get("/api/v1/alerts", params={"site": SITE}).json()
    assert any(a["ack"] and a["ack"]["by"] == "test-operator" for a in alerts)
    wait_until(lambda: (ARTIFACTS / "api-board-blackout.png").stat().st_size > 10_000, 5)
