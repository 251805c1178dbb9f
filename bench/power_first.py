"""Power news first: six real NUT library dumps at one site, bridged from a real upsd (issue 28).

Per run, everything real and fresh (a new site name and data folder):

* one ``upsd`` with one ``dummy-ups`` per dump of :data:`DUMPS` (``shared/data/nut-ddl``):
  an APC Smart-UPS 2200 whose ``ups.status`` is overridden to ``OB DISCHRG`` (on battery:
  ``MainsPowerLost``, for 30s, a warning), an MGE Pulsar 1500 overridden to ``OL CHRG RB``
  (an old battery: ``ReplaceBattery``, for 0s, a warning), and four units on line;
* ``kordon run --roles collector,alerts`` with the default rules and the default route
  (group_by site, group_wait 30s, group_interval 5m, urgent_wait 5s), its webhook receiver a
  real HTTP server (``KORDON_WEBHOOK_URL``); a real Mosquitto and InfluxDB;
* ``kordon nut-bridge`` for the site, started last: time 0 of the run.

It prints per run the time from the bridge's start to the webhook request that carries the
APC's ``MainsPowerLost`` firing (the power page), to the first carrying the MGE's
``ReplaceBattery``, how many requests carried ``ReplaceBattery`` within the window
(``--window``, 90 s: the issue's observation), and the notifications in all. The issue's
bound: the power page within 45 s in every run, ``ReplaceBattery`` once.
``--severity-only`` empties both alert classes, for the figures before the change.

Run from the repository root: ``.venv/bin/python -m bench.power_first --runs 10``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from testkit import InfluxServer, MosquittoServer
from testkit.nut_library import library_root
from testkit.power_first import BOUND, RunResult, run_once
from testkit.receivers import WebhookReceiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--window", type=float, default=90.0,
                        help="seconds from the bridge's start each run watches the webhook")
    parser.add_argument("--severity-only", action="store_true",
                        help="urgent_alerts and maintenance_alerts empty: as before issue 28")
    args = parser.parse_args()
    library = library_root()
    if library is None:
        raise SystemExit("the NUT Devices Dumps Library is absent (shared/data/nut-ddl)")
    base = Path(tempfile.mkdtemp(prefix="kordon-pf-"))
    broker = MosquittoServer(base / "mosquitto")
    influx = InfluxServer(base / "influxdb")
    hook = WebhookReceiver().start()
    broker.start()
    influx.start()
    results: list[RunResult] = []
    try:
        print(f"{'run':>3}  {'power page':>10}  {'RB first':>8}  {'RB count':>8}  "
              f"{'notifications':>13}  {'reconnects':>10}")
        for run in range(1, args.runs + 1):
            result = run_once(base / f"r{run}", broker, influx, hook, library,
                              window=args.window, severity_only=args.severity_only)
            results.append(result)

            def seconds(value: float | None) -> str:
                return "never" if value is None else f"{value:.1f} s"

            print(f"{run:>3}  {seconds(result.power_page):>10}  "
                  f"{seconds(result.replace_first):>8}  {result.replace_count:>8}  "
                  f"{result.notifications:>13}  {result.reconnects:>10}  "
                  f"{'ok' if result.ok else 'FAIL'}  "
                  f"{', '.join(result.told)}", flush=True)
    finally:
        hook.stop()
        influx.stop()
        broker.stop()
    pages = [r.power_page for r in results if r.power_page is not None]
    ok = sum(r.ok for r in results)
    print(f"power page within {BOUND:.0f} s and ReplaceBattery once: {ok} of {len(results)} "
          f"runs; power page min {min(pages, default=float('nan')):.1f} s, "
          f"max {max(pages, default=float('nan')):.1f} s")
    shutil.rmtree(base, ignore_errors=True)
    if ok != len(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
