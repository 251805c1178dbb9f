"""Benchmark: 24 simulated hours of a 500-device fleet at 10-second intervals, recorded to a file.

Prints wall time, peak RSS, messages and file size. Target: under 30 s and 300 MB (2 cores).

    .venv/bin/python -m bench.simulate [--devices 500] [--hours 24] [--out FILE] [--keep]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import yaml

from kordon.fleet import (
    Fleet,
    YamlDocument,
)
from simulators.engine import ScenarioRun
from simulators.record import Recorder
from simulators.scenario import parse_scenario


def synthetic_fleet(devices: int) -> Fleet:
    """Sites of ten devices each: two big UPS units, one IT UPS, three scanners, four radios."""
    sites = {}
    for number in range((devices + 9) // 10):
        site = {
            "queue": number % 6 + 1,
            "generator": {"fuel": "8h"},
            "devices": {
                "ups-scan-1": {
                    "kind": "ups",
                    "rated_power_w": 40000,
                    "battery_wh": 12000,
                    "blocks": 40,
                },
                "ups-scan-2": {
                    "kind": "ups",
                    "rated_power_w": 40000,
                    "battery_wh": 12000,
                    "blocks": 40,
                },
                "ups-it": {"kind": "ups", "base_load_w": 900},
                "scanner-1": {"kind": "scanner", "fed_by": "ups-scan-1"},
                "scanner-2": {"kind": "scanner", "fed_by": "ups-scan-2"},
                "scanner-3": {"kind": "scanner", "fed_by": "site"},
                "radio-1": {"kind": "radio", "plant_voltage": 48.0},
                "radio-2": {"kind": "radio"},
                "radio-3": {"kind": "radio"},
                "radio-4": {"kind": "radio"},
            },
        }
        sites[f"site-{number:03d}"] = site
    return Fleet.model_validate({"name": "bench", "sites": sites})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--out", help="record here (default: a temporary file, deleted)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary file")
    args = parser.parse_args()

    fleet = synthetic_fleet(args.devices)
    text = yaml.safe_dump(
        {
            "name": "bench",
            "seed": 7,
            "duration": f"{args.hours}h",
            "timeline": [{"at": "0s", "rolling_outages": {"block": "4h", "queues_off": [2, 3, 1]}}],
        }
    )
    scenario = parse_scenario(YamlDocument("bench.yaml", yaml.safe_load(text), None), fleet)
    out = args.out or tempfile.mktemp(prefix="kordon-bench-", suffix=".jsonl")
    started = time.perf_counter()
    run = ScenarioRun(scenario)
    with open(out, "wb", buffering=1 << 20) as stream, Recorder(stream) as recorder:
        for chunk in run.record_chunks():
            recorder.write_chunk(chunk)
    wall = time.perf_counter() - started
    size = os.path.getsize(out)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024.0
    cpu = usage.ru_utime + usage.ru_stime
    devices = len(run.devices)
    print(f"devices          {devices}")
    print(f"simulated        {args.hours:g} h at {scenario.tick:g} s ticks")
    print(f"events recorded  {recorder.lines:,}")
    print(f"file             {size / 1e6:,.0f} MB")
    print(f"wall time        {wall:.1f} s ({recorder.lines / wall:,.0f} events/s)")
    print(f"CPU time         {cpu:.1f} s (user+sys, both threads; wall > CPU means waiting)")
    print(f"peak RSS         {peak_mb:.0f} MB")
    print(f"load average     {os.getloadavg()[0]:.2f} (other work on the machine slows wall time)")
    if not args.out and not args.keep:
        os.unlink(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
