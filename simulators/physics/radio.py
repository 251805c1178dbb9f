"""Radio base stations with their DC plant: rectifier, battery, low-voltage disconnect.

On AC the rectifier holds the float voltage (13.6 V per 12 V block) and recharges the battery.
On battery the station cuts its transmit power by 3 dB to stretch the runtime; the drain is
about 1 A standby and 11 A transmitting at 13.6 V (the same power at 48 V), with the transmit
duty cycle following the time of day. At the low-voltage disconnect the plant drops the load
and the station goes silent without a goodbye: the broker notices at keep-alive expiry.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kordon.fleet import RadioParams
from simulators.physics.battery import block_voltage_discharging, peukert_runtime_s

FLOAT_VOLTS_PER_BLOCK = 13.6
TX_SHARE_ON_BATTERY = 0.55  # -3 dB RF; the PA's fixed bias keeps the current above half
PA_LAG_S = 600.0
RECTIFIER_EFFICIENCY = 0.9


class RadioBank:
    def __init__(self, params: Sequence[RadioParams], rng: np.random.Generator) -> None:
        self.rng = rng
        self.count = n = len(params)
        self.blocks = np.array([p.blocks for p in params], dtype=float)
        self.plant_v = np.array([p.plant_voltage for p in params], dtype=float)
        self.capacity_ah = np.array([p.battery_ah * p.battery_health for p in params])
        self.peukert = np.array([p.peukert for p in params], dtype=float)
        self.standby_a = np.array([p.standby_current for p in params], dtype=float)
        self.tx_a = np.array([p.tx_current for p in params], dtype=float)
        self.tx_rated_w = np.array([p.tx_power_w for p in params], dtype=float)
        self.terminals_peak = np.array([p.terminals for p in params], dtype=float)
        self.charge_rate = 1.0 / (np.array([p.recharge_hours for p in params]) * 3600.0)

        self.soc = np.ones(n)
        self.ac_ok = np.ones(n, dtype=bool)
        self.disconnected = np.zeros(n, dtype=bool)
        self.backhaul_up = np.ones(n, dtype=bool)
        self.vswr = 1.2 + 0.15 * rng.random(n)
        self.current_a = self.standby_a.copy()
        self.supply_v = self.blocks * FLOAT_VOLTS_PER_BLOCK
        self.tx_w = np.zeros(n)
        self.pa_temp = np.full(n, 30.0)
        self.terminals = np.zeros(n)
        self.switched_off = np.zeros(n, dtype=bool)

    def ac_draw_w(self) -> np.ndarray:
        """What the rectifier takes from its AC feed: the load plus the recharge."""
        charging = np.where(self.soc < 1.0, 0.1 * self.capacity_ah * self.plant_v, 0.0)
        load = self.current_a * self.plant_v
        return np.where(
            self.ac_ok & ~self.switched_off, (load + charging) / RECTIFIER_EFFICIENCY, 0.0
        )

    def step(
        self,
        dt: float,
        ac_ok: np.ndarray,
        duty: float,
        traffic: float,
        room_c: np.ndarray,
    ) -> None:
        self.ac_ok = ac_ok
        running = ~self.disconnected & ~self.switched_off
        tx_share = np.where(ac_ok, 1.0, TX_SHARE_ON_BATTERY)
        current = self.standby_a + duty * tx_share * (self.tx_a - self.standby_a)
        self.current_a = np.where(running, current, 0.0)

        on_battery = running & ~ac_ok
        runtime = peukert_runtime_s(self.capacity_ah, self.current_a, self.peukert)
        self.soc = np.where(on_battery, self.soc - dt / runtime, self.soc)
        cut = on_battery & (self.soc <= 0.0)
        self.disconnected |= cut
        self.soc = np.maximum(self.soc, 0.0)
        # AC back: the rectifier reconnects the load and recharges, bulk then taper
        self.disconnected &= ~ac_ok
        rate = np.where(self.soc < 0.8, 1.2, 0.6) * self.charge_rate * dt
        self.soc = np.where(ac_ok, np.minimum(self.soc + rate, 1.0), self.soc)

        c_rate = self.current_a / np.maximum(self.capacity_ah, 1.0)
        self.supply_v = np.where(
            ac_ok,
            self.blocks * FLOAT_VOLTS_PER_BLOCK,
            self.blocks * block_voltage_discharging(self.soc, c_rate),
        )
        running = ~self.disconnected & ~self.switched_off
        self.tx_w = np.where(running, self.tx_rated_w * duty * tx_share, 0.0)
        target = room_c + 6.0 + 25.0 * duty * tx_share
        self.pa_temp += min(1.0, dt / PA_LAG_S) * (np.where(running, target, room_c) - self.pa_temp)
        coverage = np.where(ac_ok, 1.0, 0.85) * np.where(self.backhaul_up, 1.0, 0.5)
        self.terminals = np.where(running, self.terminals_peak * traffic * coverage, 0.0)

    def alive(self) -> np.ndarray:
        return ~self.disconnected & ~self.switched_off
