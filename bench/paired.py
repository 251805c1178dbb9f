"""One collector against two in one MQTT 5 shared group, on the same stream.

The method is ``bench/ingest.py``'s: the stream (1,000 UPS units, 9 NUT metrics a reading)
is published at QoS 1 into the persistent session(s) while the consumer is away, then
drained, so every consumer gets the same backlog. For the pair, both members' sessions are
in the group before the stream is published, so the broker splits the backlog between them
round-robin (about half each). The clock starts when the first member is connected (a
head start for neither) and stops when the last reading is queryable in InfluxDB.

Also printed: the broker's raw delivery of the same stream to ``mosquitto_sub`` (the
physical limit here) and the machine's load, since these 2 cores are shared: the two
collectors, Mosquitto and InfluxDB all run on them.

Usage: ``python -m bench.paired [--messages 60000] [--batch-messages 6000] [--rounds 1]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import publish_all, start_servers
from bench.ingest import batch_stream, drain_mosquitto_sub, single_stream
from testkit import InfluxServer, KordonProcess, MosquittoServer, wait_until
from testkit.collector import kordon_env
from testkit.mqtt import clear_session

Stream = list[tuple[str, bytes]]


def _members(
    broker: MosquittoServer,
    influx: InfluxServer,
    database: str,
    count: int,
    protocol: str,
    workdir: Path,
) -> tuple[list[KordonProcess], list[str]]:
    run = uuid.uuid4().hex[:6]
    processes, ids = [], []
    for index in range(count):
        client_id = f"bench-pair-{run}-{index}"
        config = workdir / f"{client_id}.yaml"
        # One group per run: members of earlier runs keep their sessions in their group.
        config.write_text(
            f'mqtt:\n  protocol: "{protocol}"\n  client_id: {client_id}\n'
            f"  shared_group: pair-{run}\ncollector:\n  stats_interval: 600s\n"
        )
        env = kordon_env(config, broker, influx, database, workdir / "data")
        processes.append(KordonProcess(["run", "--roles", "collector"], env, workdir / client_id))
        ids.append(client_id)
    return processes, ids


def drain(
    broker: MosquittoServer,
    influx: InfluxServer,
    stream: Stream,
    readings: int,
    collectors: int,
    protocol: str,
    workdir: Path,
) -> float:
    """Readings per second from the first member connected to the last reading stored."""
    database = f"bench_pair_{uuid.uuid4().hex[:6]}"
    processes, ids = _members(broker, influx, database, collectors, protocol, workdir)
    for process in processes:  # create the sessions (and the group), then leave
        process.start(ready_line="collector ready")
    for process in processes:
        process.stop()
    publish_all(broker.host, broker.port, stream)
    offsets = [p.log_path.stat().st_size for p in processes]
    for process in processes:
        process.start()
    ready = [False] * collectors

    def first_ready() -> bool:
        for index, process in enumerate(processes):
            ready[index] = ready[index] or "collector ready" in process.log_since(offsets[index])
        return any(ready)

    wait_until(first_ready, 60, interval=0.005, what="a member connected")
    started = time.perf_counter()
    try:
        while True:
            rows = influx.query('SELECT count("battery.charge") FROM ups', database)
            if rows and rows[0]["count"] >= readings:
                break
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"only {rows} of {readings} stored")
            time.sleep(0.05)
        return readings / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.stop()
        for client_id in ids:
            clear_session(broker.host, broker.port, client_id)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--batch-messages", type=int, default=6_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="repeat and print each round")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kordon-bench-paired-"))
    broker, influx, _ = start_servers(workdir)
    print(f"cpus={os.cpu_count()} load average at start {os.getloadavg()}", flush=True)
    try:
        single = single_stream(args.messages, "bench")
        batched = batch_stream(args.batch_messages, args.batch_size, "benchb")
        for round_ in range(1, args.rounds + 1):
            for name, stream, readings in (
                ("single", single, args.messages),
                ("batched", batched, args.batch_messages * args.batch_size),
            ):
                raw = drain_mosquitto_sub(broker, stream) * readings / len(stream)
                figures = {}
                for label, count, protocol in (
                    ("1 collector, MQTT 3.1.1", 1, "3.1.1"),
                    ("1 collector, MQTT 5 group", 1, "5"),
                    ("2 collectors, MQTT 5 group", 2, "5"),
                ):
                    figures[label] = drain(
                        broker, influx, stream, readings, count, protocol, workdir
                    )
                one = figures["1 collector, MQTT 5 group"]
                parts = [f"mosquitto_sub raw {raw:,.0f} readings/s"] + [
                    f"{label} {rate:,.0f} readings/s ({rate / raw:.0%} of raw)"
                    for label, rate in figures.items()
                ]
                pair = figures["2 collectors, MQTT 5 group"]
                print(
                    f"[round {round_}, {name}, {len(stream):,} messages, {readings:,} readings] "
                    + "; ".join(parts)
                    + f"; pair / one (MQTT 5) = {pair / one:.2f}; "
                    f"load average {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        broker.stop()
        influx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
