"""Alert engine acceptance over a real broker, a real webhook receiver and a real SMTP server.

Devices publish their state every 250 ms; the alerts role runs as a child process
(``kordon run --roles alerts``) with short ``for`` and group timings so the whole file runs
in well under two minutes. Silences and acks are written through the alert store, as the
API does.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from kordon.model.alerts import Matcher
from kordon.storage.alert_store import AlertStore
from testkit import InfluxServer, MakeProcess, MosquittoServer, wait_until
from testkit.alerts import UPS_ON_MAINS, MakeDevices, ups_on_battery
from testkit.receivers import SmtpReceiver, WebhookReceiver

RADIO_MAINS = {"power.source": "mains", "battery.charge": 100.0, "supply.voltage": 54.0}
SCANNER_MAINS = {"power.source": "mains", "scanner.state": "ready"}


def _notify(hook: WebhookReceiver, smtp: SmtpReceiver | None = None, extra: str = "",
            group_by: str = "[site, alertname]") -> str:
    email = ""
    if smtp is not None:
        email = (
            f"      email: {{to: [oncall@example.org], from: kordon@example.org, "
            f"smarthost: '127.0.0.1:{smtp.port}', username: {smtp.user}, "
            f"password: {smtp.password}, verify_tls: false}}\n"
        )
    return f"""notify:
  external_url: http://kordon.test
  receivers:
    - name: oncall
      webhook: {{url: "{hook.url('/oncall')}"}}
{email}    - name: duty
      webhook: {{url: "{hook.url('/duty')}"}}
  route:
    receiver: oncall
    group_by: {group_by}
    group_wait: 500ms
    group_interval: 1s
    repeat_interval: 1h
{extra}  outbox: {{retry_min: 200ms, retry_max: 1s}}
"""


def _seen(hook: WebhookReceiver, name: str, status: str, path: str = "/oncall") -> bool:
    return any(a[0] == name and a[2] == status for a in hook.alerts(path))


def test_contract_alerts_fire_and_resolve(
    tmp_path: Path, own_mosquitto: MosquittoServer, influxdb: InfluxServer, database: str,
    hook: WebhookReceiver, site: str, make_alerts: MakeProcess, make_devices: MakeDevices,
) -> None:
    smtp = SmtpReceiver(tmp_path).start()
    engine = make_alerts(_notify(hook, smtp), mosquitto=own_mosquitto, influx=influxdb,
                         database=database)
    engine.start(ready_line="alerts ready")
    devices = make_devices(own_mosquitto)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.add("ups", "ups-2", **UPS_ON_MAINS)
    devices.add("radio", "radio-1", **RADIO_MAINS)
    devices.add("scanner", "scanner-1", **SCANNER_MAINS)
    devices.start()
    try:
        # One UPS on battery, discharging fast: mains lost, then depletion (its own BatteryLow
        # is folded into that page). Another, low but steady, pages BatteryLow on its own.
        devices.set("ups-1", **ups_on_battery(60.0, drain=1.5))
        devices.set("ups-2", **ups_on_battery(15.0, drain=0.0))
        wait_until(lambda: _seen(hook, "MainsPowerLost", "firing"), 20, what="MainsPowerLost")
        wait_until(lambda: _seen(hook, "BatteryDepletionImminent", "firing"), 20,
                   what="BatteryDepletionImminent")
        wait_until(lambda: _seen(hook, "BatteryLow", "firing"), 30, what="BatteryLow")
        # The whole site off the grid: one site alert, per-device mains alerts muted.
        devices.set("radio-1", **{"power.source": "battery"})
        devices.set("scanner-1", **{"power.source": "ups"})
        wait_until(lambda: _seen(hook, "SitePowerOutage", "firing"), 20, what="SitePowerOutage")
        assert not any(a[0] == "MainsPowerLost" and a[1] == "radio-1"
                       for a in hook.alerts("/oncall")), "a site outage mutes per-device alerts"
        # Power back: everything resolves.
        devices.set("ups-1", **UPS_ON_MAINS, _drain=None)
        devices.set("ups-2", **UPS_ON_MAINS, _drain=None)
        devices.set("radio-1", **RADIO_MAINS)
        devices.set("scanner-1", **SCANNER_MAINS)
        for name in ("MainsPowerLost", "BatteryDepletionImminent", "BatteryLow",
                     "SitePowerOutage"):
            wait_until(lambda n=name: _seen(hook, n, "resolved"), 20, what=f"{name} resolved")
        # A device that dies: last will, then back.
        devices.paused.add("scanner-1")
        devices.status("scanner", "scanner-1", "offline")
        wait_until(lambda: _seen(hook, "DeviceOffline", "firing"), 20, what="DeviceOffline")
        devices.status("scanner", "scanner-1", "online")
        devices.paused.discard("scanner-1")
        wait_until(lambda: _seen(hook, "DeviceOffline", "resolved"), 20,
                   what="DeviceOffline resolved")
    finally:
        devices.stop()
        engine.stop()
        smtp.stop()

    body = hook.bodies("/oncall")[0]
    assert body["version"] == "4"
    assert set(body) >= {"receiver", "status", "alerts", "groupLabels", "commonLabels",
                         "commonAnnotations", "externalURL", "groupKey", "truncatedAlerts"}
    alert = body["alerts"][0]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt",
                          "generatorURL", "fingerprint"}
    assert alert["labels"]["site"] == site and alert["annotations"]["summary"]
    request = hook.requests[0]
    assert len(request.headers["Idempotency-Key"]) == 32

    subjects = [m["Subject"] for m in smtp.messages]
    assert any(s.startswith("[FIRING:1]") and "BatteryDepletionImminent" in s for s in subjects)
    depletion = next(m for m in smtp.messages if "BatteryDepletionImminent" in m["Subject"])
    text = depletion.get_content()
    assert f"UPS {site}/ups-1 will be empty in" in text and "% charge, falling" in text

    rows = influxdb.query("SELECT * FROM alerts", database)
    states = {(r["alertname"], r["state"]) for r in rows}
    assert ("SitePowerOutage", "firing") in states and ("SitePowerOutage", "resolved") in states


def test_silence_ack_and_escalation(
    tmp_path: Path, own_mosquitto: MosquittoServer, hook: WebhookReceiver, site: str,
    make_alerts: MakeProcess, make_devices: MakeDevices,
) -> None:
    extra = (
        "    escalate_to: duty\n    escalate_after: 3s\n"
    )
    notify = _notify(hook, extra=extra).replace("repeat_interval: 1h", "repeat_interval: 2s")
    engine = make_alerts(notify, mosquitto=own_mosquitto)
    engine.start(ready_line="alerts ready")
    store = AlertStore.in_data_dir(tmp_path / "data")  # a second connection, as the API has
    devices = make_devices(own_mosquitto)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.add("ups", "ups-2", **UPS_ON_MAINS)
    devices.add("radio", "radio-1", **RADIO_MAINS)
    devices.start()
    try:
        # Silence: ups-2's alerts are not sent while the silence lasts.
        now = time.time()
        store.add_silence([Matcher.parse('device="ups-2"')], now, now + 3600, "ops", "test",
                          now)
        devices.set("ups-2", **ups_on_battery(90.0, drain=0.01))
        wait_until(lambda: any(a.labels.get("device") == "ups-2" for a in store.alerts()), 20,
                   what="ups-2 alert firing in the store")
        # Ack: the first page comes, repeats stop after the ack; escalation skipped.
        devices.set("ups-1", **ups_on_battery(90.0, drain=0.01))
        wait_until(lambda: _seen(hook, "MainsPowerLost", "firing"), 20, what="first page")
        wait_until(lambda: len([b for b in hook.bodies("/oncall")
                                if b["status"] == "firing"]) >= 2, 10, what="a repeat")
        fingerprint = next(a.fingerprint for a in store.alerts()
                           if a.labels.get("device") == "ups-1")
        assert store.ack(fingerprint, "oksana", "on my way", time.time()) is not None
        count = len(hook.bodies("/oncall"))
        # Escalation: a critical alert (radio battery low) nobody acknowledges goes to duty.
        devices.set("radio-1", **{"power.source": "battery", "battery.charge": 10.0})
        wait_until(lambda: _seen(hook, "BatteryLow", "firing", "/duty"), 20, what="escalation")
        escalated = hook.bodies("/duty")[0]
        assert all(a["labels"]["severity"] == "critical" for a in escalated["alerts"])
        after_ack = [a for b in hook.bodies("/oncall")[count:] for a in b["alerts"]
                     if a["labels"].get("device") == "ups-1"]
        assert after_ack == [], "an acknowledged alert is not repeated"
        assert not any(a[1] == "ups-2" for a in hook.alerts("/oncall")), "silenced"
        assert not any(a[1] == "ups-1" for a in hook.alerts("/duty")), "acked: no escalation"
    finally:
        devices.stop()
        engine.stop()
        store.close()


def test_sigkill_mid_incident_no_duplicate_page_and_resolution_delivered(
    tmp_path: Path, own_mosquitto: MosquittoServer, hook: WebhookReceiver, site: str,
    make_alerts: MakeProcess, make_devices: MakeDevices,
) -> None:
    # One group per alert, so every notification about ups-1 is about ups-1 alone.
    notify = _notify(hook, group_by="[site, alertname, device]")
    engine = make_alerts(notify, mosquitto=own_mosquitto)
    engine.start(ready_line="alerts ready")
    devices = make_devices(own_mosquitto)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.add("ups", "ups-2", **UPS_ON_MAINS)
    devices.add("radio", "radio-1", **RADIO_MAINS)  # 2 of 3 on battery: no site alert
    devices.start()
    try:
        devices.set("ups-1", **ups_on_battery(95.0, drain=0.01))
        devices.set("ups-2", **ups_on_battery(95.0, drain=0.01))
        wait_until(lambda: len({a[1] for a in hook.alerts() if a[0] == "MainsPowerLost"}) == 2,
                   20, what="both pages")
        engine.kill()
        devices.set("ups-2", **UPS_ON_MAINS, _drain=None)  # resolves while the engine is down
        engine.start(ready_line="alerts ready")
        wait_until(lambda: ("MainsPowerLost", "ups-2", "resolved") in hook.alerts(), 20,
                   what="resolution of the alert that ended while the engine was down")
        devices.set("ups-1", **UPS_ON_MAINS, _drain=None)
        wait_until(lambda: ("MainsPowerLost", "ups-1", "resolved") in hook.alerts(), 20,
                   what="resolution after the restart")
    finally:
        devices.stop()
        engine.stop()
    # A page the receiver took but the engine had not yet marked delivered when it was
    # killed is sent again with the same Idempotency-Key (at-least-once, by design): only a
    # page under a new key is a duplicate.
    firing = sorted({
        (request.headers.get("Idempotency-Key"), alert["labels"]["device"])
        for request in list(hook.requests)
        for alert in request.body["alerts"]
        if alert["labels"]["alertname"] == "MainsPowerLost" and alert["status"] == "firing"
    })
    assert sorted(device for _, device in firing) == ["ups-1", "ups-2"], (
        f"no duplicate page: {firing}"
    )


def test_page_arrives_after_receiver_comes_back(
    tmp_path: Path, own_mosquitto: MosquittoServer, site: str,
    make_alerts: MakeProcess, make_devices: MakeDevices,
) -> None:
    hook = WebhookReceiver()  # not started: the receiver is down
    engine = make_alerts(_notify(hook), mosquitto=own_mosquitto)
    engine.start(ready_line="alerts ready")
    devices = make_devices(own_mosquitto)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.add("ups", "ups-2", **UPS_ON_MAINS)
    devices.add("radio", "radio-1", **RADIO_MAINS)
    devices.start()
    down_since = time.monotonic()
    try:
        devices.set("ups-1", **ups_on_battery(95.0, drain=0.01))
        db = tmp_path / "data" / "alerts.sqlite"

        def attempts() -> int:
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT COALESCE(MAX(attempts), 0) FROM outbox")
                           .fetchone()[0])

        wait_until(lambda: attempts() >= 3, 20, what="failed delivery attempts")
        wait_until(lambda: time.monotonic() - down_since >= 30, 40, what="30 s of outage")
        hook.start()
        wait_until(lambda: _seen(hook, "MainsPowerLost", "firing"), 10,
                   what="the page after the receiver returned")
        assert len(hook.bodies()) == 1
    finally:
        devices.stop()
        engine.stop()
        hook.stop()


BLACKOUT_FLEET = """name: test-blackout
sites:
  border:
    devices:
      ups-1: {kind: ups, rated_power_w: 40000, battery_wh: 12000, blocks: 40}
      ups-2: {kind: ups, rated_power_w: 40000, battery_wh: 12000, blocks: 40}
      ups-3: {kind: ups, rated_power_w: 40000, battery_wh: 12000, blocks: 40}
      ups-it: {kind: ups, base_load_w: 900}
