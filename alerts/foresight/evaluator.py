"""``ScheduledOutageAtRisk``: the forecast of every UPS against its site's scheduled cuts.

The engine hands every UPS reading (and scanners' ``power.draw``, for load shedding) to
:meth:`Foresight.observe`, and calls :meth:`Foresight.evaluate` from its sweep; the findings go
through the engine's ordinary life cycle (``for``, silences, inhibition, routing). An alert is
raised for a UPS when a cut that starts within ``lead`` (or is under way) is forecast to leave
less than ``margin`` of its battery, and it resolves when the forecast recovers or the cut has
passed. Unknown schedules and emergency days raise nothing: there is no plan to judge, and the
verdicts say so for the page. At a site with a generator the battery only bridges its start
(``trust_generator``); the battery-alone figure is still computed for the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts.battery import BatteryModel, BatterySeed, Reading
from alerts.config.rules import ScheduledOutageAtRiskRule
from alerts.foresight.forecast import CutForecast, forecast
from alerts.foresight.watch import UpsWatch
from kordon.durations import approx_duration
from kordon.fleet import Fleet, ScannerParams, UpsParams
from kordon.model.kinds import DeviceKind
from kordon.schedule import Outlook, OutlookStatus, SiteSchedules

RuleOf = Callable[[str, str], ScheduledOutageAtRiskRule]
ModelOf = Callable[[str, str], BatteryModel | None]
NowOf = Callable[[str], float]  # a site's time: its stream's scenario time, else the wall's


@dataclass(frozen=True, slots=True)
class Verdict:
    """One UPS's outlook for the page and the API."""

    site: str
    device: str
    status: str  # known | unknown | emergency
    reason: str
    soc_now: float | None
    load_pct: float | None
    health_pct: float | None
    runtime_full_s: float | None  # from full at the expected load, learned curve
    forecasts: tuple[CutForecast, ...]
    generator: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "site": self.site, "device": self.device, "status": self.status,
            "reason": self.reason, "soc_now": self.soc_now, "load_pct": self.load_pct,
            "health_pct": self.health_pct, "runtime_full_s": self.runtime_full_s,
            "generator": self.generator,
            "cuts": [
                {"start": f.cut.start, "end": f.cut.end, "definite": f.cut.definite,
                 "verdict": "generator" if f.bridge_s is not None and f.ok else f.verdict,
                 "soc_start": f.soc_start, "soc_end": f.soc_end, "needed": f.needed,
                 "runs_out_at": f.runs_out_at, "short_s": f.short_s,
                 "shedding_carries": f.shedding_carries, "mean_load_pct": f.mean_load_pct}
                for f in self.forecasts
            ],
        }


@dataclass(frozen=True, slots=True)
class Finding:
    site: str
    device: str
    active: bool
    annotations: dict[str, str]
    rule: ScheduledOutageAtRiskRule
    at: float  # the site's time of the verdict


