"""The dispatcher owns its state (issue 20): the site clock comes at construction, and
settling a site goes through the dispatcher's own method."""

from __future__ import annotations

from alerts.dispatch import Dispatcher, Route
from alerts.settle import settle_notices
from alerts.state import Alert
from kordon.model.alerts import AlertState


def _root() -> Route:
    return Route("0", "oncall", (), ("site",), 30.0, 300.0, 4 * 3600.0, None, 900.0, False)


def _firing(site: str, now: float) -> Alert:
    alert = Alert(("SitePowerOutage", site, ""), {"alertname": "SitePowerOutage", "site": site,
                                                   "severity": "critical"}, {}, now, 0.0, 0.0, 0)
    alert.step(now)
    assert alert.state is AlertState.FIRING
    return alert


def test_groups_run_on_the_clock_given_at_construction() -> None:
    """A simulated site's group follows its scenario clock, whatever the tick's now."""
    scenario = {"sim": 5000.0}
    dispatcher = Dispatcher(_root(), {}, set(),
                            clock_of=lambda site: scenario["sim"] if site == "sim" else -1.0)
    dispatcher.add(_firing("sim", 5000.0), 5000.0)
    assert dispatcher.flush(10.0, lambda _a: False, set()).notifications == []
    scenario["sim"] = 5005.0  # urgent_wait on the scenario clock, the wall clock unmoved
    [note] = dispatcher.flush(10.0, lambda _a: False, set()).notifications
    assert note.payload["sentAt"] == 5005.0


def test_settling_a_site_goes_through_the_dispatcher() -> None:
    dispatcher = Dispatcher(_root(), {}, set())
    told = _firing("a", 0.0)
    dispatcher.add(told, 0.0)
    assert dispatcher.flush(0.0, lambda _a: False, set()).notifications == []
    assert len(dispatcher.flush(5.0, lambda _a: False, set()).notifications) == 1
    untold = _firing("b", 6.0)
    dispatcher.add(untold, 6.0)
    for alert in (told, untold):
        alert.state = AlertState.RESOLVED
    decided = settle_notices(dispatcher, "a", [told, untold], 50.0)
    [notice] = decided.notifications
    assert notice.group_key == 'settle:{site="a"}'
    assert [a["fingerprint"] for a in notice.payload["alerts"]] == [told.fingerprint]
    [(key, receiver, entry)] = decided.nflog
    assert (receiver, entry.firing, entry.resolved, entry.sent_at) == (
        "oncall", frozenset(), frozenset({told.fingerprint}), 50.0)
    assert dispatcher.nflog[(key, receiver)] is entry
    assert dispatcher.groups == {}  # emptied groups are gone
