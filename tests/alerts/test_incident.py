"""Power incidents with default configuration: the real engine on the scenario's simulated
clock, every notification POSTed by the real webhook notifier to a real HTTP receiver
(issue 17)."""

from __future__ import annotations

import re
import time
from itertools import pairwise

from alerts.dispatch import Dispatcher, Route
from alerts.state import Alert
from bench.incident import deliver, figures, physical_events, run_scenario
from kordon.model.alerts import AlertState
from kordon.storage.alert_store import AlertStore
from simulators.scenario import load_scenario
from testkit import wait_until
from testkit.alerts import UPS_ON_MAINS, ups_on_battery
from testkit.receivers import WebhookReceiver

FOR = 30.0  # SitePowerOutage's default `for`
# Measured on main before this change (bench/incident.py): 5 notifications for the
# single-site-blackout incident, none of which named a device that went dark. Now BatteryLow
# rides on the depletion page of the same UPS (built-in inhibition), which saves two, and
# each of the two moments devices went dark (ups-scan-1 with scanner-1, then ups-it, 99 s
# apart) is one update: 6, the least that tells every dark device within 30 s.
MOST_NOTIFICATIONS = 6


def test_single_site_blackout_timing_with_defaults(hook: WebhookReceiver) -> None:
    scenario = load_scenario("single-site-blackout")
    incidents = physical_events(scenario)
    assert len(incidents) == 1 and incidents[0].site == "solotvyno"
    incident = incidents[0]
    assert set(incident.empty) == {"ups-scan-1", "ups-it"} and "scanner-1" in incident.dark
    result = run_scenario(scenario, hook.url())
    arrivals = deliver(result, hook)
    [f] = figures(scenario.name, incidents, result, arrivals)

    assert f.first_page is not None and f.first_page <= FOR + 15.0
    assert {ups for ups, *_ in f.depletion} == {"ups-scan-1", "ups-it"}
    for ups, lead_lb, lead_empty, after_decision, _best in f.depletion:
        assert after_decision <= 15.0, ups
        assert lead_lb is not None and lead_lb > 0 and lead_empty is not None and lead_empty > 0
    assert f.dark and all(named is not None and named <= 30.0 for _, named in f.dark), f.dark
    assert f.resolution is not None and f.resolution <= 30.0
    assert f.duplicates == 0
    keys = [r.headers.get("Idempotency-Key") for r in hook.requests]
    assert len(keys) == len(set(keys))
    assert f.notifications <= MOST_NOTIFICATIONS

    # The words, before, during and after empty.
    texts = [(a.body["status"], alert["status"], alert["labels"]["alertname"],
              alert["labels"].get("device", ""), alert["annotations"]["summary"],
              alert["annotations"]["description"]) for a in arrivals
             for alert in a.body["alerts"]]
    for *_, summary, description in texts:
        for text in (summary, description):
            assert "about under" not in text and "about about" not in text, text
            assert "under a minute (0" not in text and "(0% charge" not in text, text
    incident_texts = [s + " " + d for _, status, name, _, s, d in texts
                      if name == "SitePowerOutage" and status == "firing"]
    assert any("will be empty" not in t and "empty in about" in t for t in incident_texts)
    assert any(re.search(r"scanner-1 stopped at \d\d:\d\d UTC: its UPS ups-scan-1 ran flat", t)
               for t in incident_texts), incident_texts
    assert any("ups-scan-1 ran flat at" in t for t in incident_texts)
    flat = [s for _, status, name, device, s, _ in texts
            if name == "BatteryDepletionImminent" and device == "ups-scan-1"
            and status == "firing" and "ran flat" in s]
    assert flat, "after empty the depletion alert says when it ran flat"
    resolved = [s for _, status, name, _, s, _ in texts
                if name == "SitePowerOutage" and status == "resolved"]
    assert resolved and "grid power again" in resolved[-1] and "ran flat" in resolved[-1]
    assert all("will be empty" not in s for _, status, _, _, s, _ in texts
               if status == "resolved")
    # Muted dark devices are never paged on their own: the incident names them.
    paged = {name for _, status, name, *_ in texts if status == "firing"}
    assert "DeviceOffline" not in paged and "BatteryLow" not in paged


def _alert(name: str, severity: str, device: str, now: float) -> Alert:
    alert = Alert((name, "s", device), {"alertname": name, "site": "s", "device": device,
                                        "severity": severity}, {}, now, 0.0, 0.0, 1)
    alert.step(now)
    assert alert.state is AlertState.FIRING
    return alert


def _sends(dispatcher: Dispatcher, start: float, end: float) -> list[tuple[float, list[str]]]:
    out = []
    now = start
    while now <= end:
        for note in dispatcher.flush(now, lambda _a: False, set()).notifications:
            out.append((now, sorted(a["labels"]["alertname"] + ":" + a["status"]
                                    for a in note.payload["alerts"])))
        due = dispatcher.next_due()
        now = max(now + 0.5, due) if due is not None and due > now else now + 0.5
    return out


