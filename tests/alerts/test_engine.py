"""The engine core in process: scenarios on the simulated clock, fits, matchers, the store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerts.config import NotifySettings, RulesSettings
from alerts.depletion import DischargeHistory, time_to_empty
from alerts.engine import Engine
from alerts.verify import check
from composition.verify import replay_scenario
from kordon.model.alerts import AlertRecord, AlertState, Matcher, fingerprint
from kordon.storage.alert_store import AlertStore
from simulators.library import library
from simulators.scenario import load_scenario
from testkit.verified import VerifiedScenarios


def test_library_blackout_meets_its_expectations_and_is_deterministic(
    verified: VerifiedScenarios,
) -> None:
    scenario = load_scenario("single-site-blackout")
    first = verified.result(scenario.name)
    checks = check(scenario.name, list(scenario.expect), first)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    second = replay_scenario(scenario, RulesSettings())
    assert [(t.at, t.fingerprint, t.state) for t in first.transitions] == [
        (t.at, t.fingerprint, t.state) for t in second.transitions
    ]
    # Depletion is predicted before the battery is low, and the site pages as one incident.
    fired = {(t.labels["alertname"], t.labels.get("device", "")): t.at
             for t in reversed(first.transitions) if t.state is AlertState.FIRING}
    depletion = fired[("BatteryDepletionImminent", "ups-scan-1")]
    assert depletion < fired.get(("BatteryLow", "ups-scan-1"), float("inf"))
    paged = {a["labels"]["alertname"] for _, n in first.notifications
             for a in n.payload["alerts"] if a["labels"].get("site") == "solotvyno"}
    assert "MainsPowerLost" not in paged and "SitePowerOutage" in paged


@pytest.mark.slow
@pytest.mark.timeout(600)  # up to ~60 s of CPU for a day of one scenario; a busy host doubles it
@pytest.mark.parametrize("name", sorted(library()))
def test_every_library_scenario_meets_its_expectations(
    name: str, verified: VerifiedScenarios
) -> None:
    """One test per scenario, so parallel workers share the library's ~200 s of CPU."""
    scenario = load_scenario(name)
    result = verified.result(name)
    failed = [c for c in check(name, list(scenario.expect), result) if not c.ok]
    assert not failed


def test_depletion_fit_is_robust_to_noise_and_ignores_flat_series() -> None:
    history = DischargeHistory()
    for i in range(60):  # 1 %/min with quantisation noise
        history.add(i * 10.0, round(80.0 - i / 6.0 + (0.3 if i % 2 else -0.3), 1), 600.0)
    eta, rate = time_to_empty(history)
    assert rate == pytest.approx(1.0, rel=0.05)
    assert eta / 60 == pytest.approx(70.2, rel=0.05)
    flat = DischargeHistory()
    for i in range(10):
        flat.add(i * 10.0, 50.0, 600.0)
    assert time_to_empty(flat) is None


def test_matchers_follow_alertmanager_semantics() -> None:
    labels = {"alertname": "DeviceOffline", "site": "chop"}
    assert Matcher.parse('site="chop"').matches(labels)
    assert Matcher.parse("cause!=power").matches(labels)  # missing label is ""
    assert Matcher.parse('device=~""').matches(labels)
    assert Matcher.parse('alertname=~"Device.*"').matches(labels)
    assert not Matcher.parse('alertname=~"Device"').matches(labels)  # anchored
    assert Matcher.parse('site!~"ch.*"').matches({"site": "kosyno"})
    with pytest.raises(ValueError):
        Matcher.parse("site~chop")
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})


def test_store_two_connections_ack_silence(tmp_path: Path) -> None:
    engine_side = AlertStore(tmp_path / "alerts.sqlite")
    api_side = AlertStore(tmp_path / "alerts.sqlite")
    version = engine_side.data_version()
    from kordon.model.alerts import AlertRecord

    record = AlertRecord("f" * 16, {"alertname": "BatteryLow", "site": "chop"}, {},
                         AlertState.FIRING, 100.0, 130.0)
    engine_side.save_alerts([record])
    ack = api_side.ack("f" * 16, "oksana", "on it", time.time())
    assert ack is not None and ack.starts_at == 130.0
    assert api_side.ack("0" * 16, "x", "", 1.0) is None
    with pytest.raises(ValueError, match="match every alert"):
        api_side.add_silence([Matcher.parse('site=~".*"')], 0, 10, "me", "", 0)
    api_side.add_silence([Matcher.parse("site=chop")], 0, 10, "me", "maintenance", 0)
    assert engine_side.data_version() != version  # the engine notices the API's writes
    assert engine_side.alerts()[0].acked_by == "oksana"
    assert [s.comment for s in engine_side.silences(active_at=5)] == ["maintenance"]
    engine_side.close()
    api_side.close()


