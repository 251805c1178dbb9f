"""Will a UPS last through the scheduled cuts ahead? Pure functions on the engine's clock.

The battery's true state of charge ``soc`` (0..1 of what *this* battery holds today, not the
UPS's own count) is carried forward from ``now`` through the plan: between cuts the charger
refills it, during a cut the load drains it. Both are piecewise linear, so the walk is exact
over segments where the load is constant (the expected load changes on the hour):

* drain at load ``L`` %: ``d soc / dt = -1 / R(L)``, with ``R`` the learned runtime from full
  (:class:`alerts.battery.BatteryModel` curve: Peukert and the battery's health are in it);
* recharge as VRLA chargers do: bulk at rate ``r`` (share per second) to ``knee`` (80 %), then
  absorption at ``r * slow``; ``r`` learned from the UPS's own recharges.

Per cut the forecast gives the charge expected at its start, the charge left when the grid
returns (negative: the UPS ran out, ``runs_out_at``), the charge it would need at the start to
end with ``margin`` left, and the same drain with load shed (scanners in standby) where that
applies. Nothing here reads a clock or keeps state: same inputs, same verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kordon.schedule.model import Cut

LoadAt = Callable[[float], float]  # expected load (% of rated) at an epoch time
RuntimeAt = Callable[[float], float]  # runtime from full (s) at a load (% of rated)
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Recharge:
    rate: float  # share of the battery per second in the bulk phase
    knee: float = 0.8
    slow: float = 0.5  # absorption rate as a share of the bulk rate

    def after(self, soc: float, seconds: float) -> float:
        """State of charge after charging ``seconds`` from ``soc``."""
        if seconds <= 0 or soc >= 1.0:
            return min(soc, 1.0)
        if soc < self.knee:
            to_knee = (self.knee - soc) / self.rate
            if seconds <= to_knee:
                return soc + self.rate * seconds
            seconds -= to_knee
            soc = self.knee
        return min(1.0, soc + self.rate * self.slow * seconds)

    def time_to_full(self, soc: float) -> float:
        soc = max(0.0, soc)
        bulk = max(0.0, self.knee - soc) / self.rate
        return bulk + (1.0 - max(soc, self.knee)) / (self.rate * self.slow)

    @staticmethod
    def rate_from(soc_start: float, seconds: float, knee: float = 0.8, slow: float = 0.5
                  ) -> float | None:
        """The bulk rate that explains a recharge from ``soc_start`` to full in ``seconds``."""
        if seconds <= 0 or soc_start >= 0.95:
            return None
        soc_start = max(0.0, soc_start)
        bulk = max(0.0, knee - soc_start)
        absorb = 1.0 - max(soc_start, knee)
        return (bulk + absorb / slow) / seconds


@dataclass(frozen=True, slots=True)
class CutForecast:
    cut: Cut
    soc_start: float  # expected at the cut's start (now, for a cut under way)
    soc_end: float  # left when the grid returns; below 0: ran out
    used: float  # share of a full battery the cut drains (with the bridge: only that)
    runs_out_at: float | None  # epoch seconds
    needed: float  # charge needed at the start to end with ``margin``; > 1: even full fails
    margin: float
    shed_soc_end: float | None  # the same with load shed, when there is load to shed
    mean_load_pct: float
    bridge_s: float | None  # the battery only bridges this long (a generator takes over)
    in_progress: bool

    @property
    def short_s(self) -> float:
        """How long before the grid returns the battery runs out (0 when it does not)."""
        return 0.0 if self.runs_out_at is None else max(0.0, self.cut.end - self.runs_out_at)

    @property
    def ok(self) -> bool:
        return self.soc_end >= self.margin

    @property
    def shedding_carries(self) -> bool | None:
        return None if self.shed_soc_end is None else self.shed_soc_end >= self.margin

    @property
    def verdict(self) -> str:
        if self.ok:
            return "survives"
        return "runs-out" if self.runs_out_at is not None else "thin-margin"


def _segments(start: float, end: float) -> list[tuple[float, float]]:
    """``[start, end)`` cut at every whole hour: the expected load is constant within."""
    out = []
    t = start
    while t < end:
        nxt = min(end, (t // HOUR + 1) * HOUR)
        out.append((t, nxt))
        t = nxt
    return out


def drain(
    soc: float, start: float, end: float, load_at: LoadAt, runtime_at: RuntimeAt
) -> tuple[float, float, float | None, float]:
    """Discharge from ``soc`` over ``[start, end)``: (soc at the end, share used, the time it
    ran out or None, mean load %). The share used does not depend on ``soc``."""
    used = 0.0
    empty_at = None
    weighted = 0.0
    for a, b in _segments(start, end):
        load = load_at(a)
        rate = 1.0 / max(runtime_at(load), 1.0)
        if empty_at is None and soc - used - rate * (b - a) < 0.0:
            empty_at = a + max(0.0, soc - used) / rate
        used += rate * (b - a)
        weighted += load * (b - a)
    mean = weighted / (end - start) if end > start else load_at(start)
    return soc - used, used, empty_at, mean


def forecast(
    cuts: Sequence[Cut],
    now: float,
    soc: float,
    *,
    load_at: LoadAt,
    runtime_at: RuntimeAt,
    recharge: Recharge,
    margin: float = 0.05,
    shed_load_at: LoadAt | None = None,
    bridge_s: float | None = None,
) -> list[CutForecast]:
    """A forecast per cut that has not ended, in order. ``soc``: now. ``bridge_s``: a
    generator takes over after this long, so only that much of each cut drains the battery."""
    out = []
    t, level = now, min(max(soc, 0.0), 1.0)
    for cut in sorted(cuts, key=lambda c: c.start):
        if cut.end <= now:
            continue
        in_progress = cut.start <= now
        start = max(cut.start, now)
        if start > t:
            level = recharge.after(level, start - t)
        drain_end = cut.end if bridge_s is None else min(cut.end, start + bridge_s)
        end_soc, used, empty_at, mean = drain(level, start, drain_end, load_at, runtime_at)
        shed_end = None
        if shed_load_at is not None:
            shed_end, _, _, _ = drain(level, start, drain_end, shed_load_at, runtime_at)
        out.append(CutForecast(
            cut=cut, soc_start=level, soc_end=end_soc, used=used, runs_out_at=empty_at,
            needed=used + margin, margin=margin, shed_soc_end=shed_end, mean_load_pct=mean,
            bridge_s=bridge_s, in_progress=in_progress,
        ))
        level, t = max(end_soc, 0.0), cut.end
    return out
