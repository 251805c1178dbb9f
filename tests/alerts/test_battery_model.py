"""Battery model (issue 14, part A) against the simulator's ground truth ``battery_health``.

Every stream here comes from the real scenario engine (``testkit/battery_sim.py``): one UPS
constant load, the grid cut long enough to run it flat (LB, then output off) or twice for a
quarter of its true capacity. Rooms are at the fleet's default 22 °C, so the truth the model can
see is ``health x 0.976`` (the simulator's capacity-temperature factor); the targets are the
issue's: within 10 points after one discharge to LB, within 15 after two partial ones.
"""

from __future__ import annotations

import collections
import functools
import json
import math
import random

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alerts.battery import (
    BatteryModel,
    BatterySeed,
    DischargeEvidence,
    Reading,
    RuntimeCurve,
    combine,
    learn,
    ordered,
    segment,
)
from alerts.battery.curve import EXPONENT_RANGE, NUT_DEFAULT_POINTS
from alerts.battery.learn import SCALE_RANGE
from simulators.engine import ScenarioRun
from simulators.scenario import load_scenario
from testkit.battery_sim import nameplate_seed, partials, rated_runtime_s, simulate, to_lb

HEALTHS = (1.0, 0.8, 0.6, 0.45)
LOADS = (0.2, 0.55, 0.9)


@functools.cache
def lb_case(health: float, load: float):
    return to_lb(health, load)


@functools.cache
def partial_case(health: float, load: float):
    return partials(health, load, depth=0.25)


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("health", HEALTHS)
def test_one_discharge_to_lb_within_10_points(health: float, load: float) -> None:
    sim = lb_case(health, load)
    model = learn(sim.readings, nameplate_seed(sim.params))
    assert model.discharges == 1
    (evidence,) = model.evidence
    assert evidence.low_battery and evidence.reached_empty and evidence.method == "empty"
    assert model.health_pct is not None
    assert abs(model.health_pct - sim.true_health_pct) <= 10.0, model.health_pct
    # the learned runtime at this load is what the unit really delivers here
    assert model.runtime_s(100 * load) == pytest.approx(sim.true_runtime_s(), rel=0.08)


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("health", HEALTHS)
def test_two_partial_discharges_within_15_points(health: float, load: float) -> None:
    sim = partial_case(health, load)
    model = learn(sim.readings, nameplate_seed(sim.params))
    assert model.discharges == 2
    for evidence in model.evidence:
        assert not evidence.low_battery and not evidence.reached_empty
        assert evidence.method == "voltage" and evidence.end_reason == "mains"
        assert 0.22 <= evidence.depth <= 0.4  # it measured the depth it was given
    assert model.health_pct is not None
    assert abs(model.health_pct - sim.true_health_pct) <= 15.0, model.health_pct


@pytest.mark.parametrize("health", [1.0, 0.45])
def test_without_a_nameplate_the_firmware_table_is_the_reference(health: float) -> None:
    """No fleet nameplate: health is measured against the UPS's own table (read from what
    it reports), never taken from its optimistic estimate."""
    for sim in (lb_case(health, 0.55), partial_case(health, 0.55)):
        model = learn(sim.readings, BatterySeed(peukert=sim.params.peukert))
        assert model.rated_source == "ups-count"
        assert model.health_pct is not None
        assert abs(model.health_pct - sim.true_health_pct) <= 10.0


def test_the_ups_estimate_is_optimistic_and_the_model_is_not() -> None:
    sim = lb_case(0.45, 0.55)
    model = learn(sim.readings, nameplate_seed(sim.params))
    (evidence,) = model.evidence
    observed = evidence.duration_s
    assert evidence.ups_runtime_at_start_s is not None
    assert evidence.ups_runtime_at_start_s > 2.0 * observed  # the firmware's promise
    assert model.runtime_s(55.0) == pytest.approx(observed, rel=0.05)
    assert evidence.ups_charge_at_end_pct is not None


def _library_readings(name: str) -> tuple[dict[tuple[str, str], list[Reading]], object]:
    scenario = load_scenario(name)
    per: dict[tuple[str, str], list[Reading]] = collections.defaultdict(list)
    for event in ScenarioRun(scenario):
        if event.on_wire and "/ups/" in event.topic and event.topic.endswith("/telemetry"):
            body = orjson.loads(event.payload)
            _, _, site, _, device, _ = event.topic.split("/")
            per[(site, device)].append(Reading.from_metrics(float(body["ts"]), body["metrics"]))
    return per, scenario


