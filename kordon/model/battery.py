"""What the alerts role learns of a UPS battery and the API shows: shared vocabulary.

The learning itself lives in ``alerts/battery`` (the alerts role); it persists each UPS's
model as JSON (:mod:`kordon.storage.battery_store`) and writes its health over time to the
telemetry store as measurement :data:`BATTERY_MEASUREMENT`. The API reads both and never
imports the learner, so the one formula both sides need, the learned time to empty, is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BATTERY_MEASUREMENT = "battery_health"  # tags site, device; fields below
BATTERY_FIELDS = ("health_pct", "runtime_at_load_s", "confidence", "discharges")
MIN_LOAD = 1.0  # % — as the learner's curve: the power law explodes below


def curve_at(curve: Mapping[str, Any], load_pct: float) -> float:
    """A stored runtime curve (``runtime_s``, ``exponent``, ``reference_load``) at a load."""
    load = max(float(load_pct), MIN_LOAD)
    return float(curve["runtime_s"]) * (float(curve["reference_load"]) / load) ** float(
        curve["exponent"]
    )


def learned_time_to_empty(
    model: Mapping[str, Any], load_pct: float, used_rated: float, soc0: float = 1.0
) -> float | None:
    """Seconds left at ``load_pct`` % after drawing ``used_rated`` (share of a *new* battery's
    capacity, Peukert included) from a start at ``soc0``; None without learned evidence."""
    if model.get("health_pct") is None:
        return None
    learned = curve_at(model["curve"], load_pct)
    scale = learned / curve_at(model["rated"], load_pct)
    if scale <= 0:
        return None
    return max(0.0, soc0 - used_rated / scale) * learned


def used_from_charge(charge_pct: float | None, start_pct: float = 100.0) -> float:
    """The UPS's own charge count falls against its nameplate: the rated share drawn so far
    (what the API can tell without the readings of the whole discharge)."""
    if charge_pct is None:
        return 0.0
    return max(0.0, (start_pct - float(charge_pct)) / 100.0)
