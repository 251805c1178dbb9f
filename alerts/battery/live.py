"""Battery learning inside the alert engine: each UPS's model, re-combined at every discharge.

The engine hands every UPS reading to :meth:`BatteryLearning.observe` on the stream's clock
(event time, never the wall clock), so a replay gives the same figures every time. Per UPS this
keeps only what the next discharge needs: the last reading on mains (did the discharge start
full?), a short tail of mains readings while the rated curve is still unknown (the firmware's
own runtime table, :func:`alerts.battery.learn.firmware_points`), and the readings of the open
discharge. When a discharge ends (mains back, output off, or silence past ``max_gap``) it is
analysed once, its evidence joins the unit's, and :func:`combine` gives the new model, which
is saved (:class:`~kordon.storage.battery_store.BatteryStore`) and reported as a
``battery_health`` point. ``kordon battery relearn`` recomputes the same from stored history.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time

from alerts.battery.curve import MIN_LOAD, BatterySeed, RuntimeCurve
from alerts.battery.learn import (
    MODEL_VERSION,
    BatteryModel,
    DischargeEvidence,
    analyse,
    combine,
    infer_blocks,
    rated_curve,
)
from alerts.battery.readings import Reading, finite_number, parse_flags, plausible_time
from alerts.battery.segment import DEFAULT_MAX_GAP_S, Discharge
from kordon.fleet import Fleet, UpsParams
from kordon.model.battery import BATTERY_MEASUREMENT
from kordon.model.nut import figure
from kordon.storage.battery_store import BatteryStore
from kordon.storage.lineprotocol import encode_line

log = logging.getLogger("alerts.battery")

MAINS_TAIL = 48  # readings on mains kept while the rated curve is unknown (8 min at 10 s)
LOAD_TAU_S = 600.0  # "today's load": the load smoothed over about ten minutes


def seed_of(params: UpsParams | None) -> BatterySeed:
    """The fleet file's nameplate as the learner's seed (NUT defaults when absent)."""
    if params is None:
        return BatterySeed()
    return BatterySeed(
        rated_runtime=tuple((p.load, p.runtime) for p in params.rated_runtime),
        peukert=params.peukert,
        blocks=params.blocks,
    )


def installed_at(params: UpsParams | None) -> float | None:
    """Epoch seconds of the fleet's ``battery_installed`` date (evidence before is the old
    battery's), or None."""
    if params is None or params.battery_installed is None:
        return None
    return datetime.combine(params.battery_installed, time(0), UTC).timestamp()


def health_line(model: BatteryModel, site: str, device: str) -> str:
    """The model as one ``battery_health`` point at the stream time of its latest evidence."""
    assert model.health_pct is not None and model.learned_at is not None
    return encode_line(
        BATTERY_MEASUREMENT,
        {"site": site, "device": device},
        {
            "health_pct": round(float(model.health_pct), 3),
            "runtime_ref_s": round(float(model.curve.runtime_s), 1),
            "confidence": round(float(model.confidence), 4),
            "discharges": float(model.discharges),
        },
        int(model.learned_at * 1e9),
    )


@dataclass(slots=True)
class Unit:
    """One UPS as the learner sees it."""

    site: str
    device: str
    seed: BatterySeed
    installed: float | None = None
    rated: RuntimeCurve | None = None
    rated_source: str = ""
    blocks: float | None = None
    evidence: tuple[DischargeEvidence, ...] = ()
    model: BatteryModel | None = None
    last_time: float | None = None  # of the newest reading
    last_was_online: bool = False
    online_raw: tuple[float, dict[str, object]] | None = None  # the newest OL reading, raw
    mains: deque[Reading] | None = None
    current: list[Reading] | None = None
    before: Reading | None = None
    used: float = 0.0  # rated share drawn in the open discharge
    soc0: float = 1.0
    flags: frozenset[str] = frozenset()
    load: float | None = None  # smoothed, % of rated
    charge: float | None = None

    @property
    def discharging(self) -> bool:
        return self.current is not None

    def learned_time_to_empty(self) -> float | None:
        """Seconds left by the learned curve in the open discharge, at today's load."""
        model = self.model
        if model is None or model.health_pct is None or self.current is None:
            return None
        load = self.current[-1].load if self.current[-1].load is not None else self.load
        if load is None:
            return None
        return model.time_to_empty_s(load, self.used, self.soc0)


