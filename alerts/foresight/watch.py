"""What the forecast needs to know of one UPS, learned from its own telemetry on event time.

* the battery model (:func:`alerts.battery.learn` over its own discharges, relearned when one
  ends) — the runtime curve at any load, health included;
* the battery's true state of charge, carried on that model: full on float, drained by
  ``dt / R(load)`` on battery, zero when the output went off, refilled by the charger;
* the charger's rate, learned from each completed recharge (time from mains back to float,
  from the charge the discharge left); until one is seen, the fleet's ``recharge_ratio``
  (a full recharge takes that many times the runtime at the usual load);
* the expected load: the mean per hour of the day (the scanners' traffic has a daily shape),
  the last hour's mean where an hour has not been seen.

Readings are kept bounded: all of a discharge and the half hour around it, one per five minutes
on mains (the battery model needs the firmware's estimate at full charge and the voltage line of
each discharge, not every float reading).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.battery import BatteryModel, BatterySeed, Reading, learn
from alerts.foresight.forecast import Recharge

MAX_READINGS = 6000
MAINS_EVERY_S = 300.0
AROUND_S = 1800.0
DEFAULT_RECHARGE_RATIO = 10.0
RELEARN_S = 1800.0


class UpsWatch:
    __slots__ = (
        "_charge_from",
        "_discharge",
        "_hour_load",
        "_last_battery",
        "_last_kept",
        "_learned_at",
        "_load",
        "_readings",
        "_soc0",
        "device",
        "external",
        "last_time",
        "model",
        "on_battery",
        "rates",
        "recharge_ratio",
        "seed",
        "site",
        "soc",
        "zone",
    )

    def __init__(self, site: str, device: str, seed: BatterySeed, recharge_ratio: float | None,
                 zone: ZoneInfo,
                 external: Callable[[], BatteryModel | None] | None = None) -> None:
        self.site = site
        self.device = device
        self.seed = seed
        self.recharge_ratio = recharge_ratio or DEFAULT_RECHARGE_RATIO
        self.zone = zone
        self.external = external  # the engine's learned, stored model of this UPS
        self.model: BatteryModel | None = None
        self._learned_at = -math.inf
        self.soc: float | None = None
        self.last_time: float | None = None
        self.on_battery = False
        self.rates: list[float] = []
        self._readings: deque[Reading] = deque(maxlen=MAX_READINGS)
        self._last_kept = -math.inf
        self._last_battery = -math.inf
        self._discharge: list[tuple[float, float]] = []  # (dt, load) of the current discharge
        self._soc0: float | None = None  # true charge when the current discharge began
        # (time, soc, seen the discharge) at mains return
        self._charge_from: tuple[float, float, bool] | None = None
        self._load: float | None = None  # EWMA over about an hour
        self._hour_load: list[float | None] = [None] * 24

    # ---------------------------------------------------------------- model
    def runtime_s(self, load_pct: float) -> float:
        return self.current_model().runtime_s(load_pct)

    def current_model(self) -> BatteryModel:
        """The learned model: the engine's own (learned from every discharge and kept in the
        battery store) once it has evidence; until then this UPS's readings here, the rated
        curve read from the firmware's estimates on mains, relearned every half hour."""
        if self.external is not None:
            shared = self.external()
            if shared is not None and shared.health_pct is not None:
                return shared
        now = self.last_time if self.last_time is not None else 0.0
        stale = self.model is None or (
            self.model.discharges == 0 and now - self._learned_at >= RELEARN_S
        )
        if stale:
            self._learn()
        assert self.model is not None
        return self.model

    def _learn(self) -> None:
        self.model = learn(list(self._readings), self.seed)
        self._learned_at = self.last_time if self.last_time is not None else 0.0

    def recharge(self) -> Recharge:
        if self.rates:
            return Recharge(sorted(self.rates)[len(self.rates) // 2])
        load = self._load if self._load is not None else 50.0
        rated = self.model.rated.at(load) if self.model is not None else 3600.0
        return Recharge(1.2 / (self.recharge_ratio * max(float(rated), 60.0)))

    def load_at(self, when: float) -> float:
        hour = datetime.fromtimestamp(when, self.zone).hour
        value = self._hour_load[hour]
        if value is None:
            value = self._load
        return 50.0 if value is None else value

    @property
    def load_now(self) -> float | None:
        return self._load

    # ---------------------------------------------------------------- input
    def observe(self, reading: Reading) -> None:
        t = reading.time
        if self.last_time is not None and t <= self.last_time:
            return  # a redelivered or reordered reading: the state moved on already
        dt = 0.0 if self.last_time is None else t - self.last_time
        self._keep(reading)
        if reading.load is not None:
            alpha = 1.0 if self._load is None else min(1.0, dt / 3600.0)
            self._load = reading.load if self._load is None else (
                self._load + alpha * (reading.load - self._load))
            hour = datetime.fromtimestamp(t, self.zone).hour
            old = self._hour_load[hour]
            self._hour_load[hour] = reading.load if old is None else (
                old + min(1.0, dt / 1200.0) * (reading.load - old))
        was_on_battery = self.on_battery
        if self.soc is None and reading.charge is not None:
            self.soc = min(1.0, reading.charge / 100.0)
        if reading.output_off:
            self.soc = 0.0
        elif reading.on_battery:
            load = reading.load if reading.load is not None else self.load_at(t)
            if not was_on_battery:
                self._soc0 = self.soc
            elif dt > 0 and self.soc is not None:
                self.soc = max(0.0, self.soc - dt / max(self.runtime_s(load), 1.0))
                self._discharge.append((dt, load))
            self._charge_from = None
        elif reading.on_line and self.soc is not None:
            full = "CHRG" not in reading.flags and (reading.charge or 0.0) >= 99.5
            if was_on_battery or (self._charge_from is None and not full and dt > 0):
                self._end_discharge()
                self._charge_from = (t, self.soc, was_on_battery)
            elif full:
                if self._charge_from is not None:
                    rate = Recharge.rate_from(self._charge_from[1], t - self._charge_from[0])
                    if rate is not None and self._charge_from[1] <= 0.9 and self._charge_from[2]:
                        self.rates = [*self.rates[-4:], rate]
                    self._charge_from = None
                self.soc = 1.0
            elif dt > 0:
                self.soc = self.recharge().after(self.soc, dt)
        self.on_battery = reading.on_battery and not reading.output_off
        if reading.output_off and was_on_battery:
            self._end_discharge(dark=True)
        self.last_time = t

    def _keep(self, reading: Reading) -> None:
        busy = reading.on_battery or reading.time - self._last_battery < AROUND_S
        if reading.on_battery:
            self._last_battery = reading.time
        if busy or reading.time - self._last_kept >= MAINS_EVERY_S or "CHRG" in reading.flags:
            self._readings.append(reading)
            self._last_kept = reading.time

    def _end_discharge(self, dark: bool = False) -> None:
        """A discharge ended: learn from it, and put the charge it left on the new model."""
        if not self._discharge:
            return
        self._learn()
        assert self.model is not None
        if not dark and self._soc0 is not None:
            used = sum(dt / max(self.model.runtime_s(load), 1.0) for dt, load in self._discharge)
            self.soc = max(0.0, self._soc0 - used)
        self._discharge = []