def test_aged_battery_scenario() -> None:
    """The worn, cold battery: learned well below the replacement line from the one outage,
    with the runtime it really gave; the healthy units of the site stay above it (cold room:
    the simulator's 6 °C capacity factor is 0.85)."""
    per, scenario = _library_readings("aged-battery")
    fleet = scenario.fleet  # type: ignore[attr-defined]
    learned = {}
    for (site, device), readings in per.items():
        params = fleet.sites[site].devices[device]
        model = learn(readings, BatterySeed(peukert=params.peukert))
        if model.health_pct is not None:
            learned[device] = (model, params)
    worn, params = learned["ups-it"]
    cold = 0.45 * (1 + 0.008 * (6 - 25))
    assert worn.health_pct == pytest.approx(100 * cold, abs=5)
    # Two outages: the 5-minute cut at 12:30 (partial) and the one in which the battery fails.
    earlier, evidence = sorted(worn.evidence, key=lambda e: e.start)
    assert earlier.duration_s < 6 * 60 and earlier.health_pct == pytest.approx(100 * cold, abs=10)
    assert evidence.ups_runtime_at_start_s is not None and evidence.ups_runtime_at_start_s > 1200
    assert evidence.duration_s < 11 * 60
    assert worn.runtime_s(evidence.mean_load_pct) == pytest.approx(evidence.duration_s, rel=0.1)
    for device, (model, _) in learned.items():
        if device != "ups-it":
            assert model.health_pct > 80.0, (device, model.health_pct)


@pytest.mark.parametrize(
    "name", ["single-site-blackout", "rolling-outages", "repeat-outage-recharging"]
)
def test_healthy_units_of_library_scenarios_stay_healthy(name: str) -> None:
    per, scenario = _library_readings(name)
    fleet = scenario.fleet  # type: ignore[attr-defined]
    seen = 0
    for (site, device), readings in per.items():
        params = fleet.sites[site].devices[device]
        model = learn(readings, BatterySeed(peukert=params.peukert))
        if model.health_pct is not None:
            seen += 1
            assert abs(model.health_pct - 100 * params.battery_health) <= 10, (site, device)
    assert seen >= 2


def test_exponent_is_learned_from_discharges_at_two_loads() -> None:
    """A nameplate with the wrong shape (NUT's 1.585 through the right 50 % point) is
    corrected by discharges at 30 % and 80 %."""
    low, high = to_lb(0.7, 0.3), to_lb(0.7, 0.8)
    shift = 86400.0 * 3
    readings = low.readings + [
        Reading(**{**{f: getattr(r, f) for f in Reading.__slots__}, "time": r.time + shift})
        for r in high.readings
    ]
    p = low.params
    wrong = RuntimeCurve(rated_runtime_s(p, 0.5))  # NUT's exponent
    seed = BatterySeed(
        rated_runtime=((25.0, wrong.at(25.0)), (75.0, wrong.at(75.0))), peukert=p.peukert
    )
    model = learn(readings, seed)
    assert model.discharges == 2 and model.exponent_learned
    assert model.runtime_s(30.0) == pytest.approx(low.true_runtime_s(), rel=0.08)
    assert model.runtime_s(80.0) == pytest.approx(high.true_runtime_s(), rel=0.08)
    unlearned = learn(low.readings, seed)
    assert not unlearned.exponent_learned


def test_partial_evidence_is_calibrated_by_a_discharge_to_empty() -> None:
    sim = simulate(0.6, 0.5, [(0.0, 900.0), (4 * 3600.0, 400.0)])
    model = learn(sim.readings, nameplate_seed(sim.params))
    assert model.discharges == 2 and model.volts_calibrated
    assert abs(model.health_pct - sim.true_health_pct) <= 10.0  # type: ignore[operator]
    assert model.confidence > 0.8


def test_serialisable_and_deterministic() -> None:
    sim = partial_case(0.8, 0.55)
    seed = nameplate_seed(sim.params)
    first, second = learn(sim.readings, seed), learn(list(sim.readings), seed)
    assert first == second
    text = json.dumps(first.to_dict(), sort_keys=True)
    again = BatteryModel.from_dict(json.loads(text))
    assert again == first
    assert BatterySeed.from_dict(json.loads(json.dumps(seed.to_dict()))) == seed


def test_no_discharge_no_health() -> None:
    sim = lb_case(0.8, 0.55)
    before = [r for r in sim.readings if r.time < sim.outage_starts[0]]
    model = learn(before, nameplate_seed(sim.params))
    assert model.health_pct is None and model.confidence == 0.0
    assert model.curve == model.rated
    assert learn([]).rated_source == "nut-default"


