"""Incident timing: from a scenario's physical events to each notification at a real receiver.

For every library scenario (or the ones named), on the scenario's simulated clock:

1. The physics, tick by tick: each site's grid cut and return, each UPS's LB flag and the
   moment it ran flat, each device going dark (a UPS's output off, a scanner without power,
   a device's controller dead).
2. The real alert engine over what the broker would deliver (:func:`alerts.replay.replay`),
   default rules and default timing, one webhook receiver.
3. Every notification the engine decided is POSTed by the real webhook notifier to a real
   HTTP server on loopback, in order; it arrives at the decision's simulated time plus the
   measured delivery time.

Per incident (a site's grid cut to its return) it prints the time to the first page, each
depletion warning's lead before LB and before empty, how long each dark device waited to
be named in the incident, the time to the resolved notice and the notifications sent, next
to the best achievable: the engine's own decisions with no dispatch delay (the depletion
fit's minimum points and span and the rules' ``for`` are the floor). Duplicate deliveries
(the same idempotency key or the same body twice) are counted.

Run from the repository root: ``.venv/bin/python -m bench.incident [SCENARIO ...]``.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from alerts.config import NotifySettings, RulesSettings
from alerts.notify.webhook import WebhookConfig
from alerts.replay import ReplayResult, replay
from kordon.model.alerts import AlertState
from kordon.model.kinds import DeviceKind
from simulators.engine import ScenarioRun
from simulators.physics.ups import STATUS_TEXT
from simulators.scenario import Scenario, load_scenario
from testkit.receivers import WebhookReceiver


# ---------------------------------------------------------------------------- physics
@dataclass(slots=True)
class Incident:
    site: str
    cut: float
    back: float | None = None
    lb: dict[str, float] = field(default_factory=dict)  # UPS -> first LB
    empty: dict[str, float] = field(default_factory=dict)  # UPS -> ran flat
    dark: dict[str, float] = field(default_factory=dict)  # device -> went dark


def physical_events(scenario: Scenario) -> list[Incident]:
    """Every site outage of the scenario as the physics lived it (tick resolution)."""
    run = ScenarioRun(scenario)
    ups_refs = [d for d in run.devices if d.kind is DeviceKind.UPS]
    scanner_refs = [d for d in run.devices if d.kind is DeviceKind.SCANNER]
    open_: dict[str, Incident] = {}
    done: list[Incident] = []
    was_dark: set[tuple[str, str]] = set()
    lb_seen: set[tuple[str, str]] = set()
    while run.now < run.end:
        t = run.now
        run.step_until(t + run.tick)
        for index, site in enumerate(run.site_names):
            up = bool(run.feeds[index].grid_up)
            if not up and site not in open_:
                open_[site] = Incident(site, t)
            elif up and site in open_:
                incident = open_.pop(site)
                incident.back = t
                done.append(incident)
        status = STATUS_TEXT[run.ups.status]
        for i, ref in enumerate(ups_refs):
            incident = open_.get(ref.site)
            key = (ref.site, ref.device)
            if incident is None:
                lb_seen.discard(key)
                was_dark.discard(key)
                continue
            if "LB" in str(status[i]).split() and key not in lb_seen:
                lb_seen.add(key)
                incident.lb.setdefault(ref.device, t)
            dark = not bool(run.ups.output_on[i])
            if dark and key not in was_dark:
                incident.empty.setdefault(ref.device, t)
                incident.dark.setdefault(ref.device, t)
            (was_dark.add if dark else was_dark.discard)(key)
        sources = run.scanner_source
        for i, ref in enumerate(scanner_refs):
            incident = open_.get(ref.site)
            key = (ref.site, ref.device)
            dark = int(sources[i]) == 0 and not bool(run.power_off[ref.index])
            if incident is not None and dark and key not in was_dark:
                incident.dark.setdefault(ref.device, t)
            if incident is None or not dark:
                was_dark.discard(key)
            else:
                was_dark.add(key)
        for ref in run.devices:
            if ref.kind is not DeviceKind.RADIO:
                continue
            incident = open_.get(ref.site)
            key = (ref.site, ref.device)
            dark = not bool(run.alive[ref.index])
            if incident is not None and dark and key not in was_dark:
                incident.dark.setdefault(ref.device, t)
            (was_dark.add if dark and incident is not None else was_dark.discard)(key)
    done.extend(open_.values())
    return sorted(done, key=lambda i: (i.cut, i.site))


# ---------------------------------------------------------------------------- receiver
@dataclass(slots=True)
class Arrival:
    at: float  # simulated time of arrival: decision + measured delivery time
    decided: float
    body: dict[str, Any]
    key: str


def deliver(result: ReplayResult, hook: WebhookReceiver,
            timeout: float = 10.0) -> list[Arrival]:
    """POST every notification the engine decided through the real webhook notifier to
    ``hook``, in order, and read back what the receiver got (body, idempotency key)."""
    notifier = WebhookConfig(url=hook.url()).notifier()
    arrivals = []
    try:
        for decided, note in result.notifications:
            key = note.idempotency_key("default/webhook")
            before = len(hook.received())
            started = time.perf_counter()
            notifier.send(note.payload, key)
            while len(hook.received()) == before:  # the server records it after answering
                if time.perf_counter() - started > timeout:
                    raise TimeoutError("the receiver did not record a delivery")
                time.sleep(0.0005)
            took = time.perf_counter() - started
            request = hook.received()[-1]
            arrivals.append(Arrival(decided + took, decided, request.body,
                                    request.headers.get("Idempotency-Key", "")))
    finally:
        notifier.close()
    return arrivals


def run_scenario(scenario: Scenario, url: str) -> ReplayResult:
    run = ScenarioRun(scenario)
    return replay(run.delivered(), RulesSettings(), start=run.start, end=run.end,
                  fleet=scenario.fleet, notify=NotifySettings(webhook_url=url))


# ---------------------------------------------------------------------------- figures
@dataclass(slots=True)
class Figures:
    scenario: str
    site: str
    cut: float
    first_page: float | None = None
    first_page_best: float | None = None
    depletion: list[tuple[str, float | None, float | None, float, float]] = field(
        default_factory=list
    )  # (ups, lead before LB, lead before empty, delay after decision, best lead before LB)
    dark: list[tuple[str, float | None]] = field(default_factory=list)  # device, named after
    resolution: float | None = None
    resolution_best: float | None = None
    notifications: int = 0
    duplicates: int = 0


def _site(body: dict[str, Any]) -> str:
    return str(body.get("groupLabels", {}).get("site", ""))


def _incident_text(body: dict[str, Any]) -> str:
    for alert in body["alerts"]:
        if alert["labels"].get("alertname") == "SitePowerOutage":
            notes = alert["annotations"]
            return f"{notes.get('summary', '')} {notes.get('description', '')}"
    return ""


def figures(
    name: str, incidents: list[Incident], result: ReplayResult, arrivals: list[Arrival]
) -> list[Figures]:
    out = []
    fired: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    resolved: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for t in result.transitions:
        key = (t.labels.get("alertname", ""), t.labels.get("site", ""), t.labels.get("device", ""))
        (fired if t.state is AlertState.FIRING else resolved)[key].append(t.at)
    for incident in incidents:
        end = result.end if incident.back is None else incident.back + 900.0
        mine = [a for a in arrivals if _site(a.body) == incident.site
                and incident.cut <= a.decided <= end]
        f = Figures(name, incident.site, incident.cut, notifications=len(mine))
        # A duplicate delivery is the same notification twice (its idempotency key); an
        # identical body may legitimately come again (repeat_interval).
        keys = [a.key for a in mine]
        f.duplicates = len(keys) - len(set(keys))
        paged = [a for a in mine if a.body["status"] == "firing"]
        if paged:
            f.first_page = paged[0].at - incident.cut
        outage = [t for t in fired[("SitePowerOutage", incident.site, "")]
                  if incident.cut <= t <= end]
        if outage:
            f.first_page_best = outage[0] - incident.cut
        for ups in sorted(set(incident.lb) | set(incident.empty)):
            decisions = [t for t in fired[("BatteryDepletionImminent", incident.site, ups)]
                         if incident.cut <= t <= end]
            if not decisions:
                continue
            told = next((a for a in mine for alert in a.body["alerts"]
                         if alert["labels"].get("alertname") == "BatteryDepletionImminent"
                         and alert["labels"].get("device") == ups
                         and alert["status"] == "firing"), None)
            if told is None:
                continue
            lb, empty = incident.lb.get(ups), incident.empty.get(ups)
            f.depletion.append((
                ups,
                lb - told.at if lb is not None else None,
                empty - told.at if empty is not None else None,
                told.at - decisions[0],
                lb - decisions[0] if lb is not None else 0.0,
            ))
        for device, when in sorted(incident.dark.items(), key=lambda kv: kv[1]):
            told = re.compile(rf"\b{re.escape(device)} (ran flat|stopped|went silent)")
            named = next((a.at - when for a in mine
                          if a.decided >= when and told.search(_incident_text(a.body))), None)
            f.dark.append((device, named))
        if incident.back is not None:
            after = [a for a in mine if a.decided >= incident.back and any(
                alert["labels"].get("alertname") == "SitePowerOutage"
                and alert["status"] == "resolved" for alert in a.body["alerts"])]
            if after:
                f.resolution = after[0].at - incident.back
            ends = [t for t in resolved[("SitePowerOutage", incident.site, "")]
                    if t >= incident.back]
            if ends:
                f.resolution_best = ends[0] - incident.back
        out.append(f)
    return out


def _m(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    whole = round(abs(seconds))
    return f"{sign}{whole // 60}:{whole % 60:02d}"


def table(rows: list[Figures]) -> str:
    head = ("scenario", "site", "first page (best)", "depletion lead before LB / empty "
            "(after decision; best before LB)", "dark named after", "resolved (best)",
            "sent", "dup")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for f in rows:
        dep = "; ".join(f"{u} {_m(lb)} / {_m(e)} (+{d:.1f}s; {_m(b)})"
                        for u, lb, e, d, b in f.depletion) or "-"
        dark = "; ".join(f"{d} {_m(s)}" for d, s in f.dark) or "-"
        lines.append(" | ".join([
            f.scenario, f.site, f"{_m(f.first_page)} ({_m(f.first_page_best)})", dep, dark,
            f"{_m(f.resolution)} ({_m(f.resolution_best)})", str(f.notifications),
            str(f.duplicates),
        ]))
    return "\n".join(lines)


def measure(names: list[str]) -> list[Figures]:
    receiver = WebhookReceiver().start()
    rows: list[Figures] = []
    try:
        for name in names:
            scenario = load_scenario(name)
            incidents = physical_events(scenario)
            if not incidents:
                continue
            result = run_scenario(scenario, receiver.url())
            arrivals = deliver(result, receiver)
            rows.extend(figures(name, incidents, result, arrivals))
    finally:
        receiver.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="library scenarios (default: all)")
    args = parser.parse_args()
    names = args.scenarios
    if not names:
        from simulators.library import library

        names = list(library())
    rows = measure(names)
    print(table(rows))


if __name__ == "__main__":
    main()