def test_restored_alerts_wait_for_data_from_the_subscription_not_the_start(
    tmp_path: Path,
) -> None:
    """A slow start (a busy host, a broker still restarting) must not resolve a restored
    incident on no evidence: the grace counts from when data can flow."""
    store = AlertStore(tmp_path / "alerts.sqlite")
    labels = {"alertname": "SitePowerOutage", "site": "solotvyno", "severity": "critical"}
    store.save_alerts([AlertRecord(fingerprint(labels), labels, {}, AlertState.FIRING,
                                   100.0, 100.0, None, 100.0)])
    rules = RulesSettings(restore_grace=4.0)
    engine = Engine(rules, NotifySettings(webhook_url="http://127.0.0.1:9/"), store, 200.0)
    [alert] = engine.alerts.values()
    engine.stream_live(210.0)  # subscribed ten seconds after the start
    engine.tick(213.0)
    assert alert.state is AlertState.FIRING
    engine.tick(214.5)
    assert alert.state is AlertState.RESOLVED


def test_restored_incident_is_not_resolved_by_statuses_before_readings(tmp_path: Path) -> None:
    """After a restart the retained ``online`` statuses arrive before any reading: a site whose
    power sensors have not reported yet has an unknown grid, not a grid back (the chaos run
    resolved and re-paged an incident that way on a busy CI host)."""
    import orjson

    store = AlertStore(tmp_path / "alerts.sqlite")
    site, t0 = "solotvyno", 1_800_000_000.0
    labels = {"alertname": "SitePowerOutage", "site": site, "severity": "critical"}
    store.save_alerts([AlertRecord(fingerprint(labels), labels, {}, AlertState.FIRING,
                                   t0, t0, None, t0)])
    store.remember_devices([(site, f"ups-{i}", "ups", 1.0) for i in (1, 2, 3)], t0)
    engine = Engine(RulesSettings(restore_grace=4.0),
                    NotifySettings(webhook_url="http://127.0.0.1:9/"), store, t0 + 100)
    [alert] = engine.alerts.values()
    engine.stream_live(t0 + 100)
    for i in (1, 2, 3):
        engine.handle(f"kordon/v1/{site}/ups/ups-{i}/status", b"online", t0 + 100.1)
    engine.tick(t0 + 100.2)
    assert alert.state is AlertState.FIRING  # three statuses say nothing about the grid
    on_battery = {"ts": t0 + 100.5, "seq": 1, "metrics": {
        "ups.status": "OB DISCHRG", "battery.charge": 90.0, "battery.runtime": 420.0,
        "input.voltage": 0.0}}
    for i in (1, 2, 3):
        engine.handle(f"kordon/v1/{site}/ups/ups-{i}/telemetry", orjson.dumps(on_battery),
                      t0 + 100.6)
        engine.tick(t0 + 100.7)
        assert alert.state is AlertState.FIRING
    engine.tick(t0 + 105.0)  # past the grace: the readings decided, and the grid is still out
    assert alert.state is AlertState.FIRING and alert.condition


def test_restored_device_offline_stays_until_the_device_reports(tmp_path: Path) -> None:
    """A restart is no evidence that a silent device came back: its DeviceOffline stays
    firing past the grace (it used to resolve there and page again minutes later), and
    resolves on the device's first word."""
    store = AlertStore(tmp_path / "alerts.sqlite")
    site, t0 = "solotvyno", 1_800_000_000.0
    labels = {"alertname": "DeviceOffline", "site": site, "device": "scanner-1",
              "kind": "scanner", "severity": "warning"}
    store.save_alerts([AlertRecord(fingerprint(labels), labels, {}, AlertState.FIRING,
                                   t0, t0, None, t0)])
    store.remember_devices([(site, "scanner-1", "scanner", 10.0)], t0)
    engine = Engine(RulesSettings(restore_grace=4.0),
                    NotifySettings(webhook_url="http://127.0.0.1:9/"), store, t0 + 100)
    [alert] = engine.alerts.values()
    engine.stream_live(t0 + 100)
    for step in range(1, 600, 5):
        engine.tick(t0 + 100 + step)
        assert alert.state is AlertState.FIRING, step
    engine.handle(f"kordon/v1/{site}/scanner/scanner-1/status", b"online", t0 + 700)
    engine.tick(t0 + 700.1)
    assert alert.state is AlertState.RESOLVED