def _dispatcher() -> Dispatcher:
    root = Route("0", "oncall", (), ("site",), 30.0, 300.0, 4 * 3600.0, None, 900.0, False)
    return Dispatcher(root, {}, set())


def test_alertmanager_timers_kept_for_warnings_and_critical_news_goes_at_once() -> None:
    dispatcher = _dispatcher()
    first = _alert("MainsPowerLost", "warning", "ups-1", 0.0)
    dispatcher.add(first, 0.0)
    sends = _sends(dispatcher, 0.0, 100.0)
    assert sends == [(30.0, ["MainsPowerLost:firing"])]  # group_wait, as Alertmanager
    second = _alert("MainsPowerLost", "warning", "ups-2", 100.0)
    dispatcher.add(second, 100.0)
    sends = _sends(dispatcher, 100.0, 400.0)
    assert [t for t, _ in sends] == [330.0]  # a warning waits for group_interval
    critical = _alert("BatteryDepletionImminent", "critical", "ups-1", 400.0)
    dispatcher.add(critical, 400.0)
    sends = _sends(dispatcher, 400.0, 500.0)
    assert sends == [(405.0, ["BatteryDepletionImminent:firing", "MainsPowerLost:firing",
                              "MainsPowerLost:firing"])]
    critical.set_condition(False, 500.0)
    critical.step(500.0)
    sends = _sends(dispatcher, 500.0, 600.0)
    assert sends == [(510.0, ["BatteryDepletionImminent:resolved", "MainsPowerLost:firing",
                              "MainsPowerLost:firing"])]
    assert _sends(dispatcher, 600.0, 4000.0) == []  # nothing changed: nothing is sent again


def test_incident_updates_are_rate_limited() -> None:
    dispatcher = _dispatcher()
    outage = _alert("SitePowerOutage", "critical", "", 0.0)
    outage.material = frozenset({("no generator",)})
    dispatcher.add(outage, 0.0)
    assert [t for t, _ in _sends(dispatcher, 0.0, 10.0)] == [5.0]
    # The picture changes every second for ten minutes (a flapping device).
    times = []
    now = 10.0
    while now < 610.0:
        outage.material = frozenset({("no generator",), ("dark", f"radio-{int(now)}")})
        times += [t for t, _ in _sends(dispatcher, now, now + 0.9)]
        now += 1.0
    gaps = [b - a for a, b in pairwise([5.0, *times])]
    assert gaps[0] >= 20.0 and all(b >= a for a, b in pairwise(gaps))
    assert max(gaps) <= 300.0 and len(times) <= 8, times


def test_a_restarted_engine_compares_its_rebuilt_picture_with_what_was_told(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """After a restart the site's picture is rebuilt one report at a time (the engine leaves
    it unknown until it is whole): the picture already told is no news (the chaos run once
    paged the same incident text twice), a new fact is."""
    told = frozenset({("no generator",), ("battery", "ups-1"), ("battery", "ups-2")})
    store = AlertStore(tmp_path / "alerts.sqlite")
    dispatcher = _dispatcher()
    outage = _alert("SitePowerOutage", "critical", "", 0.0)
    outage.material = told
    dispatcher.add(outage, 0.0)
    sent = 0
    for now in (0.0, 5.0):
        decided = dispatcher.flush(now, lambda _a: False, set())
        sent += len(decided.notifications)
        store.record_notifications([], decided.nflog, [], now)
    assert sent == 1
    store.close()

    store = AlertStore(tmp_path / "alerts.sqlite")
    root = _dispatcher().root
    restarted = Dispatcher(root, store.nflog(), set())
    outage = _alert("SitePowerOutage", "critical", "", 100.0)
    restarted.add(outage, 100.0)  # its picture unknown until every device reported
    assert _sends(restarted, 100.0, 160.0) == []
    outage.material = told
    assert _sends(restarted, 160.0, 400.0) == []
    outage.material = told | {("dark", "scanner-1")}
    assert [names for _, names in _sends(restarted, 400.0, 500.0)] == [
        ["SitePowerOutage:firing"]
    ]


def test_an_nflog_written_before_pictures_were_kept_still_opens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    path = tmp_path / "alerts.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE nflog (group_key TEXT NOT NULL, receiver TEXT NOT NULL, "
                   "firing TEXT NOT NULL, resolved TEXT NOT NULL, sent_at REAL NOT NULL, "
                   "PRIMARY KEY (group_key, receiver))")
        db.execute("INSERT INTO nflog VALUES ('g', 'oncall', '[\"fp\"]', '[]', 5.0)")
    store = AlertStore(path)
    [entry] = store.nflog().values()
    assert entry.firing == frozenset({"fp"}) and entry.material == {}