# ------------------------------------------------------------------ property tests

_FLAGS = st.sampled_from(["OL", "OB", "OB LB", "OL CHRG", "OB LB OFF", "OB DISCHRG", "", "OFF"])
_NUM = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.just(65535),
    st.text(max_size=3),
)


_ODD_TIMES = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, 1.7e12, -10.0])


@st.composite
def _streams(draw: st.DrawFn) -> list[Reading]:
    n = draw(st.integers(0, 60))
    t = 1_700_000_000.0
    out = []
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 10.0, 10.0, 10.0, 35.0, 600.0]))
        at = draw(_ODD_TIMES) if draw(st.integers(0, 19)) == 0 else t
        metrics = {
            "ups.status": draw(_FLAGS),
            "battery.charge": draw(_NUM),
            "battery.runtime": draw(_NUM),
            "battery.voltage": draw(st.one_of(st.none(), st.floats(60, 82))),
            "ups.load": draw(st.one_of(st.none(), st.floats(0, 120), _NUM)),
            "ups.temperature": draw(_NUM),
        }
        out.append(Reading.from_metrics(at, {k: v for k, v in metrics.items() if v is not None}))
    return out


def _r(t: float, status: str, **metrics: float) -> Reading:
    return Reading.from_metrics(t, {"ups.status": status, **{
        {"charge": "battery.charge", "runtime": "battery.runtime", "load": "ups.load",
         "volts": "battery.voltage"}[k]: v for k, v in metrics.items()}})


def _absurd_firmware_stream() -> list[Reading]:
    """The OverflowError in combine(): a firmware runtime of 1e-300 s at full charge (the rated
    curve, no nameplate) makes a discharge to empty 1e302 times the rated runtime; with a
    second one to empty at another load and a shallow voltage discharge at < 1 % ten years
    later, the exponent line was extrapolated to exp(1686)."""
    year = 365 * 86400.0
    out, t = [], 1_600_000_000.0
    for _ in range(20):  # steady on mains at 10 %: the firmware's (absurd) table
        out.append(_r(t, "OL", charge=100, runtime=1e-300, load=10))
        t += 10
    for _ in range(10):  # to empty at 10 %, no charge count: u over the rated curve
        out.append(_r(t, "OB DISCHRG", load=10))
        t += 10
    out.append(_r(t, "OB LB OFF", load=10))
    t += 10 * year  # to empty without a load figure, counted by the charge
    out.append(_r(t, "OL", charge=100))
    for c in (90, 80, 70, 60, 50):
        t += 10
        out.append(_r(t, "OB", charge=c))
    t += 10
    out.append(_r(t, "OB LB OFF", charge=50))
    t += 10 * year  # a shallow voltage discharge at 0.5 %
    out.append(_r(t, "OL", charge=100, volts=81.0, load=0.5))
    for i in range(8):
        t += 10
        out.append(_r(t, "OB", charge=100 - 1.25 * (i + 1), volts=78.0 - 0.09 * i, load=0.5))
    out.append(_r(t + 10, "OL", charge=90, volts=81.0, load=0.5))
    return out


def test_absurd_firmware_runtime_is_no_evidence() -> None:
    """Regression: OverflowError (math range error) in combine() from the stream above."""
    model = learn(_absurd_firmware_stream(), BatterySeed())
    assert model.rated_source == "nut-default"  # 1e-300 s is no runtime table
    assert model.health_pct is not None and 0.0 < model.health_pct <= 100.0
    assert EXPONENT_RANGE[0] <= model.curve.exponent <= EXPONENT_RANGE[1]
    for e in model.evidence:
        assert SCALE_RANGE[0] <= e.runtime_scale <= SCALE_RANGE[1]


def _evidence(end: float, load: float, scale: float, depth: float = 1.0) -> DischargeEvidence:
    method = "empty" if depth == 1.0 else "voltage"
    return DischargeEvidence(
        start=end - 600.0, end=end, end_reason="off" if depth == 1.0 else "mains",
        method=method, started_full=True, low_battery=depth == 1.0,
        reached_empty=depth == 1.0, duration_s=600.0, mean_load_pct=load,
        mean_temperature_c=None, used_rated=scale * depth,
        voltage_slope=None if depth == 1.0 else -0.9 / scale, runtime_scale=scale,
        depth=depth, health_pct=100.0, ups_runtime_at_start_s=None,
        ups_charge_at_end_pct=None, readings=60,
    )


