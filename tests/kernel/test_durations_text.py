"""Durations read as a person says them, in alert texts and on the page (issue 13)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from alerts.config import RulesSettings
from alerts.depletion import DischargeHistory
from alerts.evaluate import battery_low, depletion_imminent, mains_power_lost
from alerts.rules import RuleBook
from alerts.tracker import DeviceState
from kordon.durations import approx_duration, time_left
from kordon.model.kinds import DeviceKind

CASES = [
    (0, "under a minute"),
    (59.4, "under a minute"),
    (60, "about 1 minute"),
    (89, "about 1 minute"),
    (91, "about 2 minutes"),
    (8 * 60 + 10, "about 8 minutes"),
    (119 * 60, "about 119 minutes"),
    (2 * 3600, "about 2 h"),
    (2 * 3600 + 10 * 60 + 20, "about 2 h 10 min"),
    (3 * 86400, "about 3 days"),
    (-5, "under a minute"),
]


@pytest.mark.parametrize(("seconds", "text"), CASES)
def test_approx_duration(seconds: float, text: str) -> None:
    assert approx_duration(seconds) == text


def test_time_left() -> None:
    assert time_left(30) == "under a minute left"
    assert time_left(480) == "about 8 minutes left"


def _ups(charge: float, eta: float | None, runtime: float | None = None) -> DeviceState:
    state = DeviceState("solotvyno", DeviceKind.UPS, "ups-scan-1", None)
    state.on_battery = True
    state.lb_flag = True
    state.charge = charge
    state.eta = eta
    state.rate = 2.0
    state.runtime = runtime
    return state


@pytest.mark.parametrize("eta", [20.0, 480.0, 7800.0])
def test_alert_texts_never_say_about_under(eta: float) -> None:
    rules = RuleBook(RulesSettings()).device("ups", "solotvyno", "ups-scan-1")
    texts = [
        mains_power_lost(_ups(50.0, eta))[1]["summary"],
        mains_power_lost(_ups(50.0, None, runtime=eta))[1]["summary"],
        battery_low(_ups(10.0, eta), rules)[1]["summary"],
    ]
    for text in texts:
        assert approx_duration(eta) in text, text
    if eta < rules.depletion.threshold:
        state = _ups(10.0, eta)
        state.history = DischargeHistory()
        state.history.add(1_734_328_800.0, 10.0, rules.depletion.window)
        firing, annotations = depletion_imminent(state, rules, False)
        assert firing
        texts.append(annotations["summary"])
        assert f"will be empty in {approx_duration(eta)} (" in annotations["summary"]
    for text in texts:
        assert "about about" not in text and "about under" not in text, text


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGE = Path(__file__).resolve().parents[2] / "api" / "static" / "index.html"


@pytest.mark.skipif(
    importlib.util.find_spec("playwright") is None or not Path(CHROMIUM).exists(),
    reason="needs playwright (pip) and chromium (apt)",
)
def test_page_durations_and_a_site_whose_ups_ran_flat() -> None:
    from playwright.sync_api import sync_playwright

    site = {
        "site": "solotvyno", "title": "", "power": "dark", "power_text": "Dark: no power",
        "devices": {"total": 4, "online": 0, "offline": 4, "stale": 0, "unknown": 0},
        "ups": {"total": 2, "on_battery": 0, "min_charge": None, "min_time_to_empty": None},
        "alerts": {"firing": 3, "critical": 2},
    }  # fmt: skip
    flat = {"site": "solotvyno", "kind": "ups", "state": "offline", "power_source": "none"}
    devices = [
        {**flat, "id": "solotvyno:ups-scan-1", "device": "ups-scan-1", "ups_status": "OB LB OFF"},
        {**flat, "id": "solotvyno:ups-it", "device": "ups-it", "ups_status": "OB DISCHRG LB OFF"},
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page()
            # The page without an API behind it: only its own functions are exercised.
            html = PAGE.read_text().replace('<script src="/static/app.js" defer></script>', "")
            page.set_content(html)
            page.add_script_tag(content=(PAGE.parent / "app.js").read_text())
            for seconds, text in CASES:
                assert page.evaluate(f"duration({seconds})") == text
            assert page.evaluate("ago(new Date(Date.now() - 30000).toISOString())") == "30 s ago"
            card = page.evaluate(
                "([s, d]) => siteCard(s, d).querySelector('.tte').textContent", [site, devices]
            )
            assert card == "empty: ups-scan-1, ups-it ran flat"
            count = page.evaluate("([s, d]) => upsCount(s, d)", [site, devices])
            assert count == "0 of 2, 2 empty or off"
            grid = {**site, "power": "grid"}
            mains = [{**d, "power_source": "mains", "ups_status": "OL"} for d in devices]
            assert page.evaluate("([s, d]) => upsReserve(s, d)", [grid, mains]) == "on mains"
            dark = page.evaluate("([s, d]) => upsReserve(s, d)", [site, []])
            assert dark == "none: the site is dark"
            battery = {**site, "power": "ups", "ups": {**site["ups"], "on_battery": 1,
                                                       "min_time_to_empty": 500}}  # fmt: skip
            assert page.evaluate("([s, d]) => upsReserve(s, d)", [battery, []]) == "about 8 minutes"
        finally:
            browser.close()
