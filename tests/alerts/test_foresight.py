"""Schedule foresight: the pure forecast, and ScheduledOutageAtRisk through the real engine
over a real simulator run (a small fleet, a JSON schedule file, the scenario's own clock)."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import yaml

from alerts.battery import BatterySeed, Reading
from alerts.config import RulesSettings
from alerts.foresight.evaluator import Foresight, Verdict
from alerts.foresight.forecast import CutForecast, Recharge, drain, forecast
from alerts.foresight.watch import UpsWatch
from composition.verify import replay_scenario
from kordon.fleet import read_yaml
from kordon.model.alerts import AlertState
from kordon.schedule import Cut
from kordon.schedule.render import to_json
from simulators.scenario import parse_scenario

KYIV = ZoneInfo("Europe/Kyiv")
H = 3600.0


def flat(load: float):  # type: ignore[no-untyped-def]
    return lambda _t: load


def test_recharge_two_phases_and_rate_round_trip() -> None:
    r = Recharge(rate=0.5 / H)  # bulk: half the battery an hour, absorption a quarter
    assert r.after(0.0, 1.6 * H) == pytest.approx(0.8)
    assert r.after(0.0, 2.4 * H) == pytest.approx(1.0)
    assert r.time_to_full(0.0) == pytest.approx(2.4 * H)
    assert Recharge.rate_from(0.0, r.time_to_full(0.0)) == pytest.approx(r.rate)
    assert Recharge.rate_from(0.9, 0.4 * H) == pytest.approx(r.rate)


def test_drain_runs_out_at_soc_times_runtime() -> None:
    end, used, out, mean = drain(0.5, 0.0, 2 * H, flat(40.0), lambda _load: 2 * H)
    assert out == pytest.approx(1 * H) and used == pytest.approx(1.0)
    assert end == pytest.approx(-0.5) and mean == 40.0


def test_the_cut_before_leaves_less_for_the_next() -> None:
    cuts = [Cut("3", 2 * H, 4 * H), Cut("3", 5 * H, 7 * H)]
    result = forecast(cuts, 0.0, 1.0, load_at=flat(50.0), runtime_at=lambda _l: 3 * H,
                      recharge=Recharge(0.1 / H), margin=0.05)
    first, second = result
    assert first.soc_start == pytest.approx(1.0) and first.ok
    assert first.soc_end == pytest.approx(1 / 3)
    assert second.soc_start == pytest.approx(1 / 3 + 0.1)  # one hour of charging
    assert not second.ok and second.runs_out_at == pytest.approx(5 * H + (1 / 3 + 0.1) * 3 * H)
    assert second.needed == pytest.approx(2 / 3 + 0.05)
    assert second.short_s == pytest.approx(7 * H - second.runs_out_at)


def test_shedding_and_generator_bridge() -> None:
    cut = [Cut("1", H, 3 * H)]
    runtime = lambda load: 3 * H * (50.0 / load) ** 1.5  # noqa: E731
    [f] = forecast(cut, 0.0, 1.0, load_at=flat(80.0), runtime_at=runtime,
                   recharge=Recharge(0.1 / H), shed_load_at=flat(30.0))
    assert not f.ok and f.shedding_carries is True
    [g] = forecast(cut, 0.0, 1.0, load_at=flat(80.0), runtime_at=runtime,
                   recharge=Recharge(0.1 / H), bridge_s=70.0)
    assert g.ok and g.bridge_s == 70.0


def test_cut_under_way_starts_from_now() -> None:
    [f] = forecast([Cut("1", 0.0, 2 * H)], H, 0.2, load_at=flat(50.0),
                   runtime_at=lambda _l: 2 * H, recharge=Recharge(0.1 / H))
    assert f.in_progress and f.soc_start == pytest.approx(0.2)
    assert f.runs_out_at == pytest.approx(H + 0.4 * H)


# ------------------------------------------------------------------ through the engine


def _scenario(tmp_path: Path) -> object:
    day = date(2024, 12, 18)
    t0 = datetime(2024, 12, 18, tzinfo=KYIV).timestamp()
    plan = {"1": [(t0 + 4 * H, t0 + 6 * H)], "2": [(t0 + 4 * H, t0 + 6 * H)]}
    (tmp_path / "s.json").write_bytes(to_json(plan, day, day))
    fleet = {
        "name": "t",
        "sites": {
            # 60 % of a GXT3 on 900 Wh: about 20 minutes, a 2 h cut runs it flat
            "weak": {"queue": 1, "devices": {"ups": {"kind": "ups", "base_load_w": 1600}}},
            # 15 % on 6 kWh: many hours, rides through
            "strong": {"queue": 2, "devices": {"ups": {"kind": "ups", "base_load_w": 400,
                                                       "battery_wh": 6000}}},
            # its group is not in the schedule: unknown, never an alert
            "elsewhere": {"queue": 5, "devices": {"ups": {"kind": "ups", "base_load_w": 1600}}},
        },
    }
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    scenario = {"name": "foresight-test", "seed": 3, "fleet": "fleet.yaml",
                "start": "2024-12-18T00:00:00+02:00", "duration": "8h",
                "schedule": {"file": "s.json", "format": "json"}}
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    return parse_scenario(read_yaml(tmp_path / "scenario.yaml"))


def test_raised_the_lead_time_ahead_and_resolved_when_the_cut_passes(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    result = replay_scenario(scenario, RulesSettings())  # type: ignore[arg-type]
    risk = [t for t in result.transitions if t.labels["alertname"] == "ScheduledOutageAtRisk"]
    assert {t.labels["site"] for t in risk} == {"weak"}
    fired = [t for t in risk if t.state is AlertState.FIRING]
    resolved = [t for t in risk if t.state is AlertState.RESOLVED]
    assert [t.at - result.start for t in fired] == [2 * H]
    assert [t.at - result.start for t in resolved] == [6 * H]
    words = fired[0].annotations
    assert "scheduled cut 04:00-06:00" in words["summary"]
    assert "before the grid returns" in words["summary"]
    assert "expected charge at its start 100%" in words["description"]
    assert "even a full battery would not do" in words["description"]
    assert fired[0].labels == {"alertname": "ScheduledOutageAtRisk", "site": "weak",
                               "device": "ups", "kind": "ups", "severity": "warning"}
    # and the weak UPS did run flat in that cut: the forecast was right
    flat_ = [t for t in result.transitions if t.labels["alertname"] == "BatteryLow"
             and t.labels["site"] == "weak" and t.state is AlertState.FIRING]
    assert flat_ and 4 * H < flat_[0].at - result.start < 6 * H


def test_lead_time_and_disabling_are_configurable(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    rules = RulesSettings.model_validate({"ScheduledOutageAtRisk": {"lead": "3h"}})
    result = replay_scenario(scenario, rules)  # type: ignore[arg-type]
    fired = [t.at - result.start for t in result.transitions
             if t.labels["alertname"] == "ScheduledOutageAtRisk"
             and t.state is AlertState.FIRING]
    assert fired == [1 * H]
    off = RulesSettings.model_validate({"ScheduledOutageAtRisk": {"enabled": False}})
    result = replay_scenario(scenario, off)  # type: ignore[arg-type]
    assert not [t for t in result.transitions
                if t.labels["alertname"] == "ScheduledOutageAtRisk"]


def test_alerts_role_reads_the_fleets_schedule_sources(tmp_path: Path) -> None:
    """The live role builds the schedule service from the fleet file and hands it to the
    engine (not started here: no broker needed to see the wiring)."""
    from alerts.role import AlertsRole
    from kordon.clock import WALL_CLOCK
    from kordon.config import load_settings
    from kordon.schedule import OutlookStatus

    day = date(2024, 12, 18)
    t0 = datetime(2024, 12, 18, tzinfo=KYIV).timestamp()
    (tmp_path / "s.json").write_bytes(to_json({"3": [(t0 + 4 * H, t0 + 6 * H)]}, day, day))
    fleet = {"name": "t", "schedules": {"dso": {"url": "s.json"}},
             "sites": {"a": {"queue": 3, "schedule": {"source": "dso"},
                             "devices": {"ups": {"kind": "ups"}}}}}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    settings = load_settings(None, {"KORDON_FLEET": str(tmp_path / "fleet.yaml"),
                                    "KORDON_DATA_DIR": str(tmp_path / "data")})
    role = AlertsRole(settings, WALL_CLOCK)
    try:
        assert role.schedules is not None and role.engine.foresight is not None
        role.schedules.refresh_all()
        outlook = role.schedules.outlook("a", t0 + H)
        assert outlook.status is OutlookStatus.KNOWN and len(outlook.cuts) == 1
        assert (tmp_path / "data" / "schedules" / "dso.data").exists()
    finally:
        role.store.close()
        role.sender.store.close()


@pytest.mark.parametrize("odd", [math.inf, math.nan, 1e300, -1e12])
def test_watch_ignores_readings_at_absurd_times(odd: float) -> None:
    """``datetime.fromtimestamp`` of the reading's time raised (OverflowError, ValueError)."""
    watch = UpsWatch("s", "ups", BatterySeed(), None, KYIV)
    watch.observe(Reading(1_700_000_000.0, frozenset({"OL"}), charge=100.0, load=40.0))
    watch.observe(Reading(odd, frozenset({"OB"}), charge=90.0, load=40.0))
    assert watch.last_time == 1_700_000_000.0 and not watch.on_battery