class Foresight:
    def __init__(self, rule_of: RuleOf, fleet: Fleet | None, schedules: SiteSchedules,
                 model_of: ModelOf | None = None) -> None:
        self.rule_of = rule_of
        self.model_of = model_of
        self.fleet = fleet
        self.schedules = schedules
        self.zone = ZoneInfo(fleet.timezone if fleet is not None else "Europe/Kyiv")
        self.watches: dict[tuple[str, str], UpsWatch] = {}
        self.draw: dict[tuple[str, str], float] = {}  # scanners' mean power.draw, W
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        # What the page shows besides the verdicts: every fleet site's outlook as of the
        # last evaluation (engine time), and a count the role watches to publish them.
        self.outlooks: dict[str, Outlook] = {}
        self.evaluated_at: float | None = None
        self.site_evaluated_at: dict[str, float] = {}  # each site's own "now" of its outlook
        self.evaluations = 0
        # Per site, on the site's own clock (a stream's scenario time or the wall's): when
        # the next evaluation is due, by the step or by the next edge of a cut.
        self._next_eval: dict[str, float] = {}
        self._site_set: set[str] | None = None  # _sites(), kept until the watches change

    # ---------------------------------------------------------------- input
    def observe(self, site: str, kind: DeviceKind, device: str, when: float,
                fields: dict[str, object]) -> None:
        if kind is DeviceKind.UPS:
            watch = self.watches.get((site, device))
            if watch is None:
                watch = self.watches[(site, device)] = self._watch(site, device)
                self._site_set = None
                # A site without a UPS is re-judged only every minute: a UPS that just
                # appeared is judged at the next evaluation, not up to a minute later.
                self._next_eval.pop(site, None)
            watch.observe(Reading.from_metrics(when, fields))
        elif kind is DeviceKind.SCANNER:
            draw = fields.get("power.draw")
            if isinstance(draw, int | float) and not isinstance(draw, bool):
                old = self.draw.get((site, device))
                self.draw[(site, device)] = float(draw) if old is None else (
                    old + 0.01 * (float(draw) - old))

    def forget_site(self, site: str) -> None:
        """The site changed its time base (a stream took it or let it go): what was watched
        and when it is due were on the other clock."""
        for table in (self.watches, self.draw, self.verdicts):
            for key in [k for k in table if k[0] == site]:
                del table[key]  # type: ignore[attr-defined]
        self.outlooks.pop(site, None)
        self.site_evaluated_at.pop(site, None)
        self._next_eval.pop(site, None)
        self._site_set = None

    def _params(self, site: str, device: str) -> UpsParams | None:
        if self.fleet is None or site not in self.fleet.sites:
            return None
        params = self.fleet.sites[site].devices.get(device)
        return params if isinstance(params, UpsParams) else None

    def _watch(self, site: str, device: str) -> UpsWatch:
        params = self._params(site, device)
        seed = BatterySeed(peukert=params.peukert, blocks=params.blocks) if params else (
            BatterySeed())
        external = None
        if self.model_of is not None:
            model_of = self.model_of

            def external() -> BatteryModel | None:
                return model_of(site, device)

        return UpsWatch(site, device, seed, params.recharge_ratio if params else None, self.zone,
                        external)

    # ---------------------------------------------------------------- timing
    def _sites(self) -> set[str]:
        """The fleet's sites and those of the UPS units watched: asked before every message
        of a replay (``next_due``), so built again only when a watch comes or goes."""
        if self._site_set is None:
            sites = {site for site, _ in self.watches}
            if self.fleet is not None:
                sites.update(self.fleet.sites)
            self._site_set = sites
        return self._site_set

    def due(self, now: float, now_of: NowOf | None = None) -> bool:
        """Whether any site's evaluation is due at its own time."""
        nexts = self._next_eval
        return any((now if now_of is None else now_of(site)) >= nexts.get(site, -math.inf)
                   for site in self._sites())

    def next_due(self, include: Callable[[str], bool] | None = None) -> float | None:
        """The earliest due time of the sites ``include`` takes (those on the wall clock)."""
        if not self.watches:
            return None
        due = [self._next_eval.get(site, -1.0) for site in self._sites()
               if include is None or include(site)]
        return min(due) if due else None

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, now: float, now_of: NowOf | None = None) -> list[Finding]:
        """Findings of the sites whose evaluation is due, each judged at its own time."""
        findings = []
        by_site: dict[str, list[tuple[str, UpsWatch]]] = {site: [] for site in self._sites()}
        for (site, device), watch in sorted(self.watches.items()):
            by_site[site].append((device, watch))
        latest = None
        for site, watches in sorted(by_site.items()):
            at = now if now_of is None else now_of(site)
            if at < self._next_eval.get(site, -math.inf):
                continue
            outlook = self.schedules.outlook(site, at)
            step, boundary = 60.0, math.inf
            if watches:
                step = math.inf
            for device, watch in watches:
                rule = self.rule_of(site, device)
                step = min(step, rule.step)
                verdict = self._verdict(watch, outlook, rule, at)
                self.verdicts[(site, device)] = verdict
                for cut in outlook.cuts:
                    for edge in (cut.start - rule.lead, cut.end):
                        if at < edge < boundary:
                            boundary = edge
                findings.append(self._finding(verdict, rule, at))
            self.outlooks[site] = outlook
            self.site_evaluated_at[site] = at
            self._next_eval[site] = min(at + step, boundary)
            latest = at if latest is None else max(latest, at)
        if latest is not None:
            self.evaluated_at = latest
            self.evaluations += 1
        return findings

    def _verdict(self, watch: UpsWatch, outlook: Outlook, rule: ScheduledOutageAtRiskRule,
                 now: float) -> Verdict:
        generator = self._generator_bridge(watch.site)
        soc = watch.soc
        base = dict(site=watch.site, device=watch.device, soc_now=soc, load_pct=watch.load_now,
                    health_pct=watch.current_model().health_pct,
                    generator=generator is not None)
        if outlook.status is not OutlookStatus.KNOWN or soc is None:
            reason = outlook.reason if outlook.status is not OutlookStatus.KNOWN else (
                "no charge reading yet")
            return Verdict(status=outlook.status.value, reason=reason, runtime_full_s=None,
                           forecasts=(), **base)  # type: ignore[arg-type]
        cuts = [c for c in outlook.cuts if c.start < now + rule.horizon]
        shed = self._shed(watch)
        bridge = generator if rule.trust_generator else None
        forecasts = forecast(
            cuts, now, soc, load_at=watch.load_at, runtime_at=watch.runtime_s,
            recharge=watch.recharge(), margin=rule.margin / 100.0, shed_load_at=shed,
            bridge_s=bridge,
        )
        runtime = watch.runtime_s(watch.load_at(now))
        return Verdict(status="known", reason="", runtime_full_s=runtime,
                       forecasts=tuple(forecasts), **base)  # type: ignore[arg-type]

    def _generator_bridge(self, site: str) -> float | None:
        if self.fleet is None or site not in self.fleet.sites:
            return None
        generator = self.fleet.sites[site].generator
        return None if generator is None else generator.start_delay + 60.0

    def _shed(self, watch: UpsWatch) -> Callable[[float], float] | None:
        """Expected load with the scanners this UPS feeds held in standby (fleet topology)."""
        params = self._params(watch.site, watch.device)
        if params is None or self.fleet is None:
            return None
        site = self.fleet.sites[watch.site]
        saved_w = 0.0
        for name in self.fleet.fed_devices(watch.site, watch.device):
            scanner = site.devices[name]
            if isinstance(scanner, ScannerParams):
                draw = self.draw.get((watch.site, name))
                if draw is not None:
                    saved_w += max(0.0, draw - scanner.power.self_test)
        if saved_w <= 0.0:
            return None
        saved_pct = 100.0 * saved_w / params.rated_power_w

        def load_at(when: float) -> float:
            return max(1.0, watch.load_at(when) - saved_pct)

        return load_at

    def _finding(self, verdict: Verdict, rule: ScheduledOutageAtRiskRule, now: float) -> Finding:
        at_risk = None
        if verdict.status == "known":
            for f in verdict.forecasts:
                if f.cut.start - rule.lead > now:
                    break
                if not f.ok and (f.bridge_s is None):
                    at_risk = f
                    break
        if at_risk is None:
            return Finding(verdict.site, verdict.device, False, {}, rule, now)
        return Finding(verdict.site, verdict.device, True, self.page_words(verdict, at_risk), rule,
                       now)

    def page_words(self, verdict: Verdict, f: CutForecast) -> dict[str, str]:
        """The page's summary and description for a UPS at risk in the cut of ``f``."""
        def clock(epoch: float) -> str:
            return datetime.fromtimestamp(epoch, self.zone).strftime("%H:%M")

        cut = f"{clock(f.cut.start)}-{clock(f.cut.end)}"
        name = f"{verdict.site}/{verdict.device}"
        if f.runs_out_at is not None:
            how = (f"runs out about {approx_duration(f.short_s).removeprefix('about ')} "
                   f"before the grid returns")
        else:
            how = f"ends with only {max(f.soc_end, 0) * 100:.0f}% left"
        when = "under way" if f.in_progress else f"at {clock(f.cut.start)}"
        needed = (
            f"it would need {f.needed * 100:.0f}% at the start"
            if f.needed <= 1.0 else
            f"even a full battery would not do: the cut takes {f.used * 100:.0f}% of one"
        )
        shed = ""
        if f.shedding_carries is True:
            shed = " Holding its scanners in standby would carry it through."
        elif f.shedding_carries is False:
            shed = " Holding its scanners in standby would not be enough."
        runtime = verdict.runtime_full_s
        known = runtime is not None and 0.0 < runtime < math.inf  # round(inf) would raise
        health = (f", battery health {verdict.health_pct:.0f}%"
                  if verdict.health_pct is not None else "")
        return {
            "summary": f"UPS {name} will not last the scheduled cut {cut}: {how}",
            "description": (
                f"Scheduled cut {cut} ({when}, {approx_duration(f.cut.duration)}): expected "
                f"charge at its start {f.soc_start * 100:.0f}%, {needed}; at about "
                f"{f.mean_load_pct:.0f}% load a full battery lasts "
                f"{approx_duration(runtime) if known else 'unknown'}{health}.{shed} "
                "Start a generator, bring a mobile one, or shed load before the cut."
            ),
        }
