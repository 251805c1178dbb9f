"""Decode benchmark: the collector's per-message hot path alone, in this process, no I/O.

Runs :meth:`collector.ingest.Ingest.handle` (topic cache, decode, validate, encode to line
protocol, spool records, seq tracking) over the same UPS streams as ``bench/ingest.py``: single
readings and batches of 10, 9 NUT metrics each. Prints the best of ``--repeat`` runs in
microseconds of this thread's CPU time per reading: CPU time leaves out the time the thread
waited for a core, and the best run is the one least disturbed by other processes, which
makes the figure comparable between two versions of the code on a busy machine.

Usage: ``.venv/bin/python -m bench.decode [--messages 5000] [--repeat 30]``
"""

from __future__ import annotations

import argparse
import time

from bench.ingest import batch_stream, single_stream
from collector.ingest import Ingest
from collector.stats import CollectorStats
from kordon.model.payload import DecodeLimits


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
    for name, stream, readings in (
        ("single readings", single, len(single)),
        ("batches of 10", batches, len(batches) * 10),
    ):
        us = best_us_per_reading(stream, readings, args.repeat)
        print(f"{name:16} {us:6.2f} us/reading  ({1e6 / us:,.0f} readings/s, one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