def test_page_words_with_an_unbounded_runtime() -> None:
    """``approx_duration(inf)`` raised in ``round``: the runtime is then "unknown"."""
    cut = Cut("1", 1_700_003_600.0, 1_700_010_800.0)
    f = CutForecast(cut=cut, soc_start=0.3, soc_end=-0.2, used=0.5,
                    runs_out_at=1_700_007_000.0, needed=0.55, margin=0.05, shed_soc_end=None,
                    mean_load_pct=40.0, bridge_s=None, in_progress=False)
    verdict = Verdict(site="s", device="ups", status="known", reason="", soc_now=0.3,
                      load_pct=40.0, health_pct=80.0, runtime_full_s=math.inf,
                      forecasts=(f,), generator=False)
    words = Foresight.page_words(SimpleNamespace(zone=KYIV), verdict, f)  # type: ignore[arg-type]
    assert "a full battery lasts unknown" in words["description"]


def test_publisher_writes_the_snapshot_and_cancels_a_dropped_cut(tmp_path: Path) -> None:
    """Each evaluation's outlooks go to foresight.json (what the API reads); a new cut is
    written once, and one a later schedule dropped before it began is rewritten cancelled."""
    from alerts.config.rules import ScheduledOutageAtRiskRule
    from alerts.foresight.evaluator import Foresight
    from alerts.foresight.publish import ForesightPublisher
    from kordon.fleet import Fleet
    from kordon.schedule import StaticSchedules, parse
    from kordon.schedule.snapshot import SnapshotReader

    day = date(2024, 12, 18)
    t0 = datetime(2024, 12, 18, tzinfo=KYIV).timestamp()
    fleet = Fleet.model_validate({"name": "t", "sites": {
        "a": {"queue": 3, "devices": {"ups": {"kind": "ups"}}}}})

    def schedules(cuts: list[tuple[float, float]]) -> StaticSchedules:
        return StaticSchedules.for_fleet(parse(to_json({"3": cuts}, day, day), "json"), fleet)

    rule = ScheduledOutageAtRiskRule()
    two = [(t0 + 4 * H, t0 + 6 * H), (t0 + 8 * H, t0 + 10 * H)]
    foresight = Foresight(lambda _s, _d: rule, fleet, schedules(two))
    lines: list[str] = []
    publisher = ForesightPublisher(tmp_path / "foresight.json", KYIV, lines.append)
    foresight.evaluate(t0 + H)
    pending = publisher.collect(foresight, 100.0)
    assert pending is not None
    publisher.write(pending)
    document = SnapshotReader(tmp_path / "foresight.json").read()
    assert document is not None and document["evaluated_at"] == t0 + H
    assert [c["start"] for c in document["sites"]["a"]["outlook"]["cuts"]] == [
        t0 + 4 * H, t0 + 8 * H]
    assert len(lines) == 2 and all('status="planned"' in line for line in lines)

    foresight.evaluate(t0 + 2 * H)  # same plan, too soon after the last write: nothing
    assert publisher.collect(foresight, 100.5) is None
    foresight.schedules = schedules(two[:1])  # the next read drops the second cut
    foresight.evaluate(t0 + 3 * H)
    pending = publisher.collect(foresight, 102.0)
    assert pending is not None and len(pending.lines) == 1
    assert 'status="cancelled"' in pending.lines[0]
    assert f" {int((t0 + 8 * H) * 1e9)}" in pending.lines[0]


