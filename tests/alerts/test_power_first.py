"""Power news is never held behind maintenance news (issue 28).

The real engine on a simulated clock with the default ``notify`` route (group_by site,
group_wait 30s, group_interval 5m, urgent_wait 5s): at one site an APC goes on battery
(``MainsPowerLost``, for 30s, a warning) and an old MGE reports ``RB`` (``ReplaceBattery``,
for 0s, a warning). Whichever fires first, or both in the same tick, the power page reaches
on-call within ``for`` + ``urgent_wait`` + 2 s of the cut, and the replace-battery notice
arrives once, at Alertmanager's pace, in a group of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import orjson
import pytest

from alerts.config import URGENT_ALERTS, NotifySettings, RulesSettings, load
from alerts.dispatch import Dispatcher, Route, build_routes
from alerts.engine import Engine
from alerts.state import Alert
from kordon.config import ConfigError, load_settings
from kordon.model.alerts import AlertState
from kordon.storage.alert_store import AlertStore

SITE = "chop"
T0 = 1_800_000_000.0
FOR = 30.0  # MainsPowerLost's default `for`
URGENT_WAIT = 5.0
GROUP_WAIT = 30.0
ON_MAINS = {"ups.status": "OL CHRG", "battery.charge": 100.0, "battery.runtime": 1962.0,
            "input.voltage": 232.0, "ups.load": 19.0}


@dataclass
class Site:
    """Two UPS units publishing every second of simulated time; every notification kept."""

    engine: Engine
    status: dict[str, str] = field(default_factory=lambda: {"apc": "OL", "mge": "OL CHRG"})
    sent: list[tuple[float, dict]] = field(default_factory=list)  # type: ignore[type-arg]
    seq: int = 0

    def run(self, start: float, end: float, changes: dict[float, tuple[str, str]]) -> None:
        """Publish and tick each second from ``start`` to ``end`` (seconds after T0);
        ``changes``: second -> (ups, its new ups.status), applied before that second's
        readings, so they and every timer they start share one tick."""
        for second in range(int(start), int(end) + 1):
            now = T0 + second
            if second in changes:
                ups, status = changes[second]
                self.status[ups] = status
            self.seq += 1
            for ups, status in self.status.items():
                metrics = {**ON_MAINS, "ups.status": status}
                if "OB" in status:
                    metrics["input.voltage"] = 0.0
                payload = orjson.dumps({"ts": now, "seq": self.seq, "metrics": metrics})
                self.engine.handle(f"kordon/v1/{SITE}/ups/{ups}/telemetry", payload, now)
            for note in self.engine.tick(now):
                self.sent.append((now - T0, note.payload))

    def pages(self, name: str) -> list[float]:
        """When notifications carrying ``name`` firing went out (seconds after T0)."""
        return [at for at, body in self.sent if any(
            a["status"] == "firing" and a["labels"]["alertname"] == name for a in body["alerts"]
        )]

    def group_of(self, name: str) -> set[str]:
        return {body["groupKey"] for _, body in self.sent
                if any(a["labels"]["alertname"] == name for a in body["alerts"])}


@pytest.fixture
def site() -> Site:
    store = AlertStore(":memory:")
    notify = NotifySettings(webhook_url="http://127.0.0.1:9/oncall")
    return Site(Engine(RulesSettings(), notify, store, T0))


def _check(site: Site, cut: float, replaced: float) -> None:
    """The power page within for + urgent_wait + 2 s of the cut; ReplaceBattery once, within
    group_wait + 2 s of its RB, never in the power page's notification."""
    [power, *_] = site.pages("MainsPowerLost")
    assert power - cut <= FOR + URGENT_WAIT + 2.0, (power - cut, site.sent)
    assert len(site.pages("ReplaceBattery")) == 1, site.sent
    [maintenance] = site.pages("ReplaceBattery")
    assert maintenance - replaced <= GROUP_WAIT + 2.0, (maintenance - replaced, site.sent)
    assert site.group_of("MainsPowerLost").isdisjoint(site.group_of("ReplaceBattery"))


def test_maintenance_first_then_power(site: Site) -> None:
    """The issue's run: RB told at the group's first flush, the cut fires right after it."""
    site.run(0, 120, {2: ("mge", "OL CHRG RB"), 5: ("apc", "OB DISCHRG")})
    assert site.pages("ReplaceBattery")[0] < site.pages("MainsPowerLost")[0]
    _check(site, cut=5, replaced=2)


