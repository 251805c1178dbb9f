"""NUT's runtime model and the seed a UPS's battery model starts from.

NUT drivers that estimate runtime (``runtimecal`` of blazer/nutdrv_qx) use a power law in load
through two calibration points: ``runtime = rh * (lh / load) ** exp`` with
``exp = ln(rl / rh) / ln(lh / ll)``; the manual's example (240 s at 100 %, 720 s at 50 %) gives
``exp = ln 3 / ln 2 = 1.585``. Kordon keeps that shape: a new battery's curve comes from the
nameplate (or, failing that, from what the UPS's own firmware believes at full charge, which is
exactly its nameplate table), and learning scales it, and with enough evidence re-fits the
exponent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NUT_DEFAULT_POINTS: tuple[tuple[float, float], ...] = ((100.0, 240.0), (50.0, 720.0))
NUT_EXPONENT = math.log(3.0) / math.log(2.0)  # 1.585, from the two points above
REFERENCE_LOAD = 50.0  # % of rated; where a curve's scale is quoted
MIN_LOAD = 1.0  # % — below this the power law explodes; a UPS never idles that low
EXPONENT_RANGE = (0.6, 2.5)


@dataclass(frozen=True, slots=True)
class RuntimeCurve:
    """Runtime from full, at 25 °C, as a function of load: ``runtime_s * (ref / load) ** exp``."""

    runtime_s: float  # at ``reference_load``
    exponent: float = NUT_EXPONENT
    reference_load: float = REFERENCE_LOAD

    def at(self, load_pct: float | np.ndarray) -> Any:
        load = np.maximum(np.asarray(load_pct, dtype=float), MIN_LOAD)
        result = self.runtime_s * (self.reference_load / load) ** self.exponent
        return float(result) if np.ndim(result) == 0 else result

    def scaled(self, factor: float, exponent: float | None = None) -> RuntimeCurve:
        return RuntimeCurve(
            self.runtime_s * factor,
            self.exponent if exponent is None else exponent,
            self.reference_load,
        )

    @classmethod
    def through(
        cls, points: Sequence[tuple[float, float]], exponent: float = NUT_EXPONENT
    ) -> RuntimeCurve:
        """The curve through calibration points ``(load %, runtime s)``: least squares in
        log-log when the loads span enough (two points: NUT's formula exactly), otherwise the
        given exponent through their geometric mean."""
        pts = sorted((float(load), float(rt)) for load, rt in points if load > 0 and rt > 0)
        if not pts:
            raise ValueError("a runtime curve needs at least one (load, runtime) point")
        logs_l = np.log([max(p[0], MIN_LOAD) for p in pts])
        logs_r = np.log([p[1] for p in pts])
        if logs_l.max() - logs_l.min() >= math.log(1.3):
            slope = float(np.polyfit(logs_l, logs_r, 1)[0])
            exponent = float(np.clip(-slope, *EXPONENT_RANGE))
        ref = math.log(REFERENCE_LOAD)
        log_rt = float(np.mean(logs_r + exponent * (logs_l - ref)))
        return cls(math.exp(log_rt), exponent, REFERENCE_LOAD)

    def to_dict(self) -> dict[str, float]:
        return {
            "runtime_s": self.runtime_s,
            "exponent": self.exponent,
            "reference_load": self.reference_load,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeCurve:
        return cls(
            float(data["runtime_s"]),
            float(data.get("exponent", NUT_EXPONENT)),
            float(data.get("reference_load", REFERENCE_LOAD)),
        )


@dataclass(frozen=True, slots=True)
class BatterySeed:
    """What is known of a UPS's battery before any discharge (the fleet file's nameplate).

    ``rated_runtime``: one or two ``(load %, seconds)`` points of the datasheet's runtime
    table for a new battery at 25 °C. ``peukert``: how runtime scales with capacity
    (runtime ∝ capacity ** peukert at a fixed load; VRLA 1.1-1.2), which turns the learned
    runtime scale into capacity. ``blocks``: 12 V blocks in series (else inferred from the
    float voltage). ``volts_per_block``: open-circuit voltage span of a 12 V VRLA block from
    full to empty, the prior that turns a partial discharge's voltage slope into capacity
    until a discharge to empty calibrates it for this unit.
    """

    rated_runtime: tuple[tuple[float, float], ...] = ()
    peukert: float = 1.15
    blocks: int | None = None
    volts_per_block: float = 0.9

    def to_dict(self) -> dict[str, Any]:
        return {
            "rated_runtime": [list(p) for p in self.rated_runtime],
            "peukert": self.peukert,
            "blocks": self.blocks,
            "volts_per_block": self.volts_per_block,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatterySeed:
        return cls(
            rated_runtime=tuple((float(a), float(b)) for a, b in data.get("rated_runtime", ())),
            peukert=float(data.get("peukert", 1.15)),
            blocks=None if data.get("blocks") is None else int(data["blocks"]),
            volts_per_block=float(data.get("volts_per_block", 0.9)),
        )
