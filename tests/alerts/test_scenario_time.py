"""The live alert engine on scenario time (issue 13).

Real Mosquitto, a real ``kordon run --roles alerts`` process, a real webhook receiver and
real publisher processes (``kordon simulate`` / ``kordon replay``):

- fidelity: a scenario played through the live stack at 60x and 600x gives the alerts
  ``kordon scenario verify`` gives, each within one evaluation interval times the speed of
  its verify time (``testkit/fidelity.py``; ``bench/replay_fidelity.py`` prints the
  full table), and the stream's end pages nothing but one resolved notice per site;
- a real-device site on the same broker keeps wall-clock judgement while a simulation runs;
- stopping a publisher mid-incident pages no burst: the engine settles the sites quietly.
"""

from __future__ import annotations

import signal
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from kordon.storage.alert_store import AlertStore
from testkit import InfluxServer, MakeProcess, MosquittoServer, wait_until
from testkit.alerts import UPS_ON_MAINS, MakeDevices, ups_on_battery, webhook_notify
from testkit.fidelity import Case, run_case, table
from testkit.mqtt import Publisher, Recorder
from testkit.processes import KordonProcess
from testkit.receivers import WebhookReceiver
from testkit.verified import VerifiedScenarios

# Whole scenarios at 600x through `kordon simulate`; windows of their recordings at 60x
# through `kordon replay` (a whole 6 h scenario would take 6 minutes at 60x). The windows
# hold the scenarios' incidents: the blackout's cut, depletion and dark UPS units; the
# crash and the hang; the strike's outage and low battery.
CASES = [
    Case("device-crash", 600),
    Case("single-site-blackout", 600),
    Case("strike-multi-site", 600),
    Case("device-crash", 60, (18 * 60, 43 * 60)),
    Case("single-site-blackout", 60, (55 * 60, 105 * 60)),
    Case("strike-multi-site", 60, (38 * 60, 58 * 60)),
]


# A whole day at 600x measures whether the live stack keeps pace with the stream: on a host
# saturated by parallel test workers it does not (the engine fell minutes of scenario time
# behind, one run in three), which says nothing about Kordon. Those run alone (exclusive).
_PARAMS = [
    pytest.param(case, marks=[pytest.mark.exclusive] if case.window is None else [])
    for case in CASES
]


@pytest.mark.slow
@pytest.mark.parametrize("case", _PARAMS, ids=lambda c: f"{c.scenario}-{c.speed:g}x-{c.mode}")
def test_live_stack_pages_as_verify(
    case: Case, tmp_path: Path, influxdb: InfluxServer, verified: VerifiedScenarios
) -> None:
    outcome = run_case(case, tmp_path, influxdb, verified=verified)
    report = table([outcome])
    assert outcome.rows, f"no alerts on either side:\n{report}"
    assert outcome.ok(), f"live alerts differ from verify beyond {case.bound:g} s:\n{report}"
    # The stream's end: at most one resolved notice per site, none firing.
    for body in outcome.pages_after_stop:
        assert body["status"] == "resolved", body
        assert body["groupKey"].startswith("settle:"), body
    sites = [b["groupLabels"]["site"] for b in outcome.pages_after_stop]
    assert len(sites) == len(set(sites)), f"more than one notice per site: {sites}"


def _alerts_of(path: Path, site: str) -> list:
    store = AlertStore(path)
    try:
        return [a for a in store.alerts() if a.labels.get("site") == site]
    finally:
        store.close()


# These two stream the default fleet at 600x too, and judge it on the stream's time: on a host
# saturated by workers the engine fell behind the stream and paged its devices offline (a
# clean-clone run: DeviceOffline at every site, no settle notice but one). Issue 21 (rehearsal
# safety) owns what a lagging engine should make of a rehearsal; until then they run alone.
@pytest.mark.exclusive
def test_real_site_keeps_the_wall_clock_during_a_simulation(
    tmp_path: Path, own_mosquitto: MosquittoServer, hook: WebhookReceiver, site: str,
    make_alerts: MakeProcess, make_devices: MakeDevices,
) -> None:
    """A simulation at 600x (its sites hours in the past, time racing) beside real devices
    at another site: the real site's `for`, silence and timestamps stay on the wall clock."""
    engine = make_alerts(webhook_notify(hook.url()), mosquitto=own_mosquitto)
    engine.start(ready_line="alerts ready")
    devices = make_devices(own_mosquitto)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.add("ups", "ups-2", **UPS_ON_MAINS)
    devices.start()
    sim = KordonProcess(
        ["simulate", "device-crash", "--speed", "600", "--quiet"],
        {"KORDON_MQTT_URL": own_mosquitto.url, "KORDON_MQTT_CLIENT_ID": "sim-beside"},
        tmp_path / "sim",
    )
    sim.start()
    try:
        wait_until(lambda: "began to follow the scenario clock" in engine.log_text(), 30,
                   what="the engine to follow the simulation's clock")
        # While it plays, a real device going quiet is offline after its wall-clock silence
        # (3 s): not at once because the simulation's time races, and not late.
        devices.paused.add("ups-2")
        quiet = time.time()
        wait_until(lambda: any(a[0] == "DeviceOffline" and a[1] == "ups-2"
                               for a in hook.alerts()), 20, what="DeviceOffline of ups-2")
        offline = next(a for a in _alerts_of(tmp_path / "data" / "alerts.sqlite", site)
                       if a.labels["alertname"] == "DeviceOffline")
        assert offline.starts_at is not None
        assert quiet + 2.5 <= offline.starts_at <= time.time()
        # The other real UPS goes on battery; `for: 1s` is a wall second.
        changed = time.time()
        devices.set("ups-1", **ups_on_battery(80.0, drain=0.0))
        wait_until(lambda: any(a[0] == "MainsPowerLost" and a[1] == "ups-1"
                               for a in hook.alerts()), 20, what="MainsPowerLost of ups-1")
        fired = next(a for a in _alerts_of(tmp_path / "data" / "alerts.sqlite", site)
                     if a.labels["alertname"] == "MainsPowerLost")
        assert fired.starts_at is not None
        assert changed + 1.0 <= fired.starts_at <= time.time(), "for: 1s on the wall clock"
        assert not any(a[0] == "DeviceOffline" and a[1] == "ups-1" for a in hook.alerts())
        # The simulation, meanwhile, pages on its own clock: its startsAt is scenario time,
        # hours before the wall clock (it runs in the past so it ends by now).
        wait_until(lambda: any(b["groupLabels"].get("site") == "chop" for b in hook.bodies()),
                   60, what="the simulation's first page (chop scanner-1 crash)")
        chop = next(b for b in hook.bodies() if b["groupLabels"].get("site") == "chop")
        assert _latest_start(chop) < time.time() - 3600
        real = [b for b in hook.bodies() if b["groupLabels"].get("site") == site]
        assert all(abs(_latest_start(b) - time.time()) < 60 for b in real)
        # The simulation's end settles its sites only; the real site's alerts stay firing.
        sim.stop(signal.SIGINT)
        wait_until(lambda: "left the scenario clock" in engine.log_text(), 30,
                   what="the simulation's sites to be settled")
        alerts = _alerts_of(tmp_path / "data" / "alerts.sqlite", site)
        firing = sorted(a.labels["alertname"] for a in alerts if a.state.value == "firing")
        assert firing == ["DeviceOffline", "MainsPowerLost"], firing
        assert not any("note" in a.annotations for a in alerts)
    finally:
        sim.stop()
        devices.stop()
    engine.stop()


