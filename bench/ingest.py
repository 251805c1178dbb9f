"""Ingest benchmark: one collector process against the physical limits of the same machine.

The stream: 1,000 simulated UPS devices, 9 NUT metrics per reading, published at QoS 1 into
a persistent session while its consumer is away, then drained. Each consumer gets the same
backlog, so the figures compare like with like:

- ``mosquitto_sub``: the broker's raw delivery rate (the physical limit here);
- a bare paho-mqtt subscriber that does nothing with the messages (the client library's own
  ceiling, which the collector cannot beat);
- InfluxDB's own write rate for the same readings, already encoded as line protocol, posted
  by one client in 1 MiB bodies as the collector's writer does (the database's ceiling);
- the collector: decode, validate, spool with fsync, acknowledge, write to InfluxDB. Its rate
  counts until the last reading is queryable in InfluxDB.

The backlog stays under Mosquitto 2.0.11's 65,535-message loss threshold (design brief).
Usage: ``python -m bench.ingest [--messages 60000] [--batch-messages 6000] [--protocol 3.1.1]``
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench.common import peak_rss_mb, publish_all, scrape, start_servers
from collector import records
from collector.ingest import Ingest
from collector.stats import CollectorStats
from kordon.model.payload import DecodeLimits
from testkit import InfluxServer, KordonProcess, MosquittoServer, free_port
from testkit.collector import kordon_env

DEVICES = 1000
TS0 = 1_790_000_000


def reading(rng: random.Random, seq: int, ts: float) -> dict:
    return {
        "ts": ts,
        "seq": seq,
        "metrics": {
            "ups.status": "OL CHRG" if seq % 50 else "OB DISCHRG",
            "battery.charge": round(rng.uniform(40, 100), 1),
            "battery.runtime": round(rng.uniform(600, 4000)),
            "battery.voltage": round(rng.uniform(25.5, 27.4), 2),
            "input.voltage": round(rng.uniform(220, 235), 1),
            "input.frequency": 50.0,
            "output.voltage": 230.0,
            "ups.load": round(rng.uniform(20, 60), 1),
            "ups.temperature": round(rng.uniform(22, 35), 1),
        },
    }


def single_stream(count: int, site: str) -> list[tuple[str, bytes]]:
    rng = random.Random(1)
    out = []
    for i in range(count):
        device, seq = i % DEVICES, i // DEVICES
        topic = f"kordon/v1/{site}/ups/ups-{device:04d}/telemetry"
        out.append((topic, orjson.dumps(reading(rng, seq, TS0 + seq * 10))))
    return out


def batch_stream(messages: int, per_message: int, site: str) -> list[tuple[str, bytes]]:
    rng = random.Random(2)
    out = []
    for i in range(messages):
        device, round_ = i % DEVICES, i // DEVICES
        base = round_ * per_message
        batch = [reading(rng, base + k, TS0 + (base + k) * 10) for k in range(per_message)]
        out.append((f"kordon/v1/{site}/ups/ups-{device:04d}/telemetry", orjson.dumps(batch)))
    return out


def drain_mosquitto_sub(broker: MosquittoServer, stream: list[tuple[str, bytes]]) -> float:
    client_id = f"bench-sub-{uuid.uuid4().hex[:6]}"
    topic = "kordon/v1/+/+/+/telemetry"
    base = [
        "mosquitto_sub",
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-q",
        "1",
        "-c",
        "-i",
        client_id,
        "-t",
        topic,
    ]
    # Create the persistent session, then leave.
    subprocess.run([*base, "-W", "1", "-C", "1"], capture_output=True, check=False)
    publish_all(broker.host, broker.port, stream)
    started = time.perf_counter()
    subprocess.run(
        [*base, "-C", str(len(stream))], stdout=subprocess.DEVNULL, check=True, timeout=600
    )
    return len(stream) / (time.perf_counter() - started)


BARE_PAHO = Path(__file__).with_name("bare_paho_sub.py")


def drain_bare_paho(
    broker: MosquittoServer, stream: list[tuple[str, bytes]], protocol: str
) -> float:
    client_id = f"bench-paho-{uuid.uuid4().hex[:6]}"
    args = [sys.executable, str(BARE_PAHO), broker.host, str(broker.port), client_id]
    subprocess.run([*args, "0", protocol], check=True, capture_output=True)
    publish_all(broker.host, broker.port, stream)
    out = subprocess.run(
        [*args, str(len(stream)), protocol], check=True, capture_output=True, text=True, timeout=600
    )
    return float(out.stdout.strip())


def influx_raw_write(influx: InfluxServer, stream: list[tuple[str, bytes]]) -> float:
    """Lines/s InfluxDB takes from one client posting the stream's line protocol in 1 MiB."""
    ingest = Ingest(CollectorStats(), DecodeLimits(max_future_seconds=1e10))
    lines = [
        records.body(record)
        for topic, payload in stream
        for record in ingest.handle(topic, payload, time.time()).records
    ]
    bodies, current, size = [], [], 0
    for line in b"\n".join(lines).split(b"\n"):
        current.append(line)
        size += len(line) + 1
        if size >= 1 << 20:
            bodies.append(b"\n".join(current))
            current, size = [], 0
    if current:
        bodies.append(b"\n".join(current))
    database = f"bench_raw_{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=influx.url, timeout=60) as client:
        client.post("/query", params={"q": f"CREATE DATABASE {database}"}).raise_for_status()
        started = time.perf_counter()
        for body in bodies:
            client.post("/write", params={"db": database}, content=body).raise_for_status()
        elapsed = time.perf_counter() - started
    return sum(body.count(b"\n") + 1 for body in bodies) / elapsed


