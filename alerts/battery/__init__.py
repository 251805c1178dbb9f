"""Battery health learned from a UPS's own discharges (issue 14, part A).

``learn(readings, seed)`` → :class:`BatteryModel` (health, runtime curve, confidence, the
discharges behind them). Pure and clock-free: the caller owns time and storage. The math is in
:mod:`alerts.battery.learn`; NUT's runtime curve and the nameplate seed in
:mod:`alerts.battery.curve`; the cut into discharges in :mod:`alerts.battery.segment`.
"""

from alerts.battery.curve import NUT_EXPONENT, BatterySeed, RuntimeCurve
from alerts.battery.learn import (
    MODEL_VERSION,
    BatteryModel,
    DischargeEvidence,
    analyse,
    combine,
    learn,
    rated_curve,
    used_rated,
)
from alerts.battery.readings import Reading
from alerts.battery.segment import Discharge, ordered, segment

__all__ = [
    "MODEL_VERSION",
    "NUT_EXPONENT",
    "BatteryModel",
    "BatterySeed",
    "Discharge",
    "DischargeEvidence",
    "Reading",
    "RuntimeCurve",
    "analyse",
    "combine",
    "learn",
    "ordered",
    "rated_curve",
    "segment",
    "used_rated",
]