def test_a_streamed_scenario_is_forecast_against_its_own_plan_on_its_own_clock(
    tmp_path: Path,
) -> None:
    """The live engine (stream clocks, wall-clock ticks, no schedule source configured) hears a
    600x stream that announces its plan with its clock: ScheduledOutageAtRisk fires and
    resolves at the scenario times verify gives (it never fired live before: the forecast ran
    on the wall clock and knew no schedule)."""
    from testkit.instream import play_in_process

    scenario = _scenario(tmp_path)
    verified = replay_scenario(scenario, RulesSettings())  # type: ignore[arg-type]

    def risk(transitions: list) -> list[tuple[str, str, float]]:  # type: ignore[type-arg]
        return [(t.labels["site"], t.state.value, t.at) for t in transitions
                if t.labels["alertname"] == "ScheduledOutageAtRisk"]

    transitions, _start, _end = play_in_process(scenario, 600.0)
    live = risk(transitions)
    expected = risk(verified.transitions)
    assert expected and len(live) == len(expected), (live, expected)
    for (site, state, when), (v_site, v_state, v_when) in zip(live, expected, strict=True):
        # within one evaluation step of the forecast (60 s) and the stream's transit allowance
        assert (site, state) == (v_site, v_state) and abs(when - v_when) <= 60.0, (live, expected)