def drain_collector(
    broker: MosquittoServer,
    influx: InfluxServer,
    stream: list[tuple[str, bytes]],
    readings: int,
    protocol: str,
    workdir: Path,
) -> tuple[float, float, float, float]:
    """(readings/s into InfluxDB, readings/s into the spool, messages/s, peak RSS MB).

    "Into the spool" is the ingest side alone: decoded, validated, fsynced and acknowledged
    to the broker; the writer to InfluxDB runs beside it on the same cores.
    """
    database = f"bench_{uuid.uuid4().hex[:6]}"
    client_id = f"bench-collector-{uuid.uuid4().hex[:6]}"
    config = workdir / f"{client_id}.yaml"
    # A shared group of its own: an earlier run's collector keeps its persistent session in
    # its group and would go on receiving half the stream into its queue (design brief).
    port = free_port()
    config.write_text(
        f'mqtt:\n  protocol: "{protocol}"\n  client_id: {client_id}\n'
        f"  shared_group: {client_id}\n"
        f'collector:\n  stats_interval: 600s\n  metrics_addr: "127.0.0.1:{port}"\n'
    )
    env = kordon_env(config, broker, influx, database, workdir / "data")
    process = KordonProcess(["run", "--roles", "collector"], env, workdir / client_id)
    process.start(ready_line="collector ready")  # creates the persistent session
    process.stop()
    publish_all(broker.host, broker.port, stream)
    # The clock starts once the collector is connected (Python start-up is not ingest).
    process.start(ready_line="collector ready")
    started = time.perf_counter()
    assert process.process is not None
    pid = process.process.pid
    spooled_after = None
    while True:
        if spooled_after is None:
            accepted = scrape(port).get("kordon_collector_readings_accepted_total", 0)
            if accepted >= readings:
                spooled_after = time.perf_counter() - started
        rows = influx.query('SELECT count("battery.charge") FROM ups', database)
        stored = rows[0]["count"] if rows else 0
        if stored >= readings:
            break
        if time.perf_counter() - started > 600:
            raise RuntimeError(
                f"only {stored} of {readings} readings arrived:\n" + process.tail_log()
            )
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    rss = peak_rss_mb(pid)
    process.stop()
    spooled_after = spooled_after or elapsed
    return readings / elapsed, readings / spooled_after, len(stream) / elapsed, rss