DEFAULT_TIMING_NOTIFY = """notify:
  receivers:
    - name: oncall
      webhook: {{url: "{url}"}}
  route: {{receiver: oncall}}
"""


def test_live_alerts_process_default_timing(
    tmp_path, own_mosquitto, make_alerts, make_devices, hook, site  # type: ignore[no-untyped-def]
) -> None:
    """``kordon run --roles alerts`` with the default route (group_by site, group_wait 30s,
    group_interval 5m): the outage pages within `for` + urgent_wait, a UPS running flat and
    the scanner it feeds are named in an update of the same group within 30 s, and the
    grid's return is told within seconds, all on the wall clock.

    On a broker of its own: every page the receiver gets must be this site's, and the
    session broker holds other tests' retained statuses (their devices' DeviceOffline is
    urgent, so it would arrive within the test)."""
    engine = make_alerts(DEFAULT_TIMING_NOTIFY.format(url=hook.url("/oncall")),
                         mosquitto=own_mosquitto)
    engine.start(ready_line="alerts ready")
    devices = make_devices(own_mosquitto)
    for name in ("ups-1", "ups-2", "ups-3"):
        devices.add("ups", name, **UPS_ON_MAINS)
    devices.add("scanner", "scanner-1", **{"power.source": "mains", "scanner.state": "ready"})
    devices.start()
    try:
        store = tmp_path / "data" / "alerts.sqlite"
        wait_until(lambda: store.exists() and _known(store, site) == 4, 20,
                   what="the engine knows the site on mains")
        cut = time.monotonic()
        for name in ("ups-1", "ups-2", "ups-3"):
            devices.set(name, **ups_on_battery(90.0, drain=0.0))
        devices.set("scanner-1", **{"power.source": "ups"})
        wait_until(lambda: _bodies(hook), 1.0 + 15.0 + 10.0, what="first page")
        first = time.monotonic() - cut
        assert first <= 1.0 + 15.0, first  # `for: 1s` (FAST_RULES) + 15 s, not group_wait
        group = _bodies(hook)[0]["groupKey"]
        dark = time.monotonic()
        devices.set("ups-1", **{"ups.status": "OB LB OFF", "battery.charge": 0.0,
                                "battery.runtime": 0.0})
        devices.set("scanner-1", **{"power.source": "none", "scanner.state": "off"})
        wait_until(lambda: any("scanner-1 stopped" in _incident(b) and "ups-1 ran flat"
                               in _incident(b) for b in _bodies(hook)), 35.0,
                   what="the incident names the dark devices")
        assert time.monotonic() - dark <= 30.0
        assert {b["groupKey"] for b in _bodies(hook)} == {group}
        back = time.monotonic()
        for name in ("ups-1", "ups-2", "ups-3"):
            devices.set(name, **UPS_ON_MAINS)
        devices.set("scanner-1", **{"power.source": "mains", "scanner.state": "ready"})
        wait_until(lambda: _bodies(hook)[-1]["status"] == "resolved", 35.0, what="resolved")
        assert time.monotonic() - back <= 30.0
        assert "grid power again" in _incident(_bodies(hook)[-1])
    finally:
        devices.stop()
        engine.stop()
    keys = [r.headers.get("Idempotency-Key") for r in hook.requests]
    assert len(keys) == len(set(keys))
    assert len(keys) <= 4  # page, update (dark), resolved; one more if the cut split


def _known(path, site: str) -> int:  # type: ignore[no-untyped-def]
    store = AlertStore(path)
    try:
        return len([d for d in store.known_devices() if d.site == site])
    finally:
        store.close()


def _bodies(hook: WebhookReceiver) -> list[dict]:  # type: ignore[type-arg]
    return [r.body for r in list(hook.requests)]


def _incident(body: dict) -> str:  # type: ignore[type-arg]
    return " ".join(a["annotations"].get("summary", "") + " " +
                    a["annotations"].get("description", "") for a in body["alerts"]
                    if a["labels"]["alertname"] == "SitePowerOutage")


def test_an_urgent_send_held_by_a_pending_inhibitor_retries_without_spinning() -> None:
    dispatcher = _dispatcher()
    critical = _alert("BatteryDepletionImminent", "critical", "ups-1", 0.0)
    dispatcher.add(critical, 0.0)
    assert dispatcher.flush(0.0, lambda _a: False, set()).notifications == []
    held = dispatcher.flush(5.0, lambda _a: False, {critical.fingerprint})
    assert held.notifications == []
    due = dispatcher.next_due()
    assert due is not None and due > 5.0  # never a time already past: replay would spin
    assert len(dispatcher.flush(due, lambda _a: False, set()).notifications) == 1