@pytest.mark.exclusive
def test_stopping_the_publisher_pages_no_burst(
    tmp_path: Path, own_mosquitto: MosquittoServer, hook: WebhookReceiver,
    make_alerts: MakeProcess,
) -> None:
    """Interrupt a 600x blackout mid-outage: the publisher says `stopped`, then powers its
    devices off (`offline`, retained). The engine ends the site's alerts quietly: one
    resolved notice for the site that was paged, no DeviceOffline for the simulated devices."""
    notify = webhook_notify(hook.url(), group_wait="0s", group_interval="1s")
    engine = make_alerts(notify, mosquitto=own_mosquitto, rules="")
    engine.env["KORDON_FLEET"] = str(_default_fleet())
    engine.start(ready_line="alerts ready")
    statuses = Recorder(own_mosquitto.host, own_mosquitto.port, "kordon/v1/+/+/+/status")
    sim = KordonProcess(
        ["simulate", "single-site-blackout", "--speed", "600", "--quiet"],
        {"KORDON_MQTT_URL": own_mosquitto.url, "KORDON_MQTT_CLIENT_ID": "sim-stop"},
        tmp_path / "sim",
    )
    sim.start()
    try:
        wait_until(lambda: any(a[0] == "SitePowerOutage" and a[2] == "firing"
                               for a in hook.alerts()), 90, what="the blackout's page")
        offline_before = sum(1 for p in statuses.payloads() if p == b"offline")
        stopped = time.time()
        assert sim.stop(signal.SIGINT) == 0  # Ctrl-C: "interrupted; powering the devices off"
    finally:
        sim.stop()
    # The devices' goodbyes reach the broker (and so the engine, on the same subscription).
    wait_until(lambda: sum(1 for p in statuses.payloads() if p == b"offline")
               > offline_before + 20, 30, what="the simulated devices' offline statuses")
    # A sentinel after them: once it is paged, the engine has judged everything before it.
    sentinel = f"sentinel-{uuid.uuid4().hex[:6]}"
    publisher = Publisher(own_mosquitto.host, own_mosquitto.port)
    publisher.publish(f"kordon/v1/{sentinel}/ups/ups-s/status", "offline", retain=True)
    wait_until(lambda: any(b["groupLabels"].get("site") == sentinel for b in hook.bodies()),
               30, what="the sentinel's page")
    publisher.publish(f"kordon/v1/{sentinel}/ups/ups-s/status", "", retain=True)
    publisher.close()
    statuses.close()
    bodies = [b for b in hook.bodies() if b["groupLabels"].get("site") != sentinel]
    # Alerts of the stream start in its scenario time (hours ago): none may start later
    # (a device judged offline on the wall clock after the stop). The end is told by one
    # settle notice per site that was paged: resolved, with the note saying why.
    after = [b for b in bodies if b["groupKey"].startswith("settle:")]
    during = [b for b in bodies if b not in after]
    assert all(_latest_start(b) < stopped - 3600 for b in during), during
    for body in after:
        assert body["status"] == "resolved" and body["groupKey"].startswith("settle:"), body
        assert all("note" in a["annotations"] for a in body["alerts"]), body
    sites = [b["groupLabels"]["site"] for b in after]
    paged = {b["groupLabels"]["site"] for b in during}
    assert sorted(sites) == sorted(paged), "one notice per paged site, no more"
    assert "SitePowerOutage" in {a["labels"]["alertname"] for b in after for a in b["alerts"]}
    firing = [a for a in _alerts_of(tmp_path / "data" / "alerts.sqlite", "solotvyno")
              if a.state.value == "firing"]
    assert not firing, [a.labels for a in firing]
    engine.stop()


def _latest_start(body: dict) -> float:
    return max(datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00")).timestamp()
               for a in body["alerts"])


def _default_fleet() -> Path:
    from simulators.library import default_fleet_path

    return default_fleet_path()