def backlog_on_disk(
    broker: MosquittoServer,
    influx: InfluxServer,
    stream: list[tuple[str, bytes]],
    readings: int,
    workdir: Path,
) -> str:
    """InfluxDB away while the whole stream arrives: the backlog must go to disk, not RAM."""
    database = f"bench_{uuid.uuid4().hex[:6]}"
    client_id = f"bench-backlog-{uuid.uuid4().hex[:6]}"
    config = workdir / f"{client_id}.yaml"
    port = free_port()
    config.write_text(
        f"mqtt:\n  client_id: {client_id}\ncollector:\n  retry_max: 1s\n"
        f'  metrics_addr: "127.0.0.1:{port}"\n'
    )
    env = kordon_env(config, broker, influx, database, workdir / "data")
    process = KordonProcess(["run", "--roles", "collector"], env, workdir / client_id)
    influx.stop()
    process.start(ready_line="collector ready")
    assert process.process is not None
    pid = process.process.pid
    baseline = peak_rss_mb(pid)
    publish_all(broker.host, broker.port, stream)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        metrics = scrape(port)
        if metrics.get("kordon_collector_readings_accepted_total", 0) >= readings:
            break
        time.sleep(0.2)
    spooled = scrape(port)["kordon_collector_spool_backlog_bytes"] / 1e6
    rss_with_backlog = peak_rss_mb(pid)
    influx.start()
    started = time.perf_counter()
    while True:
        try:
            rows = influx.query('SELECT count("battery.charge") FROM ups', database)
        except RuntimeError:  # the collector has not re-created the database yet
            rows = []
        if rows and rows[0]["count"] >= readings:
            break
        if time.perf_counter() - started > 600:
            raise RuntimeError("backlog did not drain")
        time.sleep(0.1)
    drain = readings / (time.perf_counter() - started)
    rss_after = peak_rss_mb(pid)
    process.stop()
    return (
        f"[backlog] InfluxDB down while {readings:,} readings arrived: {spooled:.0f} MB "
        f"spooled on disk; peak RSS {baseline:.0f} MB before, {rss_with_backlog:.0f} MB "
        f"with the backlog, {rss_after:.0f} MB after draining it at {drain:,.0f} "
        "readings/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--batch-messages", type=int, default=6_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--protocol", choices=["3.1.1", "5", "both"], default="both")
    args = parser.parse_args()
    if max(args.messages, args.batch_messages) > 65_000:
        parser.error("keep the backlog under Mosquitto 2.0.11's 65,535-message threshold")
    protocols = ["3.1.1", "5"] if args.protocol == "both" else [args.protocol]
    workdir = Path(tempfile.mkdtemp(prefix="kordon-bench-ingest-"))
    broker, influx, _ = start_servers(workdir)
    print(f"cpus={os.cpu_count()} devices={DEVICES} metrics/reading=9", flush=True)
    try:
        print(
            f"building streams: {args.messages} single-reading messages, "
            f"{args.batch_messages} x {args.batch_size}-reading batches",
            flush=True,
        )
        single = single_stream(args.messages, "bench")
        batched = batch_stream(args.batch_messages, args.batch_size, "benchb")
        n_batched = args.batch_messages * args.batch_size
        results: list[str] = []
        for name, stream, readings in (
            ("single", single, args.messages),
            ("batched", batched, n_batched),
        ):
            per_message = readings / len(stream)
            raw = drain_mosquitto_sub(broker, stream)
            print(
                f"[{name}] mosquitto_sub raw delivery: {raw:,.0f} msg/s "
                f"({raw * per_message:,.0f} readings/s)",
                flush=True,
            )
            database_rate = influx_raw_write(influx, stream)
            print(
                f"[{name}] InfluxDB raw write, one client: {database_rate:,.0f} readings/s",
                flush=True,
            )
            for protocol in protocols:
                bare = drain_bare_paho(broker, stream, protocol)
                print(
                    f"[{name}] bare paho subscriber (MQTT {protocol}): {bare:,.0f} msg/s",
                    flush=True,
                )
                rate, spool_rate, msg_rate, rss = drain_collector(
                    broker, influx, stream, readings, protocol, workdir
                )
                line = (
                    f"[{name}] collector (MQTT {protocol}): {rate:,.0f} readings/s into "
                    f"InfluxDB ({msg_rate:,.0f} msg/s), {spool_rate:,.0f} readings/s "
                    f"acknowledged into the spool; {msg_rate / raw:.0%} of "
                    f"mosquitto_sub, {msg_rate / bare:.0%} of bare paho, "
                    f"{rate / database_rate:.0%} of InfluxDB's raw write; "
                    f"peak RSS {rss:.0f} MB"
                )
                print(line, flush=True)
                results.append(line)
        line = backlog_on_disk(broker, influx, batched, n_batched, workdir)
        print(line, flush=True)
        results.append(line)
        print("\nsummary:")
        for line in results:
            print("  " + line)
    finally:
        broker.stop()
        influx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
