"""The pushes to Alertmanager (``alerts/push.py``): what goes out when, on a simulated wall clock.

The rule under test is the one that keeps a paired engine that fell behind from re-opening an
incident its peer resolved: a firing alert is re-sent only while the engine can confirm it, and
unconfirmed only when Alertmanager would otherwise time it out. The end-to-end check is the
all-in-one chaos run (``tests/chaos/test_all_in_one.py``), where a restarted engine reconnects to
a restarted broker after its peer pushed the resolution.
"""

from __future__ import annotations

from typing import Any

from alerts.config import NotifySettings
from alerts.push import VALID_FACTOR, AlertmanagerPush
from alerts.state import Alert
from kordon.clock import SimulatedClock
from kordon.model.alerts import AlertState

RESEND = 2.0
EVALUATION = 0.25  # binary fractions: the simulated clock adds up exactly
HOLD = (VALID_FACTOR - 1) * RESEND  # the longest an unconfirmed re-send waits


def _push() -> tuple[AlertmanagerPush, SimulatedClock]:
    notify = NotifySettings.model_validate({
        "receivers": [{"name": "am", "alertmanager": {
            "urls": ["http://127.0.0.1:9"], "resend_delay": RESEND, "resolved_retention": 30}}],
    })
    wall = SimulatedClock(1000.0)
    return AlertmanagerPush(notify, EVALUATION, wall.now), wall


def _firing(device: str) -> Alert:
    labels = {"alertname": "MainsPowerLost", "site": "chop", "device": device,
              "severity": "warning"}
    alert = Alert(("MainsPowerLost", "chop", device), labels, {}, 990.0, 1.0, 0.0, 0)
    alert.state = AlertState.FIRING
    alert.starts_at = 991.0
    return alert


def _pushed(rows: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """(device, status) of every alert in the one push of ``rows``; [] when none was queued."""
    if not rows:
        return []
    (_target, _key, payload), = rows
    return sorted((a["labels"]["device"], a["status"]) for a in payload["alerts"])


def test_an_unconfirmed_firing_alert_is_held_until_it_would_time_out() -> None:
    push, wall = _push()
    alert = _firing("ups-1")
    confirmed = {"ups-1": True}

    def belief(a: Alert) -> bool:
        return confirmed[a.labels["device"]]

    assert _pushed(push.collect([alert], 0.0, belief)) == [("ups-1", "firing")]
    confirmed["ups-1"] = False  # the connection is lost: nothing newer than the last push
    held = []
    while wall.now() < 1000.0 + HOLD - EVALUATION:
        wall.advance(EVALUATION)
        held += push.collect([alert], 0.0, belief)
    assert held == [], "an unconfirmed belief was re-sent before it could time out"
    wall.advance(EVALUATION)
    rows = push.collect([alert], 0.0, belief)
    assert _pushed(rows) == [("ups-1", "firing")]
    # ... with a validity that outlasts the next hold, so Alertmanager never times it out.
    assert rows[0][2]["validUntil"] > wall.now() + HOLD


def test_a_confirmed_alert_is_re_sent_every_resend_delay() -> None:
    push, wall = _push()
    alert = _firing("ups-1")
    times = []
    while wall.now() < 1000.0 + 3 * RESEND:
        if push.collect([alert], 0.0, lambda _a: True):
            times.append(round(wall.now() - 1000.0, 1))
        wall.advance(EVALUATION)
    assert times == [0.0, RESEND, 2 * RESEND]


def test_a_first_firing_and_a_resolution_are_never_held() -> None:
    push, wall = _push()
    old, new = _firing("ups-1"), _firing("ups-2")
    push.collect([old], 0.0, lambda _a: True)
    wall.advance(EVALUATION)
    # Nothing is confirmed, yet the new alert goes out at once (the held one stays out).
    assert _pushed(push.collect([old, new], 0.0, lambda _a: False)) == [("ups-2", "firing")]
    wall.advance(EVALUATION)
    old.state, old.ends_at = AlertState.RESOLVED, 1000.0
    assert _pushed(push.collect([old, new], 0.0, lambda _a: False)) == [("ups-1", "resolved")]


def test_fresh_evidence_releases_the_held_re_send() -> None:
    push, wall = _push()
    alert = _firing("ups-1")
    push.collect([alert], 0.0, lambda _a: True)
    wall.advance(RESEND + EVALUATION)
    assert push.collect([alert], 0.0, lambda _a: False) == []
    assert _pushed(push.collect([alert], 0.0, lambda _a: True)) == [("ups-1", "firing")]


def test_a_resolved_incident_is_pushed_only_with_the_alerts_it_muted() -> None:
    """SitePowerOutage resolves with the first UPS back on mains; pushed alone, Alertmanager
    would unmute the other units' MainsPowerLost until their own readings come."""
    from alerts.inhibit import Inhibitor

    notify = NotifySettings.model_validate({
        "receivers": [{"name": "am", "alertmanager": {
            "urls": ["http://127.0.0.1:9"], "resend_delay": RESEND, "resolved_retention": 30}}],
    })
    wall = SimulatedClock(1000.0)
    push = AlertmanagerPush(notify, EVALUATION, wall.now, Inhibitor().inhibits)
    site_labels = {"alertname": "SitePowerOutage", "site": "chop", "severity": "critical"}
    site = Alert(("SitePowerOutage", "chop", ""), site_labels, {}, 990.0, 1.0, 0.0, 0)
    site.state, site.starts_at = AlertState.FIRING, 991.0
    unit = _firing("ups-2")

    def names(rows: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
        (_target, _key, payload), = rows
        return sorted((a["labels"]["alertname"], a["status"]) for a in payload["alerts"])

    assert names(push.collect([site, unit], 0.0)) == [("MainsPowerLost", "firing"),
                                                      ("SitePowerOutage", "firing")]
    wall.advance(EVALUATION)
    site.state, site.ends_at = AlertState.RESOLVED, 1000.25
    assert names(push.collect([site, unit], 0.0)) == [("MainsPowerLost", "firing")]
    wall.advance(EVALUATION)
    unit.state, unit.ends_at = AlertState.RESOLVED, 1000.5
    assert names(push.collect([site, unit], 0.0)) == [("MainsPowerLost", "resolved"),
                                                      ("SitePowerOutage", "resolved")]
    # A unit that stays on battery holds the incident's resolution one resend delay at most.
    unit.state = AlertState.FIRING
    site.state = AlertState.FIRING
    push.collect([site, unit], 0.0)
    site.state = AlertState.RESOLVED
    held = []
    while wall.now() < 1000.5 + RESEND + 2 * EVALUATION:
        wall.advance(EVALUATION)
        rows = push.collect([site, unit], 0.0)
        if rows:
            held.append(names(rows))
    assert held and held[-1] == [("MainsPowerLost", "firing"), ("SitePowerOutage", "resolved")]
