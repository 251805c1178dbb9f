"""Device physics against published figures and field behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from kordon.fleet import GeneratorParams, GridParams, RadioParams, ScannerParams, UpsParams
from simulators.physics.radio import RadioBank
from simulators.physics.scanner import OFF, READY, SELF_TEST, WARMUP, WIRE_STATES, ScannerBank
from simulators.physics.site import PowerFeed, Source
from simulators.physics.ups import LB, OB, RB, STATUS_TEXT, UpsBank
from simulators.physics.ups import OFF as UPS_OFF

# Liebert GXT3 runtime at 25 °C (minutes) by load share: the calibration target.
GXT3_TABLE = {0.10: 105, 0.20: 52, 0.50: 21, 1.00: 9}
GXT3 = UpsParams(rated_power_w=2700)


def discharge(
    params: UpsParams, load_w: float, temp_c: float = 25.0, dt: float = 1.0
) -> tuple[float, UpsBank, list[tuple[float, int, float, float]]]:
    """Run one UPS on battery at a constant load until its output goes off."""
    ups = UpsBank([params], design_load_w=np.array([load_w]))
    trace = []
    t = 0.0
    while ups.output_on[0]:
        ups.step(dt, np.array([False]), np.array([load_w]), np.array([False]),
                 np.array([temp_c]), np.array([temp_c]))  # fmt: skip
        trace.append(
            (t, int(ups.status[0]), float(ups.reported[0]), float(ups.runtime_estimate[0]))
        )
        t += dt
        assert t < 24 * 3600, "the UPS never ran flat"
    return t, ups, trace


@pytest.mark.parametrize(("share", "minutes"), sorted(GXT3_TABLE.items()))
def test_runtime_matches_the_published_gxt3_table_within_15_percent(share: float, minutes: int):
    runtime, _, trace = discharge(GXT3, share * GXT3.rated_power_w)
    assert runtime / 60 == pytest.approx(minutes, rel=0.15)
    # a new battery at 25 °C: the UPS's own estimate agrees with the table too (after the
    # firmware's load smoothing has settled)
    settled = trace[300]
    assert (settled[0] + settled[3]) / 60 == pytest.approx(minutes, rel=0.15)


def test_low_battery_comes_at_20_percent_or_180_seconds_before_the_output_goes_off():
    runtime, _, trace = discharge(GXT3, 0.5 * GXT3.rated_power_w)
    first_lb = next(t for t, status, _, _ in trace if status & LB)
    _, _, charge, estimate = trace[int(first_lb)]
    assert charge <= 0.2 + 1e-9 or estimate <= 180.0
    assert all(not status & LB for t, status, c, e in trace if c > 0.21 and e > 190)
    assert runtime - first_lb >= 120, "LB must leave time for a clean shutdown"
    assert trace[-1][1] & UPS_OFF and trace[-1][1] & OB


def test_aged_cold_battery_runs_out_while_the_ups_estimate_stays_optimistic():
    aged = GXT3.model_copy(update={"battery_health": 0.55})
    runtime, ups, trace = discharge(aged, 0.3 * aged.rated_power_w, temp_c=0.0)
    first_estimate = trace[300][3] + 300
    assert runtime < 0.6 * first_estimate
    charge_before_off = trace[-2][2]
    assert charge_before_off > 0.3, "the UPS still believes it has charge when it dies"
    assert ups.status[0] & RB
    assert "RB" in STATUS_TEXT[ups.status[0]]


def test_recharge_takes_about_ten_times_the_discharge_time():
    load = 0.3 * GXT3.rated_power_w
    ups = UpsBank([GXT3], design_load_w=np.array([load]))
    one = np.ones(1)
    discharge_s = 0.0
    while ups.output_on[0]:
        ups.step(10.0, np.array([False]), one * load, np.array([False]), one * 25, one * 25)
        discharge_s += 10.0
    recharge_s = 0.0
    while ups.soc[0] < 1.0:
        ups.step(10.0, np.array([True]), one * load, np.array([False]), one * 25, one * 25)
        recharge_s += 10.0
    assert 8.0 <= recharge_s / discharge_s <= 12.0
    ups.step(10.0, np.array([True]), one * load, np.array([False]), one * 25, one * 25)
    assert STATUS_TEXT[ups.status[0]] == "OL"  # charged: CHRG is gone


def test_scanner_stops_on_power_loss_and_goes_through_self_test_and_warmup_again():
    params = ScannerParams(self_test="2m", warmup="15m", mtbf="100000h", scans_per_hour=0)
    scanners = ScannerBank([params], np.random.default_rng(1))
    outdoor, room = np.array([0.0]), np.array([20.0])
    assert scanners.state[0] == READY
    scanners.step(10.0, np.array([False]), 1.0, outdoor, room)
    assert scanners.state[0] == OFF and scanners.power_draw()[0] == 0.0
    states = []
    for _ in range(((2 + 15) * 6) + 2):
        scanners.step(10.0, np.array([True]), 1.0, outdoor, room)
        states.append(int(scanners.state[0]))
    assert states[0] == SELF_TEST and WIRE_STATES[SELF_TEST] == "standby"
    assert states.index(WARMUP) == 12  # 2 minutes of self-test in 10-s ticks
    assert states.index(READY) == 12 + 90  # then 15 minutes of warm-up
    assert scanners.xray_ready()[0]


def test_scanner_controller_shuts_down_cleanly_when_its_holdup_battery_is_spent():
    scanners = ScannerBank([ScannerParams(holdup="60s")], np.random.default_rng(1))
    off = np.array([False])
    shutdowns = []
    for _ in range(10):
        scanners.step(10.0, off, 1.0, np.zeros(1), np.full(1, 20.0))
        shutdowns.append(bool(scanners.clean_shutdown[0]))
    assert shutdowns.index(True) == 5 and shutdowns.count(True) == 1
    assert not scanners.controller_on[0]


def test_radio_on_battery_halves_tx_power_and_disconnects_at_low_voltage():
    radio = RadioBank([RadioParams(battery_ah=7)], np.random.default_rng(1))
    room = np.array([20.0])
    radio.step(10.0, np.array([True]), 0.4, 1.0, room)
    on_mains = float(radio.tx_w[0])
    assert radio.supply_v[0] == pytest.approx(13.6)
    radio.step(10.0, np.array([False]), 0.4, 1.0, room)
    assert 10 * np.log10(on_mains / radio.tx_w[0]) == pytest.approx(2.6, abs=0.5)
    assert 12.0 < radio.supply_v[0] < 13.0
    hours = 0.0
    while radio.alive()[0]:
        radio.step(60.0, np.array([False]), 0.4, 1.0, room)
        hours += 1 / 60
        assert hours < 24
    assert 1.0 < hours < 6.0  # 7 Ah at about 2-3 A
    assert radio.tx_w[0] == 0.0
    radio.step(60.0, np.array([True]), 0.4, 1.0, room)
    assert radio.alive()[0], "the rectifier reconnects the load when AC returns"


def test_generator_takes_the_bus_after_its_start_delay_and_stops_without_fuel():
    rng = np.random.default_rng(1)
    feed = PowerFeed(GridParams(), GeneratorParams(start_delay="10s", fuel="1h",
                                                   start_failure_probability=0), rng)  # fmt: skip
    feed.set_grid(False)
    feed.step(5.0)
    assert feed.source is Source.NONE
    feed.step(5.0)
    assert feed.source is Source.GENERATOR
    for _ in range(360):
        feed.step(10.0)
    assert feed.source is Source.NONE and feed.fuel_left == 0.0
    feed.set_grid(True)
    feed.step(10.0)
    assert feed.source is Source.GRID


def test_generator_that_fails_to_start_leaves_the_bus_dead():
    feed = PowerFeed(GridParams(), GeneratorParams(), np.random.default_rng(1))
    feed.fail_next_start = True
    feed.set_grid(False)
    for _ in range(10):
        feed.step(10.0)
    assert not feed.powered