def test_the_exponent_line_is_not_extrapolated_beyond_a_curve() -> None:
    """Two old discharges to empty at 10 % and 50 % of very different scales, and a recent
    shallow one at 1 %: the line's slope against load was unbounded, so its value at the
    weighted centre (near 1 %) gave a health of ~1e39 % and an exponent of ~7 (and with the
    scales of absurd readings, an OverflowError)."""
    ten_years = 10 * 365 * 86400.0
    evidence = [
        _evidence(1e9, 10.0, 1e-2),
        _evidence(1e9 + 1e4, 50.0, 50.0),
        _evidence(1e9 + ten_years, 1.0, 1.0, depth=0.1),
    ]
    rated = RuntimeCurve.through(NUT_DEFAULT_POINTS)
    model = combine(evidence, rated, BatterySeed())
    assert model.exponent_learned
    assert EXPONENT_RANGE[0] <= model.curve.exponent <= EXPONENT_RANGE[1]
    assert model.health_pct is not None and model.health_pct < 100.0 * SCALE_RANGE[1]
    assert math.isfinite(model.curve.runtime_s)
    # deep evidence thousands of half-lives old weighs 0.0: no exponent from it, no crash
    ancient = [_evidence(1e3, 10.0, 0.5), _evidence(2e3, 50.0, 0.8),
               _evidence(9e10, 1.0, 1.0, depth=0.1)]
    assert not combine(ancient, rated, BatterySeed()).exponent_learned


def test_absurd_scales_are_no_evidence() -> None:
    rated = RuntimeCurve.through(NUT_DEFAULT_POINTS)
    model = combine([_evidence(1e9, 50.0, 1e250)], rated, BatterySeed())
    assert model.health_pct is None and model.discharges == 0
    # a voltage slope of -1e-300 V per rated unit: 9e299 times the rated runtime
    model = combine([_evidence(1e9, 50.0, 9e299, depth=0.2)], rated, BatterySeed())
    assert model.health_pct is None


@pytest.mark.parametrize("odd", [math.nan, math.inf, -math.inf, 1e300, 1.7e12, -5.0])
def test_readings_at_absurd_times_are_dropped(odd: float) -> None:
    sim = lb_case(0.8, 0.55)
    seed = nameplate_seed(sim.params)
    during = sim.readings[len(sim.readings) // 2]
    noisy = [*sim.readings, Reading(odd, during.flags, during.charge, during.runtime,
                                    during.voltage, during.load)]
    assert ordered(noisy) == ordered(sim.readings)
    assert segment(noisy) == segment(sim.readings)
    assert learn(noisy, seed) == learn(sim.readings, seed)


@settings(max_examples=200, deadline=None)
@given(_streams(), st.integers(0, 2**32))
@example(_absurd_firmware_stream(), 0)
def test_segmentation_is_robust(stream: list[Reading], shuffle_seed: int) -> None:
    rnd = random.Random(shuffle_seed)
    shuffled = stream + rnd.sample(stream, k=len(stream) // 3)  # redeliveries
    rnd.shuffle(shuffled)
    discharges = segment(shuffled)
    assert discharges == segment(stream)  # arrival order and duplicates do not matter
    last_end = -math.inf
    for d in discharges:
        assert any(r.on_battery for r in d.readings)
        times = [r.time for r in d.readings]
        assert times == sorted(set(times))
        assert d.start >= last_end and d.end >= d.start
        last_end = d.end
    model = learn(shuffled, BatterySeed())
    assert model == learn(stream, BatterySeed())
    if model.health_pct is not None:
        assert math.isfinite(model.health_pct) and 0.0 <= model.confidence <= 1.0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.0, 0.1), st.sampled_from([0.45, 0.8]))
def test_real_streams_with_losses(rng_seed: int, loss: float, health: float) -> None:
    """Lost, duplicated and reordered messages of a real discharge to LB, and a field missing
    from some readings: the same answer in any order, and still within 15 points."""
    rnd = random.Random(rng_seed)
    sim = lb_case(health, 0.55)
    kept = [r for r in sim.readings if rnd.random() >= loss]
    stripped = [
        Reading(r.time, r.flags, r.charge, r.runtime, r.voltage, None, r.realpower, None)
        if rnd.random() < 0.1
        else r
        for r in kept
    ]
    noisy = stripped + rnd.sample(stripped, k=len(stripped) // 5)
    rnd.shuffle(noisy)
    seed = nameplate_seed(sim.params)
    model = learn(noisy, seed)
    assert model == learn(ordered(stripped), seed)
    assert model.health_pct is not None
    assert abs(model.health_pct - sim.true_health_pct) <= 15.0
