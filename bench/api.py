"""API latency with 5,000 devices in the stores: ``GET /api/v1/devices`` and a 6-hour history.

Method: Mosquitto and InfluxDB from Debian on this host (as the tests run them). InfluxDB gets
5,000 devices (100 sites of 20 UPS, scanners and radios) with 6 hours of history at one point
per minute, plus 10-second history for the devices whose history is queried; the API runs
as ``kordon run --roles api`` in a process of its own (uvicorn, the live MQTT follower, the
InfluxDB state refresher). A client
with keep-alive then measures, one request at a time, p50 and p99 latency of the full device
list (5,000 entries, about 1.6 MB of JSON) and of a 6-hour telemetry query (two metrics of a
UPS with 10-second data, 60-second steps: 2 × 360 points), then requests per second with
``--clients`` concurrent clients. Targets: p99 < 50 ms (list), < 200 ms (history).

    .venv/bin/python -m bench.api [--devices 5000] [--requests 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from bench.common import peak_rss_mb, start_servers
from kordon.config import Settings
from kordon.storage.influx import InfluxClient
from testkit import KordonProcess, wait_until
from testkit.api import TOKENS, api_settings

KINDS = ("ups", "scanner", "radio")
HISTORY_DEVICES = 20


def _fill(influx: InfluxClient, devices: int, now: float) -> int:
    lines: list[str] = []
    written = 0

    def flush(force: bool = False) -> None:
        nonlocal lines, written
        if lines and (force or len(lines) >= 5000):
            influx.write("\n".join(lines).encode())
            written += len(lines)
            lines = []

    for index in range(devices):
        site, kind = f"site-{index // 50:03d}", KINDS[index % 3]
        device = f"{kind}-{index:05d}"
        step = 10 if index < HISTORY_DEVICES * 3 and kind == "ups" else 60
        for k in range(int(6 * 3600 / step)):
            ts = int((now - 6 * 3600 + k * step) * 1e9)
            if kind == "ups":
                fields = (
                    f'ups.status="OL",battery.charge={90 + k % 10}.0,'
                    f"battery.runtime={1800 + k % 60}.0,input.voltage=230.{k % 10}"
                )
            elif kind == "scanner":
                fields = f'scanner.state="ready",power.source="ups",power.draw={9000 + k % 50}.0'
            else:
                fields = f'power.source="mains",supply.voltage=13.{k % 9},battery.charge=100.0'
            lines.append(f"{kind},device={device},site={site} {fields} {ts}")
            flush()
    flush(force=True)
    return written


def _start_api(workdir: Path, settings: Settings) -> tuple[KordonProcess, str]:
    """``kordon run --roles api`` in a process of its own, as deployed: the benchmark's
    client threads must not share the server's interpreter lock."""
    config = workdir / "api.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", exclude_none=True)))
    process = KordonProcess(
        ["run", "--roles", "api"], {"KORDON_CONFIG": str(config)}, workdir / "api"
    )
    process.start(ready_line="API and operations page on", timeout=60)
    return process, f"http://{settings.api.addr}"


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(len(ordered) * 0.99) - 1] * 1e3


def _latency(client: httpx.Client, paths: list[str]) -> list[float]:
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return samples


def _throughput(url: str, paths: list[str], clients: int, seconds: float) -> float:
    done = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal done
        count = 0
        with httpx.Client(base_url=url, headers=_auth()) as client:
            while time.perf_counter() < stop:
                client.get(random.choice(paths)).raise_for_status()
                count += 1
        with lock:
            done += count

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done / seconds


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS['viewer']}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    broker, influxdb, workdir = start_servers()
    try:
        settings = api_settings(workdir, broker, influxdb, "bench_api", refresh_interval=30.0)
        now = time.time()
        with InfluxClient(settings.influx.target()) as influx:
            influx.create_database()
            started = time.perf_counter()
            lines = _fill(influx, args.devices, now)
            print(f"filled InfluxDB: {lines} lines in {time.perf_counter() - started:.1f} s")
        api, url = _start_api(workdir, settings)
        try:
            with httpx.Client(base_url=url, headers=_auth(), timeout=30) as client:
                wait_until(
                    lambda: len(client.get("/api/v1/devices").json()) >= args.devices,
                    60,
                    what="every device in the API",
                )
                listed = client.get("/api/v1/devices")
                size = len(listed.content)
                _latency(client, ["/api/v1/devices"] * 20)  # warm up
                devices = _latency(client, ["/api/v1/devices"] * args.requests)
                history_paths = [
                    f"/api/v1/devices/site-{i // 50:03d}:ups-{i:05d}/telemetry"
                    "?metric=battery.charge&metric=input.voltage&start=now-6h&step=60s"
                    for i in range(0, HISTORY_DEVICES * 3, 3)
                ]
                sample = client.get(history_paths[0]).json()
                points = sum(len(s["points"]) for s in sample["series"])
                history = _latency(client, [random.choice(history_paths) for _ in range(300)])
            list_rps = _throughput(url, ["/api/v1/devices"], args.clients, args.seconds)
            history_rps = _throughput(url, history_paths, args.clients, args.seconds)
            rss = peak_rss_mb(api.process.pid) if api.process else 0.0
        finally:
            api.stop()
        d50, d99 = _percentiles(devices)
        h50, h99 = _percentiles(history)
        print(f"API process peak RSS: {rss:.0f} MB")
        print()
        print("| request | p50 | p99 | target p99 | requests/s |")
        print("|---|---|---|---|---|")
        print(
            f"| GET /api/v1/devices ({args.devices} devices, {size / 1e6:.1f} MB) "
            f"| {d50:.1f} ms | {d99:.1f} ms | 50 ms | {list_rps:.0f} |"
        )
        print(
            f"| 6-hour telemetry, 2 metrics, 60 s step ({points} points) "
            f"| {h50:.1f} ms | {h99:.1f} ms | 200 ms | {history_rps:.0f} |"
        )
        print(f"\nrequests/s with {args.clients} concurrent clients for {args.seconds:g} s each")
        return 0 if d99 < 50 and h99 < 200 else 1
    finally:
        broker.stop()
        influxdb.stop()


if __name__ == "__main__":
    sys.exit(main())
