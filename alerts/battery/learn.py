"""Learn a UPS's battery from its own discharges: state of health, runtime curve, confidence.

The math (one UPS; ``R(L)`` its rated runtime curve from full at load ``L`` %, see ``curve``):

* Rated units used. Over a discharge, ``u(t) = Σ dt / R(L)``: the share of a *new* battery's
  capacity the load has drawn so far, Peukert included (the curve is the nameplate's). A battery
  whose runtime is ``s`` times the rated one at every load runs flat at ``u = s``; its true state
  of charge is ``soc = soc0 - u / s``.
* Discharge to empty from full (output off on battery, or the card went dark, with the voltage
  knee showing): ``s = u_end``. Direct, exact up to a reading interval.
* Any discharge, partial included: the battery voltage per 12 V block is, away from the knee,
  linear in the state of charge: ``v = a + b * soc - c * load``, so ``dv/du = -b / s`` and
  ``s = b / (-slope)``. ``b`` (open-circuit span of a block, ~0.9 V for VRLA) is the seed's
  prior until a discharge to empty gives this unit's own: ``b = -slope * u_end``.
* Health. Runtime scales as capacity to the Peukert exponent ``k`` at a fixed load, so
  capacity = ``s ** (1 / k)``: health % = 100 * that, against the rated (25 °C) capacity.
* Several discharges: a weighted mean of ``log s`` (weight = depth, doubled for a discharge to
  empty, halved every ``half_life`` of age). With two or more deep discharges at loads at least
  1.5 x apart, the slope of ``log s`` against ``log L`` re-fits the curve's exponent.
* Confidence: ``1 - exp(-Σ q)``, ``q`` = depth (x 1.5 to empty): one discharge to empty gives
  0.78, two of 30 % give 0.45.

What the UPS says of itself (``battery.charge``, ``battery.runtime``) is never the measure of
health: its firmware counts against the nameplate and stays optimistic as the battery wears.
It is used only as the nameplate when the fleet file gives none (at full charge on mains, the
firmware's runtime estimate is its nameplate table), and as the energy count when a unit
reports no load. Temperature is recorded per discharge, not corrected for: ``ups.temperature``
is the electronics', not the battery's, so a cold room shows as lower health, which is the
runtime the site will get.

Pure NumPy, no clock: the same readings and seed give the same figures, byte for byte.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from alerts.battery.curve import (
    EXPONENT_RANGE,
    NUT_DEFAULT_POINTS,
    REFERENCE_LOAD,
    BatterySeed,
    RuntimeCurve,
)
from alerts.battery.readings import Reading
from alerts.battery.segment import DEFAULT_MAX_GAP_S, Discharge, ordered, segment

MODEL_VERSION = 1
FLOAT_VOLTS_PER_BLOCK = 13.5  # a charged VRLA block on float
KNEE_DIP_V = 0.08  # per block below the line at the end: the battery reached its knee
FIT_UP_TO = 0.85  # of the capacity, for the voltage line of a discharge to empty (knee beyond)
MIN_FIT_POINTS = 5
MIN_FIT_SPAN = 0.03  # rated units the fitted readings must span
MIN_DEPTH = 0.05  # shallower discharges (generator start bridges) carry no usable evidence
LOAD_REGRESSOR_STD = 2.0  # % of rated: below this the load is constant, no sag term
EXPONENT_MIN_DEPTH = 0.25
EXPONENT_LOAD_RATIO = 1.5
HALF_LIFE_S = 180 * 86400.0
# A firmware runtime (s, from full) outside this is no nameplate table but garbage: 1e-30 s
# would make every second on battery a thousand lifetimes of the battery.
FIRMWARE_RUNTIME_RANGE_S = (1.0, 1e7)
# Runtime vs rated (``s``) outside this is not a battery but a wrong curve or garbage (health
# 0.03 % .. 5,400 %); such a discharge is no evidence. Also keeps every log and exp finite.
SCALE_RANGE = (1e-4, 1e2)

log = logging.getLogger("alerts.battery")


@dataclass(frozen=True, slots=True)
class DischargeEvidence:
    """What one discharge showed. ``runtime_scale`` is its ``s`` (runtime vs rated)."""

    start: float
    end: float
    end_reason: str  # mains | off | dark | open
    method: str  # empty | voltage
    started_full: bool
    low_battery: bool
    reached_empty: bool
    duration_s: float
    mean_load_pct: float | None
    mean_temperature_c: float | None
    used_rated: float  # u at the end: share of a new battery's capacity drawn
    voltage_slope: float | None  # V per block per rated unit
    runtime_scale: float
    depth: float  # share of this battery's capacity drawn
    health_pct: float
    ups_runtime_at_start_s: float | None  # what the UPS promised at the start
    ups_charge_at_end_pct: float | None
    readings: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DischargeEvidence:
        return cls(**{f: data[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class BatteryModel:
    """A UPS's learned battery. ``health_pct`` is None until a discharge gave evidence; the
    curve is then the rated one."""

    health_pct: float | None
    curve: RuntimeCurve  # learned runtime from full vs load (25 °C rated curve x scale)
    rated: RuntimeCurve
    rated_source: str  # nameplate | ups-count | nut-default
    peukert: float
    volts_per_block: float
    volts_calibrated: bool
    exponent_learned: bool
    confidence: float
    discharges: int  # used as evidence
    discharges_to_empty: int
    evidence: tuple[DischargeEvidence, ...] = field(default=())
    learned_at: float | None = None  # stream time of the latest evidence
    model_version: int = MODEL_VERSION

    def runtime_s(self, load_pct: float) -> float:
        """Learned runtime from full at ``load_pct`` % of rated."""
        return float(self.curve.at(load_pct))

    def time_to_empty_s(self, load_pct: float, used_rated: float, soc0: float = 1.0) -> float:
        """Time left at ``load_pct`` after drawing ``used_rated`` (rated units, see
        :func:`used_rated`) from a start at ``soc0``: what depletion pages should use."""
        scale = self.curve.at(load_pct) / self.rated.at(load_pct)
        left = soc0 - used_rated / scale
        return max(0.0, left) * float(self.curve.at(load_pct))

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["curve"] = self.curve.to_dict()
        data["rated"] = self.rated.to_dict()
        data["evidence"] = [e.to_dict() for e in self.evidence]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatteryModel:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["curve"] = RuntimeCurve.from_dict(data["curve"])
        values["rated"] = RuntimeCurve.from_dict(data["rated"])
        values["evidence"] = tuple(DischargeEvidence.from_dict(e) for e in data["evidence"])
        return cls(**values)


# ------------------------------------------------------------------ the rated curve


def rated_curve(
    seed: BatterySeed, readings: Sequence[Reading], discharges: Sequence[Discharge] = ()
) -> tuple[RuntimeCurve, str]:
    """The new battery's curve and where it came from.

    ``nameplate``: the fleet file's two points. ``ups-count``: the UPS firmware's own table,
    read from what it reports (its runtime estimate at full charge on steady mains, and how fast
    its charge count falls on battery at each load), with the nameplate's single point if there
    is one. ``nut-default``: NUT's manual example, when nothing is known.
    """
    if len(seed.rated_runtime) >= 2:
        return RuntimeCurve.through(seed.rated_runtime), "nameplate"
    points = list(seed.rated_runtime) + firmware_points(readings, discharges)
    if points:
        return RuntimeCurve.through(points), "ups-count"
    return RuntimeCurve.through(NUT_DEFAULT_POINTS), "nut-default"


def firmware_points(
    readings: Sequence[Reading],
    discharges: Sequence[Discharge] = (),
    bin_pct: float = 5.0,
    steady_s: float = 120.0,
) -> list[tuple[float, float]]:
    """The firmware's nameplate table, one ``(load %, runtime s)`` point per load bin.

    On mains at full charge, ``battery.runtime`` is the firmware's runtime from full at the
    load; firmware smooths the load first, so only readings after ``steady_s`` of steady load
    count. On battery, the charge count falls by ``dt / runtime(load)`` against the nameplate:
    summed per load bin, ``Σ dt / Σ Δcharge`` is that runtime, whatever the 0.1 % steps.
    """
    load_sum: dict[int, float] = {}
    weight: dict[int, float] = {}
    runtime_log: dict[int, float] = {}
    steady_since: float | None = None
    steady_load: float | None = None
    for r in readings:
        if r.load is None or not r.on_line:
            steady_since = steady_load = None
            continue
        if steady_load is None or abs(r.load - steady_load) > 2.0:
            steady_since, steady_load = r.time, r.load
            continue
        if (
            steady_since is not None
            and r.time - steady_since >= steady_s
            and "CHRG" not in r.flags
            and r.charge is not None
            and r.charge >= 99.5
            and r.runtime is not None
            and FIRMWARE_RUNTIME_RANGE_S[0] <= r.runtime <= FIRMWARE_RUNTIME_RANGE_S[1]
            and r.load >= 5.0
        ):
            b = round(r.load / bin_pct)
            load_sum[b] = load_sum.get(b, 0.0) + r.load
            runtime_log[b] = runtime_log.get(b, 0.0) + math.log(r.runtime)
            weight[b] = weight.get(b, 0.0) + 1.0
    points = [
        (load_sum[b] / weight[b], math.exp(runtime_log[b] / weight[b])) for b in sorted(weight)
    ]
    seconds: dict[int, float] = {}
    drop: dict[int, float] = {}
    loads: dict[int, float] = {}
    for d in discharges:
        prev = d.before
        for r in d.readings:
            if (
                prev is not None
                and prev.charge is not None
                and r.charge is not None
                and r.load is not None
                and r.on_battery
                and not r.output_off
                and r.load >= 5.0
            ):
                b = round(r.load / bin_pct)
                dt = r.time - prev.time
                seconds[b] = seconds.get(b, 0.0) + dt
                drop[b] = drop.get(b, 0.0) + (prev.charge - r.charge) / 100.0
                loads[b] = loads.get(b, 0.0) + r.load * dt
            prev = r
    for b in sorted(seconds):
        if drop[b] >= 0.05 and seconds[b] > 0:  # 5 % of charge: quantisation below 2 %
            runtime = seconds[b] / drop[b]
            if FIRMWARE_RUNTIME_RANGE_S[0] <= runtime <= FIRMWARE_RUNTIME_RANGE_S[1]:
                points.append((loads[b] / seconds[b], runtime))
    return points


def infer_blocks(seed: BatterySeed, readings: Sequence[Reading]) -> float | None:
    if seed.blocks:
        return float(seed.blocks)
    floating = [r.voltage for r in readings if r.on_line and "CHRG" not in r.flags and r.voltage]
    if floating:
        return float(max(1, round(float(np.median(floating)) / FLOAT_VOLTS_PER_BLOCK)))
    on_battery = [r.voltage for r in readings if r.on_battery and r.voltage]
    if on_battery:
        return float(max(1, round(on_battery[0] / 12.3)))
    return None


# ------------------------------------------------------------------ one discharge


@dataclass(frozen=True, slots=True)
class _Fit:
    slope: float
    residual_end: float  # residual of the last reading on battery before the output stopped
    points: int


def _ffill(values: list[float | None]) -> np.ndarray | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    out = np.empty(len(values))
    current = known[0]
    for i, v in enumerate(values):
        if v is not None:
            current = v
        out[i] = current
    return out


def used_rated(discharge: Discharge, rated: RuntimeCurve, count: str = "load") -> np.ndarray | None:
    """u after each reading of the discharge (see the module docstring).

    ``count="load"``: the load integrated over the rated curve (a nameplate is known).
    ``count="charge"``: the UPS's own charge count, which falls against its nameplate table
    (no nameplate in the fleet file; consistent with the curve :func:`firmware_points` reads).
    Either falls back on the other when its numbers are missing.
    """
    rs = discharge.readings
    times = np.array([discharge.start] + [r.time for r in rs])
    dt = np.diff(times)
    loads = _ffill([r.load for r in rs])
    charges = _ffill([r.charge for r in rs])
    if loads is not None and (count == "load" or charges is None):
        return np.cumsum(dt / rated.at(loads))
    if charges is None:
        return None
    before = discharge.before
    c0 = before.charge if before is not None and before.charge is not None else charges[0]
    u = np.maximum((c0 - charges) / 100.0, 0.0)
    # Firmware zeroes its count when the output stops: carry the last step on at the load.
    off = np.array([r.output_off for r in rs])
    for i in np.flatnonzero(off):
        step = dt[i] / rated.at(loads[i]) if loads is not None else 0.0
        u[i] = (u[i - 1] if i > 0 else 0.0) + step
    return u


def _line(u: np.ndarray, v: np.ndarray, load: np.ndarray) -> tuple[np.ndarray, bool]:
    columns = [np.ones_like(u), u]
    with_load = bool(np.std(load) > LOAD_REGRESSOR_STD)
    if with_load:
        columns.append(load - load.mean())
    coef = np.linalg.lstsq(np.column_stack(columns), v, rcond=None)[0]
    return coef, with_load


def _predict(
    coef: np.ndarray, with_load: bool, u: np.ndarray, load: np.ndarray, mean: float
) -> np.ndarray:
    out = coef[0] + coef[1] * u
    if with_load:
        out = out + coef[2] * (load - mean)
    return out


def _voltage_fit(
    discharge: Discharge, u: np.ndarray, blocks: float | None, up_to: float | None
) -> _Fit | None:
    if blocks is None:
        return None
    rs = discharge.readings
    volts = np.array([np.nan if r.voltage is None else r.voltage / blocks for r in rs])
    loads = _ffill([r.load for r in rs])
    load = loads if loads is not None else np.zeros(len(rs))
    usable = np.array(
        [r.on_battery and not r.output_off and not r.low_battery for r in rs]
    ) & np.isfinite(volts)
    if up_to is not None:
        usable &= u <= up_to
    for _ in range(2):  # fit, drop outliers (> 4 robust sigma), refit
        idx = np.flatnonzero(usable)
        if idx.size < MIN_FIT_POINTS or np.ptp(u[idx]) < MIN_FIT_SPAN:
            return None
        coef, with_load = _line(u[idx], volts[idx], load[idx])
        mean = float(load[idx].mean())
        resid = volts - _predict(coef, with_load, u, load, mean)
        sigma = 1.4826 * float(np.median(np.abs(resid[idx] - np.median(resid[idx])))) + 1e-3
        keep = usable & (np.abs(resid) <= 4.0 * sigma)
        if keep.sum() == usable.sum():
            break
        usable = keep
    slope = float(coef[1])
    live = np.flatnonzero(
        np.array([r.on_battery and not r.output_off for r in rs]) & np.isfinite(volts)
    )
    residual_end = float(resid[live[-1]]) if live.size else 0.0
    return _Fit(slope, residual_end, int(usable.sum()))


def plausible_scale(scale: float) -> bool:
    """Whether a runtime scale ``s`` can be a battery's (finite, within ``SCALE_RANGE``)."""
    return SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]  # False for NaN


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def analyse(
    discharge: Discharge,
    rated: RuntimeCurve,
    blocks: float | None,
    peukert: float,
    count: str = "load",
) -> DischargeEvidence | None:
    """Evidence of one discharge, or None when it shows nothing (too short, no numbers, or a
    runtime scale outside ``SCALE_RANGE``: absurd figures, logged at debug level).

    A voltage-only result carries its slope; :func:`combine` turns it into a scale once the
    volts-per-block calibration of the unit is known (``runtime_scale`` is 0 until then).
    """
    u = used_rated(discharge, rated, count)
    if u is None or u.size == 0:
        return None
    u_end = float(u[-1])
    ended = discharge.end_reason in ("off", "dark")
    fit = _voltage_fit(discharge, u, blocks, FIT_UP_TO * u_end if ended else None)
    if fit is not None and fit.slope >= 0:
        fit = None
    # Without a voltage line, LB before the output stopped is all there is to go on.
    knee = fit.residual_end < -KNEE_DIP_V if fit is not None else discharge.low_battery
    empty = ended and knee
    scale = 0.0
    method = "voltage"
    if empty and discharge.started_full:
        scale, method = u_end, "empty"
    elif fit is None:
        return None
    rs = discharge.readings
    first = rs[0]
    last_charge = next((r.charge for r in reversed(rs) if r.charge is not None), None)
    health = 100.0 * scale ** (1.0 / peukert) if scale > 0 else 0.0
    depth = 1.0 if method == "empty" else 0.0
    if method == "empty" and u_end < 1e-9:
        return None
    if method == "empty" and not plausible_scale(scale):
        log.debug(
            "discharge at %s ignored: ran %.3g times its rated runtime to empty (absurd "
            "readings or rated curve)", discharge.start, scale
        )
        return None
    return DischargeEvidence(
        start=discharge.start,
        end=discharge.end,
        end_reason=discharge.end_reason,
        method=method,
        started_full=discharge.started_full,
        low_battery=discharge.low_battery,
        reached_empty=empty,
        duration_s=discharge.end - discharge.start,
        mean_load_pct=_mean(r.load for r in rs),
        mean_temperature_c=_mean(r.temperature for r in rs),
        used_rated=u_end,
        voltage_slope=None if fit is None else fit.slope,
        runtime_scale=scale,
        depth=depth,
        health_pct=health,
        ups_runtime_at_start_s=first.runtime,
        ups_charge_at_end_pct=last_charge,
        readings=len(rs),
    )