def test_power_first_then_maintenance(site: Site) -> None:
    """The cut fires first; RB comes while its page waits its urgent_wait."""
    site.run(0, 120, {1: ("apc", "OB DISCHRG"), 33: ("mge", "OL CHRG RB")})
    _check(site, cut=1, replaced=33)


def test_power_and_maintenance_in_the_same_tick(site: Site) -> None:
    site.run(0, 120, {1: ("apc", "OB DISCHRG"), 31: ("mge", "OL CHRG RB")})
    fired = {a.labels["alertname"]: a.starts_at for a in site.engine.alerts.values()
             if a.state is AlertState.FIRING}
    assert fired["MainsPowerLost"] == fired["ReplaceBattery"] == T0 + 31
    _check(site, cut=1, replaced=31)


def _firing(name: str, now: float, severity: str = "warning", **labels: str) -> Alert:
    alert = Alert((name, SITE, labels.get("device", "")),
                  {"alertname": name, "site": SITE, "severity": severity, **labels},
                  {}, now, 0.0, 0.0, 1)
    alert.step(now)
    return alert


def _first_send(dispatcher: Dispatcher, name: str, start: float) -> float:
    now = start
    while now < start + 1000:
        for note in dispatcher.flush(now, lambda _a: False, set()).notifications:
            if any(a["labels"]["alertname"] == name for a in note.payload["alerts"]):
                return now
        now += 0.5
    return math.inf


def test_a_warning_outside_the_class_keeps_alertmanagers_timers() -> None:
    """Only the class is urgent: a DeviceOffline with a power cause (a consequence the power
    alert explains) waits for the group's timer behind what the group said before."""
    dispatcher = Dispatcher(build_routes(NotifySettings(webhook_url="http://x.test/")), {}, set())
    dispatcher.add(_firing("MainsPowerLost", 0.0, device="ups-1"), 0.0)
    assert _first_send(dispatcher, "MainsPowerLost", 0.0) == URGENT_WAIT
    dispatcher.add(_firing("DeviceOffline", 10.0, device="radio-1", cause="power"), 10.0)
    assert _first_send(dispatcher, "DeviceOffline", 10.0) == URGENT_WAIT + 300.0
    dispatcher.add(_firing("DeviceOffline", 400.0, device="radio-2"), 400.0)
    assert _first_send(dispatcher, "DeviceOffline", 400.0) == 400.0 + URGENT_WAIT


def test_the_class_is_configurable_per_route() -> None:
    settings = NotifySettings.model_validate({
        "webhook_url": "http://x.test/",
        "route": {"routes": [{"matchers": ['kind="radio"'], "urgent_alerts": ["SitePowerOutage"],
                              "maintenance_alerts": []}]},
    })
    root = build_routes(settings)
    [radio] = root.children
    assert root.urgent_alerts == frozenset(URGENT_ALERTS)
    assert radio.urgent_alerts == {"SitePowerOutage"} and radio.maintenance_alerts == set()
    dispatcher = Dispatcher(root, {}, set())
    dispatcher.add(_firing("MainsPowerLost", 0.0, device="radio-1", kind="radio"), 0.0)
    assert _first_send(dispatcher, "MainsPowerLost", 0.0) == GROUP_WAIT  # not in its class
    hand_made = Route("0", "oncall", (), ("site",), 30.0, 300.0, 3600.0, None, 900.0, False)
    assert hand_made.urgent_alerts == frozenset()


def test_an_unknown_alert_name_fails_at_start_naming_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "kordon.yaml"
    path.write_text(
        "notify:\n"
        "  webhook_url: http://hooks.example/k\n"
        "  route:\n"
        "    urgent_alerts: [MainsPowerLost, MainsPowerLst]\n"
        "    routes:\n"
        "      - {matchers: ['kind=\"radio\"'], maintenance_alerts: [SitePowerOutage]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load(load_settings(path, {}))
    message = str(info.value)
    assert "notify.route.urgent_alerts.1: 'MainsPowerLst' is not an alert name" in message
    path.write_text(
        "notify:\n"
        "  webhook_url: http://hooks.example/k\n"
        "  route:\n"
        "    routes:\n"
        "      - {matchers: ['kind=\"radio\"'], maintenance_alerts: [SitePowerOutage]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load(load_settings(path, {}))
    assert ("route.routes[0]: SitePowerOutage cannot be both in urgent_alerts and in "
            "maintenance_alerts") in str(info.value)
    # The planned alerts are in the class already.
    assert {"RegionalPowerOutage", "GeneratorFuelLow"} <= set(URGENT_ALERTS)