def test_a_ups_that_appears_is_judged_at_once_not_a_minute_later() -> None:
    """A site without a UPS is re-judged every minute; the first reading of a UPS there must
    not wait for that minute (the page showed "unknown" for up to a minute after start)."""
    from alerts.config.rules import ScheduledOutageAtRiskRule
    from alerts.foresight.evaluator import Foresight
    from kordon.fleet import Fleet
    from kordon.model.kinds import DeviceKind
    from kordon.schedule import StaticSchedules, parse

    day = date(2024, 12, 18)
    t0 = datetime(2024, 12, 18, tzinfo=KYIV).timestamp()
    fleet = Fleet.model_validate({"name": "t", "sites": {
        "a": {"queue": 3, "devices": {"ups": {"kind": "ups"}}}}})
    schedules = StaticSchedules.for_fleet(
        parse(to_json({"3": [(t0 + 4 * H, t0 + 6 * H)]}, day, day), "json"), fleet)
    foresight = Foresight(lambda _s, _d: ScheduledOutageAtRiskRule(), fleet, schedules)
    foresight.evaluate(t0)
    assert not foresight.due(t0 + 1)
    foresight.observe("a", DeviceKind.UPS, "ups", t0 + 1,
                      {"ups.status": "OL", "battery.charge": 100.0, "ups.load": 30.0})
    assert foresight.due(t0 + 1)
    foresight.evaluate(t0 + 1)
    assert foresight.verdicts[("a", "ups")].status == "known"