"""


def _blackout_fleet() -> str:
    lines = [BLACKOUT_FLEET]
    for i in range(12):
        lines.append(f"      scanner-{i}: {{kind: scanner, fed_by: ups-{i % 3 + 1}}}\n")
    for i in range(4):
        lines.append(f"      radio-{i}: {{kind: radio, battery_ah: 100}}\n")
    return "".join(lines)


def test_site_blackout_of_20_devices_pages_once_not_20_times(
    tmp_path: Path, own_mosquitto: MosquittoServer, hook: WebhookReceiver, site: str,
    make_alerts: MakeProcess,
) -> None:
    """A simulated blackout, published through the broker 60x faster than real time."""
    from simulators.engine import ScenarioRun
    from simulators.scenario import load_scenario

    (tmp_path / "fleet.yaml").write_text(_blackout_fleet())
    (tmp_path / "blackout.yaml").write_text(
        "name: blackout\nfleet: fleet.yaml\nduration: 6m\n"
        "timeline:\n  - at: 1m\n    grid_down: {site: border}\n"
    )
    scenario = load_scenario(tmp_path / "blackout.yaml")
    assert len(scenario.fleet.sites["border"].devices) == 20
    notify = _notify(hook, group_by="[site]")
    engine = make_alerts(notify, mosquitto=own_mosquitto)
    engine.start(ready_line="alerts ready")
    from testkit.mqtt import Publisher

    publisher = Publisher(own_mosquitto.host, own_mosquitto.port)
    speed = 60.0
    try:
        run = ScenarioRun(scenario)
        began = time.monotonic()
        for event in run:
            if not event.on_wire:
                continue
            due = began + (event.time - run.start) / speed
            wait_until(lambda d=due: time.monotonic() >= d, 30, interval=0.005, what="pacing")
            topic = event.topic.replace("/border/", f"/{site}/")
            publisher.publish(topic, event.payload, retain=event.retain, wait=event.retain)
        wait_until(lambda: _seen(hook, "SitePowerOutage", "firing"), 20, what="site alert")
        wait_until(lambda: _seen(hook, "BatteryDepletionImminent", "firing"), 20,
                   what="depletion alert")
    finally:
        publisher.close()
        engine.stop()
    names = {a[0] for a in hook.alerts()}
    assert names <= {"SitePowerOutage", "BatteryDepletionImminent", "BatteryLow"}, names
    assert len(hook.bodies()) <= 4, [len(b["alerts"]) for b in hook.bodies()]
