"""`kordon demo` as a newcomer runs it: one command, embedded everything, Ctrl-C to stop.

The test waits on the scenario's time, not on wall-clock guesses: the demo announces its
stream clock and the API shows every site's clock (``clock.now`` in /api/v1/sites), so "five
scenario minutes after the cut" means the same on an idle machine and on a busy one, where
the publisher falls behind its 300x. Wall timeouts are only a generous safety net.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import pytest

from simulators.scenario import load_scenario
from testkit import free_port, wait_until

SCENARIO = "single-site-blackout"
SITE = "solotvyno"
T = TypeVar("T")
WALL_LIMIT = 360.0  # seconds: only a safety net; the waits are in scenario time

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _outage() -> tuple[float, float]:
    """Offset of the blackout of SITE from the scenario's start, and how long it lasts."""
    for event in load_scenario(SCENARIO).timeline:
        if event.action == "grid_down" and event.args.site == SITE:
            return event.at, event.args.for_
    raise AssertionError(f"{SCENARIO} has no grid_down for {SITE}")


class ScenarioTime:
    """Polls the API for SITE's clock and waits on it."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.headers = headers

    def sites(self) -> list[dict]:
        return httpx.get(f"{self.base}/api/v1/sites", headers=self.headers, timeout=30).json()

    def now(self) -> float | None:
        """SITE's scenario time while the demo's stream holds it (None: on the wall clock)."""
        site = next(s for s in self.sites() if s["site"] == SITE)
        clock = site["clock"]
        return _epoch(clock["now"]) if clock["source"] == "stream" else None

    def wait_for(self, moment: float, what: str) -> float:
        def reached() -> float | None:
            now = self.now()
            return now if now is not None and now >= moment else None

        return wait_until(reached, WALL_LIMIT, interval=0.2, what=what)

    def until(self, predicate: Callable[[], T], deadline: float, what: str) -> T:
        """``predicate()`` before SITE's scenario time passes ``deadline``."""

        def check() -> T | None:
            now = self.now()  # read first: a result seen after it is seen by then
            value = predicate()
            if value:
                return value
            if now is None or now > deadline:
                stamp = datetime.fromtimestamp(deadline).isoformat()
                ended = "the stream ended" if now is None else f"scenario time passed {stamp}"
                raise AssertionError(f"{ended} without {what}")
            return None

        def guarded() -> T | AssertionError | None:
            try:
                return check()
            except AssertionError as exc:
                return exc

        result = wait_until(guarded, WALL_LIMIT, interval=0.2, what=what)
        if isinstance(result, AssertionError):
            raise result
        return result  # type: ignore[return-value]


