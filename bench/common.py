"""Shared pieces of the benchmarks: servers, a fast publisher, RSS readings."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from testkit import InfluxServer, MosquittoServer


def start_servers(workdir: Path | None = None) -> tuple[MosquittoServer, InfluxServer, Path]:
    base = workdir or Path(tempfile.mkdtemp(prefix="kordon-bench-"))
    broker = MosquittoServer(base / "mosquitto")
    broker.start()
    influx = InfluxServer(base / "influxdb")
    influx.start()
    return broker, influx, base


def publish_all(
    host: str, port: int, messages: list[tuple[str, bytes]], inflight: int = 2000
) -> float:
    """Publish at QoS 1 as fast as the broker acknowledges; return messages per second.

    The in-flight window is bounded, as paho caps its own queue (paho issue 377).
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(inflight)
    done = threading.Semaphore(0)
    acked = 0
    window = threading.Semaphore(inflight)

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == len(messages):
            done.release()

    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    started = time.perf_counter()
    for topic, payload in messages:
        window.acquire()
        client.publish(topic, payload, qos=1)
    done.acquire()
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return len(messages) / elapsed


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scrape(port: int) -> dict[str, float]:
    """Unlabelled samples of a Prometheus /metrics endpoint on this host."""
    import httpx

    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()[:2]
            samples[name] = float(value)
    return samples