class BatteryLearning:
    def __init__(
        self,
        fleet: Fleet | None,
        store: BatteryStore | None = None,
        *,
        max_gap: float = DEFAULT_MAX_GAP_S,
        on_model: Callable[[Unit, str], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.store = store
        self.max_gap = max_gap
        self.on_model = on_model  # (unit, influx line) after each new model
        self.units: dict[tuple[str, str], Unit] = {}
        self._open: dict[tuple[str, str], Unit] = {}
        self.learned = 0
        if store is not None:
            self._restore(store)

    # ------------------------------------------------------------------ set-up
    def _params(self, site: str, device: str) -> UpsParams | None:
        if self.fleet is None or site not in self.fleet.sites:
            return None
        params = self.fleet.sites[site].devices.get(device)
        return params if isinstance(params, UpsParams) else None

    def unit(self, site: str, device: str) -> Unit:
        key = (site, device)
        found = self.units.get(key)
        if found is None:
            params = self._params(site, device)
            found = self.units[key] = Unit(site, device, seed_of(params), installed_at(params))
            found.mains = deque(maxlen=MAINS_TAIL)
        return found

    def _restore(self, store: BatteryStore) -> None:
        stale = 0
        for row in store.models():
            if row.model_version != MODEL_VERSION:
                stale += 1
                continue
            try:
                model = BatteryModel.from_dict(row.model)
            except (KeyError, TypeError, ValueError):
                stale += 1
                continue
            unit = self.unit(row.site, row.device)
            unit.model = model
            unit.evidence = model.evidence
            unit.rated, unit.rated_source = model.rated, model.rated_source
            unit.mains = None
        if stale:
            log.warning(
                "%d stored battery models are of another model version; run "
                "'kordon battery relearn' to recompute them from history", stale
            )

    # ------------------------------------------------------------------ input
    def observe(self, site: str, device: str, when: float, fields: dict[str, object]) -> Unit:
        """One UPS reading at its event time.

        On mains (nearly always) this keeps the raw fields of the reading only: a
        :class:`Reading` is built when a discharge opens (its ``before``) or the rated curve
        is still being read from the firmware's table."""
        unit = self.unit(site, device)
        if not plausible_time(when):
            # NaN would stick as last_time and stop every later comparison; inf would end
            # as learned_at in int(learned_at * 1e9) of the battery_health point.
            log.debug("%s/%s: reading at an implausible time %r ignored", site, device, when)
            return unit
        last_time = unit.last_time
        if last_time is not None and when <= last_time:
            return unit  # a redelivery or an old reading: the discharge is a time series
        flags = parse_flags(fields.get("ups.status"))
        if flags:
            unit.flags = flags
        charge = figure("battery.charge", finite_number(fields.get("battery.charge")))
        if charge is not None:
            unit.charge = charge
        load = figure("ups.load", finite_number(fields.get("ups.load")))
        if load is not None:
            if unit.load is None or last_time is None:
                unit.load = load
            else:
                alpha = 1.0 - math.exp(-(when - last_time) / LOAD_TAU_S)
                unit.load += alpha * (load - unit.load)
        gap = last_time is not None and when - last_time > self.max_gap
        if unit.current is not None and gap:
            self._finish(unit, "dark")
        on_battery = "OB" in flags
        on_line = "OL" in flags and not on_battery
        was_online, unit.last_time, unit.last_was_online = unit.last_was_online, when, on_line
        if on_battery:
            r = Reading.from_metrics(when, fields)
            if unit.current is None:
                if r.output_off:
                    return unit  # output already off: nothing was discharged in this reading
                before = None
                if not gap and was_online and unit.online_raw is not None:
                    before = Reading.from_metrics(*unit.online_raw)
                unit.current, unit.before, unit.used = [], before, 0.0
                full = before is not None and Discharge((r,), "open", before).started_full
                c0 = before.charge if before is not None else r.charge
                unit.soc0 = 1.0 if full or c0 is None else min(1.0, c0 / 100.0)
                self._open[(site, device)] = unit
            self._count(unit, r)
            unit.current.append(r)
            if r.output_off:
                self._finish(unit, "off")
        elif on_line:
            unit.online_raw = (when, fields)
            if unit.current is not None:
                self._finish(unit, "mains", Reading.from_metrics(when, fields))
            if unit.mains is not None:
                unit.mains.append(Reading.from_metrics(when, fields))
        elif unit.current is not None:
            unit.current.append(Reading.from_metrics(when, fields))  # no status: its numbers
        return unit

    def _count(self, unit: Unit, r: Reading) -> None:
        """The rated share drawn so far (live figure for depletion; analysis redoes it).
        Only a unit with a learned model needs it; scalar math, once per reading on battery."""
        prev = unit.current[-1] if unit.current else unit.before
        rated = unit.rated
        if prev is None or r.load is None or rated is None:
            return
        load = max(r.load, MIN_LOAD)
        runtime = rated.runtime_s * (rated.reference_load / load) ** rated.exponent
        unit.used += (r.time - prev.time) / runtime

    def sweep(
        self, now: float, now_of: Callable[[str], float] | None = None
    ) -> list[tuple[str, str]]:
        """Close discharges whose UPS has been silent past ``max_gap`` (it went dark);
        returns the units whose model may have changed. ``now_of(site)``: the time of a
        site on its own clock (a simulated stream's), else ``now``."""
        closed = []
        for unit in list(self._open.values()):
            at = now if now_of is None else now_of(unit.site)
            if unit.last_time is not None and at - unit.last_time > self.max_gap:
                self._finish(unit, "dark")
                closed.append((unit.site, unit.device))
        return closed

    def next_due(self, include: Callable[[str], bool] | None = None) -> float | None:
        """The earliest gap deadline of the open discharges (of the sites ``include`` takes)."""
        due = [u.last_time + self.max_gap for u in self._open.values()
               if u.last_time is not None and (include is None or include(u.site))]
        return min(due) + 1e-3 if due else None

    # ------------------------------------------------------------------ a discharge ended
    def _finish(self, unit: Unit, reason: str, after: Reading | None = None) -> None:
        readings, before = unit.current or [], unit.before
        unit.current, unit.before = None, None
        self._open.pop((unit.site, unit.device), None)
        if not readings:
            return
        discharge = Discharge(tuple(readings), reason, before, after)
        mains = list(unit.mains or ())
        if unit.rated is None:
            unit.rated, unit.rated_source = rated_curve(unit.seed, mains, [discharge])
            unit.mains = None  # known from now on; the tail is no longer needed
        if unit.blocks is None:
            unit.blocks = infer_blocks(unit.seed, [*mains, *readings])
        count = "load" if unit.rated_source == "nameplate" else "charge"
        found = analyse(discharge, unit.rated, unit.blocks, unit.seed.peukert, count)
        if found is None:
            return
        self._add(unit, [found])

    def _add(self, unit: Unit, found: Iterable[DischargeEvidence]) -> None:
        assert unit.rated is not None
        evidence = [*unit.evidence, *found]
        if unit.installed is not None:
            evidence = [e for e in evidence if e.start >= unit.installed]
        model = combine(evidence, unit.rated, unit.seed, unit.rated_source)
        # Every analysed discharge is kept, not only those combine() counted: a later
        # calibration (a discharge to empty) may give a shallow one its scale.
        unit.evidence = tuple(evidence)
        if model.health_pct is None:
            return
        unit.model = model
        self.learned += 1
        if self.store is not None:
            self.store.save(
                [(unit.site, unit.device, MODEL_VERSION, unit.model.to_dict(),
                  unit.model.learned_at)],
                unit.model.learned_at or 0.0,
            )
        if self.on_model is not None:
            self.on_model(unit, health_line(unit.model, unit.site, unit.device))
