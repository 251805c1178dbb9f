"""Replay fidelity: the live stack at speed N against ``kordon scenario verify``.

Per scenario and speed, the alert transitions of the verifier (the real engine in process on
the scenario's clock) and of the live stack (real Mosquitto, ``kordon run --roles alerts``
with default rules and routes and the default fleet, a real webhook receiver, transitions in a
real InfluxDB, and the publisher as its own process), paired per alert and instance, with the
live time minus the verify time; the bound is one evaluation interval (1 s) times the speed.

- 600x: every library scenario whole, through ``kordon simulate SCENARIO --speed 600``;
- 60x: a window of each scenario's recording around its incidents, through
  ``kordon replay FILE --speed 60`` (a whole 24 h scenario would take 24 minutes);
- 1x: the crash of ``device-crash`` (a 4-minute window).

It also reports the figures of ``kordon demo`` (``single-site-blackout`` at 60x): when the
first SitePowerOutage page for Solotvyno was sent after the cut, in simulated time, and the
charge of ups-scan-1 in its first BatteryDepletionImminent page.

Run from the repository root: ``.venv/bin/python -m bench.replay_fidelity`` (about 25
minutes on this 2-core machine; ``--quick`` for three scenarios, ``--speeds 600``,
``--scenarios a,b`` to choose).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from testkit.fidelity import Case, Outcome, run_case, table
from testkit.servers import InfluxServer

M = 60
# Windows (seconds from the start) of each scenario's recording played at 60x: its incidents.
WINDOWS: dict[str, tuple[float, float]] = {
    "aged-battery": (235 * M, 265 * M),
    "battery-wear": (175 * M, 195 * M),
    "device-crash": (18 * M, 53 * M),
    "malformed-firmware": (5 * M, 35 * M),
    "normal-day": (480 * M, 510 * M),
    "radio-backhaul-loss": (85 * M, 120 * M),
    "repeat-outage-recharging": (25 * M, 60 * M),
    "rolling-outages": (235 * M, 265 * M),
    "scheduled-cuts-emergency": (1250 * M, 1280 * M),
    "scheduled-cuts-hourly": (230 * M, 260 * M),
    "single-site-blackout": (55 * M, 105 * M),
    "strike-multi-site": (38 * M, 58 * M),
}
REAL_TIME = Case("device-crash", 1, (19 * M + 30, 23 * M + 30))
QUICK = ["device-crash", "single-site-blackout", "strike-multi-site"]
CUT = 60 * M  # single-site-blackout: Solotvyno loses the grid at 1h


def cases(scenarios: list[str], speeds: list[float]) -> list[Case]:
    found: list[Case] = []
    for speed in speeds:
        if speed == 1:
            found.append(REAL_TIME)
            continue
        for name in scenarios:
            if speed >= 600:
                found.append(Case(name, speed))
            else:
                found.append(Case(name, speed, WINDOWS[name]))
    return found


def demo_figures(outcome: Outcome) -> list[str]:
    """The issue's demo criteria, read from what the live engine queued (with sentAt)."""
    lines = []
    outage = [
        p for p in outcome.sent
        if p["groupLabels"].get("site") == "solotvyno" and any(
            a["labels"]["alertname"] == "SitePowerOutage" and a["status"] == "firing"
            for a in p["alerts"])
    ]
    if outage:
        after = outage[0]["sentAt"] - outcome.start - CUT
        verdict = "ok" if after <= 120 else "LATE"
        lines.append(f"first SitePowerOutage page for solotvyno: {after:.0f} s of scenario "
                     f"time after the cut (must be <= 120 s): {verdict}")
    else:
        lines.append("first SitePowerOutage page for solotvyno: NONE")
    depletion = [
        a for p in outcome.sent for a in p["alerts"]
        if a["labels"]["alertname"] == "BatteryDepletionImminent"
        and a["labels"].get("device") == "ups-scan-1" and a["status"] == "firing"
    ]
    if depletion:
        summary = depletion[0]["annotations"].get("summary", "")
        found = re.search(r"\((\d+)% charge", summary)
        charge = float(found.group(1)) if found else float("nan")
        verdict = "ok" if charge > 20 else "TOO LATE"
        lines.append(f"first BatteryDepletionImminent page for ups-scan-1: {summary!r}; "
                     f"charge {charge:.0f} % (must be > 20 %): {verdict}")
    else:
        lines.append("BatteryDepletionImminent for ups-scan-1: NONE")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", default="1,60,600")
    parser.add_argument("--scenarios", default="all")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    args = parser.parse_args()
    speeds = [float(s) for s in args.speeds.split(",")]
    names = list(WINDOWS) if args.scenarios == "all" else args.scenarios.split(",")
    if args.quick:
        names = QUICK
    work = Path(tempfile.mkdtemp(prefix="kordon-bench-fidelity-"))
    influx = InfluxServer(work / "influxdb")
    influx.start()
    outcomes: list[Outcome] = []
    began = time.monotonic()
    try:
        for i, case in enumerate(cases(names, speeds)):
            outcome = run_case(case, work / f"case-{i}", influx)
            outcomes.append(outcome)
            print(f"{case.label()} at {case.speed:g}x via {case.mode}: "
                  f"{len(outcome.rows)} transitions, worst {outcome.worst():.0f} s "
                  f"(bound {case.bound:g} s), {'ok' if outcome.ok() else 'OUT OF BOUND'}; "
                  f"{len(outcome.pages)} pages, {len(outcome.pages_after_stop)} after the "
                  f"stop; {outcome.wall_seconds:.0f} s wall", flush=True)
    finally:
        influx.stop()
    print()
    print(table(outcomes))
    print("\n* ended live when the stream stopped (the engine settles the site); verify: "
          "still firing at the end or resolved after the stream's last message")
    print("\nsummary (scenario, speed, transitions, worst difference, bound, all within):")
    for o in outcomes:
        print(f"  {o.case.label():40s} {o.case.speed:>5g}x {len(o.rows):>3} "
              f"{o.worst():>6.0f} s {o.case.bound:>6g} s  {'yes' if o.ok() else 'NO'}")
    demo = [o for o in outcomes if o.case.scenario == "single-site-blackout" and o.case.speed == 60]
    if demo:
        print("\nkordon demo (single-site-blackout at 60x):")
        for line in demo_figures(demo[0]):
            print("  " + line)
    print(f"\n{sum(o.ok() for o in outcomes)} of {len(outcomes)} runs within the bound; "
          f"{time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