# ------------------------------------------------------------------ all discharges


def combine(
    evidence: Sequence[DischargeEvidence],
    rated: RuntimeCurve,
    seed: BatterySeed,
    rated_source: str = "nameplate",
    half_life_s: float = HALF_LIFE_S,
) -> BatteryModel:
    """The model from the evidence of every discharge (order-independent)."""
    k = seed.peukert
    calibrations = [
        -e.voltage_slope * e.runtime_scale
        for e in evidence
        if e.method == "empty" and e.voltage_slope is not None and plausible_scale(e.runtime_scale)
    ]
    b = float(np.median(calibrations)) if calibrations else seed.volts_per_block
    final: list[DischargeEvidence] = []
    for e in sorted(evidence, key=lambda e: (e.start, e.end)):
        if e.method == "voltage":
            assert e.voltage_slope is not None
            scale = b / -e.voltage_slope
            if not plausible_scale(scale):
                log.debug(
                    "discharge at %s ignored: its voltage slope gives %.3g times the rated "
                    "runtime (absurd readings or calibration)", e.start, scale
                )
                continue
            depth = min(1.0, e.used_rated / scale)
            e = replace(e, runtime_scale=scale, depth=depth, health_pct=100.0 * scale ** (1.0 / k))
        elif not plausible_scale(e.runtime_scale):  # e.g. stored before the bound existed
            log.debug("discharge at %s ignored: runtime scale %.3g", e.start, e.runtime_scale)
            continue
        if e.depth >= MIN_DEPTH:
            final.append(e)
    if not final:
        return BatteryModel(
            None, rated, rated, rated_source, k, b, bool(calibrations), False, 0.0, 0, 0
        )
    latest = max(e.end for e in final)
    log_s = np.log([e.runtime_scale for e in final])
    weights = np.array(
        [
            e.depth
            * (2.0 if e.method == "empty" else 1.0)
            * 0.5 ** ((latest - e.end) / half_life_s)
            for e in final
        ]
    )
    log_load = np.log([max(e.mean_load_pct or REFERENCE_LOAD, 1.0) for e in final])
    centre = float(np.average(log_load, weights=weights))
    level = float(np.average(log_s, weights=weights))
    slope = 0.0
    deep = np.array([e.depth >= EXPONENT_MIN_DEPTH for e in final])
    exponent_learned = bool(
        deep.sum() >= 2
        and weights[deep].sum() > 0  # evidence ages of thousands of half-lives weigh 0.0
        and np.exp(np.ptp(log_load[deep])) >= EXPONENT_LOAD_RATIO
    )
    if exponent_learned:
        x = log_load[deep] - centre
        w = weights[deep]
        # The learned exponent (rated - slope) stays in the range a curve may have: an
        # unbounded slope extrapolated to the centre overflowed exp() below.
        lo, hi = EXPONENT_RANGE
        level, slope = _weighted_line(
            x, log_s[deep], w, (rated.exponent - hi, rated.exponent - lo)
        )
    health = 100.0 * math.exp(level / k)
    exponent = rated.exponent - slope
    at_ref = math.exp(level + slope * (math.log(rated.reference_load) - centre))
    curve = rated.scaled(at_ref, exponent)
    q = sum(e.depth * (1.5 if e.method == "empty" else 1.0) for e in final)
    return BatteryModel(
        health_pct=health,
        curve=curve,
        rated=rated,
        rated_source=rated_source,
        peukert=k,
        volts_per_block=b,
        volts_calibrated=bool(calibrations),
        exponent_learned=exponent_learned,
        confidence=1.0 - math.exp(-q),
        discharges=len(final),
        discharges_to_empty=sum(e.method == "empty" for e in final),
        evidence=tuple(final),
        learned_at=latest,
    )