def test_demo_shows_live_data_and_an_alert_then_stops_cleanly(tmp_path: Path) -> None:
    cut_offset, outage = _outage()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORDON_")}
    env["KORDON_API_ADDR"] = f"127.0.0.1:{port}"
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "composition",
            "demo",
            "--speed",
            "300",
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    output = tmp_path / "demo.log"
    try:
        token = wait_until(
            lambda: re.search(r"token \(admin\):\s+(\S+)", output.read_text()),
            30,
            what="the demo to print its token",
        ).group(1)
        broker = re.search(r"broker:\s+(mqtt://\S+) \((.+)\)", output.read_text())
        assert broker, output.read_text()[-2000:]
        if Path("/usr/sbin/mosquitto").exists():
            assert broker.group(2).startswith("Mosquitto"), broker.group(0)
        else:
            assert broker.group(2).startswith("embedded amqtt"), broker.group(0)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        assert "Kordon" in httpx.get(f"{base}/").text
        start = _epoch(
            wait_until(
                lambda: re.search(r"scenario time from (\S+)", output.read_text()),
                30,
                what="the demo to start its scenario",
            ).group(1)
        )
        cut = start + cut_offset
        scenario = ScenarioTime(base, headers)

        # The site follows the demo's stream clock, at the asked speed.
        def streamed() -> dict | None:
            site = next(s for s in scenario.sites() if s["site"] == SITE)
            return site if site["clock"]["source"] == "stream" else None

        on_stream = wait_until(
            streamed,
            WALL_LIMIT,
            interval=0.2,
            what=f"{SITE} on the demo's stream clock",
        )
        assert on_stream["clock"]["speed"] == 300.0 and on_stream["clock"]["stream"]
        scenario.wait_for(cut + 5 * 60, "five scenario minutes after the blackout")

        def site_on_battery() -> list[dict]:
            # A radio's own battery can report the outage before the site's UPS does, so
            # the site is on backup power before any UPS counts as on battery: wait for both.
            sites = scenario.sites()
            return [s for s in sites if s["power"] in ("ups", "battery") and s["ups"]["on_battery"]]

        # The scanner's UPS runs flat about 40 scenario minutes after the cut.
        on_battery = scenario.until(site_on_battery, cut + 30 * 60, "a site's UPS on battery")
        assert on_battery[0]["ups"]["min_charge"] is not None
        assert SITE in {site["site"] for site in on_battery}

        # The alert engine shares the demo's process (and its GIL) with the publisher, the
        # collector and the API; at 300x it may run tens of wall seconds, hours of scenario
        # time, behind the stream. So alerts are waited for on the wall clock (the safety
        # net) and judged by their own times, which are scenario time.
        def ever(name: str, **labels: str) -> dict | None:
            found = httpx.get(f"{base}/api/v1/alerts", headers=headers, timeout=30,
                              params={"site": SITE, "state": "all"}).json()
            return next((a for a in found if a["alertname"] == name and a["starts_at"]
                         and all(a["labels"].get(k) == v for k, v in labels.items())), None)

        def eventually(name: str, **labels: str) -> dict:
            return wait_until(lambda: ever(name, **labels), WALL_LIMIT, interval=0.5,
                              what=f"{name} {labels} at {SITE}")

        # Issue 13: the engine judges the site on scenario time, so the incident starts
        # within two scenario minutes of the cut (SitePowerOutage's `for` is 30 s) ...
        outage_alert = eventually("SitePowerOutage")
        began = _epoch(outage_alert["starts_at"]) - cut
        assert 0 <= began <= 120, (began, outage_alert["annotations"])
        # ... and the scanner UPS's depletion page comes while it still has charge: the
        # charge it stored last before the page's start.
        depletion = eventually("BatteryDepletionImminent", device="ups-scan-1")
        paged = _epoch(depletion["starts_at"])
        assert paged < cut + outage

        def charges() -> list[float] | None:  # the collector may lag further than the engine
            history = httpx.get(
                f"{base}/api/v1/devices/{SITE}:ups-scan-1/telemetry", headers=headers,
                timeout=30, params={"metric": "battery.charge", "start": f"{paged - 300:.0f}",
                                    "end": f"{paged:.0f}", "step": "30s", "agg": "last"},
            ).json()
            points = [(t, v) for t, v in history["series"][0]["points"] if v is not None]
            # Only once the readings of the minute before the page are stored.
            done = points and points[-1][0] >= (paged - 60) * 1000
            return [value for _, value in points] if done else None

        stored = wait_until(charges, WALL_LIMIT, interval=0.5, what="ups-scan-1's charge")
        assert stored[-1] > 20, (depletion["starts_at"], stored)
        children = psutil.Process(process.pid).children(recursive=True)
    except (AssertionError, TimeoutError) as exc:
        lines = output.read_text(errors="replace").splitlines()
        pace = [line for line in lines if "kordon.demo" in line or "WARNING" in line][-20:]
        raise AssertionError(
            f"{exc}\n--- the demo's log (pace, warnings):\n" + "\n".join(pace)
        ) from exc
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
        log.close()
    assert code == 0, output.read_text()[-3000:]
    assert "Kordon demo stopped." in output.read_text()
    assert not [
        child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
