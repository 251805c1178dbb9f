"""`kordon demo` as a newcomer runs it: one command, embedded everything, Ctrl-C to stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.harness import free_port, wait_until


def test_demo_shows_live_data_and_an_alert_then_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORDON_")}
    env["KORDON_API_ADDR"] = f"127.0.0.1:{port}"
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kordon",
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
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        assert "Kordon" in httpx.get(f"{base}/").text

        def site_on_battery() -> list[dict]:
            # A radio's own battery can report the outage before the site's UPS does, so
            # the site is on backup power before any UPS counts as on battery: wait for both.
            sites = httpx.get(f"{base}/api/v1/sites", headers=headers).json()
            return [
                s for s in sites if s["power"] in ("ups", "battery") and s["ups"]["on_battery"]
            ]

        on_battery = wait_until(site_on_battery, 60, interval=0.5, what="a site's UPS on battery")
        assert on_battery[0]["ups"]["min_charge"] is not None

        def firing() -> list[dict]:
            return httpx.get(f"{base}/api/v1/alerts", headers=headers).json()

        alerts = wait_until(firing, 60, interval=0.5, what="an alert")
        assert {alert["site"] for alert in alerts} & {site["site"] for site in on_battery}
        children = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
        log.close()
    assert code == 0, output.read_text()[-3000:]
    assert "Kordon demo stopped." in output.read_text()
    assert not [
        child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