def _weighted_line(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, slope_range: tuple[float, float]
) -> tuple[float, float]:
    """Intercept (at x = 0) and slope of a weighted least-squares line, the slope held within
    ``slope_range`` (the intercept is then the best one for that slope)."""
    xm = float(np.average(x, weights=w))
    ym = float(np.average(y, weights=w))
    var = float(np.average((x - xm) ** 2, weights=w))
    slope = float(np.average((x - xm) * (y - ym), weights=w)) / var if var > 0 else 0.0
    slope = min(max(slope, slope_range[0]), slope_range[1])
    return ym - slope * xm, slope


def learn(
    readings: Iterable[Reading],
    seed: BatterySeed | None = None,
    max_gap: float = DEFAULT_MAX_GAP_S,
) -> BatteryModel:
    """Everything from one UPS's readings: segment, analyse each discharge, combine."""
    seed = seed or BatterySeed()
    stream = ordered(readings)
    discharges = segment(stream, max_gap)
    rated, source = rated_curve(seed, stream, discharges)
    blocks = infer_blocks(seed, stream)
    count = "load" if source == "nameplate" else "charge"
    evidence = [
        e for d in discharges if (e := analyse(d, rated, blocks, seed.peukert, count)) is not None
    ]
    return combine(evidence, rated, seed, source)
