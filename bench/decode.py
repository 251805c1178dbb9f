"""Decode benchmark: the collector's per-message hot path alone, in this process, no I/O.

Runs :meth:`collector.ingest.Ingest.handle` (topic cache, decode, validate, encode to line
protocol, spool records, seq tracking) over the same UPS streams as ``bench/ingest.py``: single
readings and batches of 10, 9 NUT metrics each; and readings as the NUT bridge sends them from
a real unit (the 9 plus 24 variables Kordon does not type itself, which go through the
collector's field-type table). Prints the best of ``--repeat`` runs in
microseconds of this thread's CPU time per reading: CPU time leaves out the time the thread
waited for a core, and the best run is the one least disturbed by other processes, which
makes the figure comparable between two versions of the code on a busy machine.

Usage: ``.venv/bin/python -m bench.decode [--messages 5000] [--repeat 30]``
"""

from __future__ import annotations

import argparse
import time

import orjson

from bench.ingest import batch_stream, single_stream
from collector.ingest import Ingest
from collector.stats import CollectorStats
from kordon.model.payload import DecodeLimits

# A Smart-UPS-like poll as the NUT bridge publishes it: identities, words and numbers.
_NUT_EXTRA = {
    "battery.charge.low": 10.0, "battery.charge.warning": 50.0, "battery.date": "2019/01/04",
    "battery.mfr.date": "2019/01/04", "battery.runtime.low": 120.0, "battery.temperature": 29.2,
    "battery.type": "PbAc", "battery.voltage.nominal": 24.0, "device.mfr": "American Power",
    "device.model": "Smart-UPS 1500", "device.serial": "AS1234567890", "device.type": "ups",
    "input.sensitivity": "high", "input.transfer.high": 253.0, "input.transfer.low": 208.0,
    "input.transfer.reason": "input voltage out of range", "output.frequency": 50.0,
    "output.voltage.nominal": 230.0, "ups.beeper.status": "enabled", "ups.delay.shutdown": 20.0,
    "ups.firmware": "UPS 09.3 / ID=18", "ups.mfr": "American Power Conversion",
    "ups.serial": "AS1234567890", "ups.status.extra": "TRIM",
}


def nut_stream(count: int, site: str) -> list[tuple[str, bytes]]:
    """Single readings of 33 metrics: the 9 of :func:`single_stream` plus 24 NUT extras."""
    out = []
    for topic, payload in single_stream(count, site):
        document = orjson.loads(payload)
        document["metrics"].update(_NUT_EXTRA)
        out.append((topic, orjson.dumps(document)))
    return out


def best_us_per_reading(stream: list[tuple[str, bytes]], readings: int, repeat: int) -> float:
    best = float("inf")
    now = time.time()
    for _ in range(repeat):
        ingest = Ingest(CollectorStats(), DecodeLimits(max_future_seconds=1e10))
        handle = ingest.handle
        started = time.thread_time()
        for topic, payload in stream:
            handle(topic, payload, now)
        best = min(best, time.thread_time() - started)
        assert ingest.stats.readings_accepted == readings, ingest.stats.summary()
    return best / readings * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    single = single_stream(args.messages, "bench")
    batches = batch_stream(args.messages // 10, 10, "bench")
    nut = nut_stream(args.messages, "bench")
    for name, stream, readings in (
        ("single readings", single, len(single)),
        ("batches of 10", batches, len(batches) * 10),
        ("NUT, 33 metrics", nut, len(nut)),
    ):
        us = best_us_per_reading(stream, readings, args.repeat)
        print(f"{name:16} {us:6.2f} us/reading  ({1e6 / us:,.0f} readings/s, one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
