"""Online UPS units: battery, charger, inverter, NUT status flags and the UPS's own estimate.

Two states of charge are kept apart on purpose:

* ``soc`` is the truth: the energy left in the battery at its real capacity (nameplate times
  ``battery_health`` times the temperature factor). Output stops when it reaches zero.
* ``reported`` is what the UPS believes and publishes as ``battery.charge``: it counts the
  discharge against the nameplate at 25 °C, as UPS firmware does until a calibration run.

With an aged or cold battery the reported charge and the ``battery.runtime`` estimate
(reported charge times the nameplate runtime at the smoothed load) stay optimistic, so the
UPS can switch off while it still claims minutes left, as in the field. ``LB`` comes at
``charge_low`` or ``runtime_low``, or when the battery voltage collapses near empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kordon.fleet import UpsParams
from simulators.physics.battery import (
    block_voltage_charging,
    block_voltage_discharging,
    peukert_runtime_s,
    temperature_factor,
)

# NUT flag bits, in the order NUT drivers print them.
OL, OB, CHRG, DISCHRG, LB, RB, OVER, OFF = (1 << bit for bit in range(8))
_FLAG_WORDS = ((OL, "OL"), (OB, "OB"), (CHRG, "CHRG"), (DISCHRG, "DISCHRG"), (LB, "LB"),
               (RB, "RB"), (OVER, "OVER"), (OFF, "OFF"))  # fmt: skip
STATUS_TEXT = np.array(
    [" ".join(word for bit, word in _FLAG_WORDS if mask & bit) or "OFF" for mask in range(256)],
    dtype=object,
)

REPLACE_BATTERY_HEALTH = 0.6  # a self-test flags RB below this share of nameplate capacity
LOAD_SMOOTHING_S = 60.0  # firmware averages the load before estimating runtime
TEMPERATURE_LAG_S = 1200.0
VOLTAGE_LB_SOC = 0.03  # the cut-off is near: LB whatever the UPS's coulomb counter says


class UpsBank:
    def __init__(self, params: Sequence[UpsParams], design_load_w: np.ndarray) -> None:
        def col(values: Sequence[float]) -> np.ndarray:
            return np.array(values, dtype=float)

        self.count = len(params)
        self.rated_w = col([p.rated_power_w for p in params])
        self.nameplate_wh = col([p.battery_wh for p in params])
        self.blocks = col([p.blocks for p in params])
        self.peukert = col([p.peukert for p in params])
        self.efficiency = col([p.efficiency for p in params])
        self.idle_w = col([p.inverter_idle_w for p in params])
        self.base_load_w = col([p.base_load_w for p in params])
        self.health = col([p.battery_health for p in params])
        self.charge_low = col([p.charge_low for p in params]) / 100.0
        self.runtime_low = col([p.runtime_low for p in params])
        self.indoor = np.array([p.indoor for p in params], dtype=bool)
        self.firmware_rb = np.array([p.firmware_rb for p in params], dtype=bool)
        # Charger sized so that a full recharge takes recharge_ratio times the runtime at the
        # design load: bulk to 80 % at rate r, then absorption at r/2 (1.2 / r in all).
        design_runtime = peukert_runtime_s(
            self.nameplate_wh, design_load_w / self.efficiency + self.idle_w, self.peukert
        )
        full_recharge_s = col([p.recharge_ratio for p in params]) * design_runtime
        self.bulk_rate = 1.2 / np.maximum(full_recharge_s, 1.0)

        self.soc = np.ones(self.count)
        self.reported = np.ones(self.count)
        self.depleted = np.zeros(self.count, dtype=bool)  # latched until the input returns
        self.just_depleted = np.zeros(self.count, dtype=bool)
        self.output_on = np.ones(self.count, dtype=bool)
        self.input_ok = np.ones(self.count, dtype=bool)
        self.load_w = np.zeros(self.count)
        self.battery_w_smoothed = design_load_w / self.efficiency + self.idle_w
        self.runtime_estimate = np.zeros(self.count)
        self.temperature = np.full(self.count, 25.0)
        self.status = np.zeros(self.count, dtype=np.int64)
        self.battery_voltage = self.blocks * 13.5

    def step(
        self,
        dt: float,
        input_ok: np.ndarray,
        fed_load_w: np.ndarray,
        switched_off: np.ndarray,
        battery_temp_c: np.ndarray,
        room_temp_c: np.ndarray,
    ) -> None:
        self.input_ok = input_ok & ~switched_off
        self.depleted &= ~self.input_ok
        self.output_on = ~switched_off & (self.input_ok | ~self.depleted)
        load = np.where(self.output_on, fed_load_w + self.base_load_w, 0.0)
        self.load_w = load
        battery_w = load / self.efficiency + self.idle_w
        alpha = min(1.0, dt / LOAD_SMOOTHING_S)
        self.battery_w_smoothed += alpha * (battery_w - self.battery_w_smoothed)

        real_wh = self.nameplate_wh * self.health * temperature_factor(battery_temp_c)
        discharging = self.output_on & ~self.input_ok
        real_runtime = peukert_runtime_s(real_wh, battery_w, self.peukert)
        believed_runtime = peukert_runtime_s(self.nameplate_wh, battery_w, self.peukert)
        self.soc = np.where(discharging, self.soc - dt / real_runtime, self.soc)
        self.reported = np.where(discharging, self.reported - dt / believed_runtime, self.reported)

        self.just_depleted = discharging & (self.soc <= 0.0)
        self.depleted |= self.just_depleted
        self.output_on &= ~self.just_depleted
        self.soc = np.maximum(self.soc, 0.0)
        self.reported = np.where(self.depleted, 0.0, np.maximum(self.reported, 0.0))

        charging = self.input_ok & (self.soc < 1.0)
        rate = np.where(self.soc < 0.8, self.bulk_rate, 0.5 * self.bulk_rate) * dt
        # The counter credits charge against the nameplate; a small battery fills sooner.
        believed_share = np.minimum((real_wh / self.nameplate_wh) ** self.peukert, 1.0)
        self.soc = np.where(charging, np.minimum(self.soc + rate, 1.0), self.soc)
        self.reported = np.where(
            charging, np.minimum(self.reported + rate * believed_share, 1.0), self.reported
        )
        self.reported = np.where(self.input_ok & (self.soc >= 1.0), 1.0, self.reported)

        estimate_runtime = peukert_runtime_s(
            self.nameplate_wh, self.battery_w_smoothed, self.peukert
        )
        self.runtime_estimate = np.where(self.output_on, self.reported * estimate_runtime, 0.0)

        c_rate = battery_w / np.maximum(real_wh, 1.0)
        self.battery_voltage = self.blocks * np.where(
            discharging | self.depleted,
            block_voltage_discharging(self.soc, np.where(self.depleted, 0.0, c_rate)),
            block_voltage_charging(self.soc),
        )

        heat = 3.0 + 12.0 * load / self.rated_w + np.where(charging, 2.0, 0.0)
        target = room_temp_c + np.where(self.output_on | self.input_ok, heat, 0.0)
        self.temperature += min(1.0, dt / TEMPERATURE_LAG_S) * (target - self.temperature)

        low = (self.reported <= self.charge_low) | (
            discharging
            & ((self.runtime_estimate <= self.runtime_low) | (self.soc <= VOLTAGE_LB_SOC))
        )
        status = np.where(self.input_ok, OL, np.where(self.output_on | self.depleted, OB, 0))
        status |= np.where(charging, CHRG, 0)
        status |= np.where(discharging & ~self.just_depleted, DISCHRG, 0)
        status |= np.where(low & (self.output_on | self.depleted), LB, 0)
        status |= np.where(self.firmware_rb & (self.health < REPLACE_BATTERY_HEALTH), RB, 0)
        status |= np.where(self.output_on & (load > self.rated_w), OVER, 0)
        status |= np.where(~self.output_on, OFF, 0)
        self.status = status

    def alive(self) -> np.ndarray:
        """The network card runs while the UPS has input or battery; it dies with the battery,
        one reading after the output went off (that last reading shows ``OB LB OFF``)."""
        return self.input_ok | ~self.depleted | self.just_depleted
