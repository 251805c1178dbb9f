"""Alert engine benchmark: publish-to-webhook latency under load, tick time, memory.

1. Latency. A real Mosquitto, the alerts role as a child process (``kordon run --roles
   alerts``) and a real HTTP webhook receiver. A background publisher sends UPS telemetry
   (QoS 1) at ``--rate`` messages/s from 500 devices; meanwhile, ``--trials`` times, a fresh
   UPS reports OB and we time from its publish to the webhook's receipt, minus the rule's
   ``for`` (1 s; ``group_wait`` 0). Target: p99 < 250 ms beyond ``for``.
2. Tick and memory, in process: ``--devices`` UPS units tracked by one engine; each tick
   follows 10 % of them reporting (10 s interval, 1 s ticks). We time ``Engine.tick`` and,
   separately, the per-message cost of ``Engine.handle``; memory per device is the traced
   allocation growth divided by the device count. Targets: tick < 100 ms at 100,000
   devices, < 2 KB per device.

Run from the repository root: ``.venv/bin/python -m bench.alerts`` (about a minute).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson

from alerts.config import NotifySettings, RulesSettings
from alerts.engine import Engine
from kordon.storage.alert_store import AlertStore


def tick_benchmark(devices: int, ticks: int) -> dict[str, float]:
    rules = RulesSettings()
    notify = NotifySettings(webhook_url="http://127.0.0.1:9/")
    store = AlertStore(":memory:")
    now = 1_800_000_000.0
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    engine = Engine(rules, notify, store, now, fleet=None)
    payloads = [
        orjson.dumps(
            {
                "ts": now,
                "seq": 0,
                "metrics": {
                    "ups.status": "OL",
                    "battery.charge": 100.0,
                    "battery.runtime": 1800.0,
                    "input.voltage": 230.0,
                },
            }
        )
    ]
    topics = [f"kordon/v1/site-{i // 20}/ups/ups-{i}/telemetry" for i in range(devices)]
    for topic in topics:
        engine.handle(topic, payloads[0], now)
    engine.tick(now)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_device = (after - before) / devices
    tick_times, handle_times = [], []
    share = max(devices // 10, 1)
    for n in range(ticks):
        now += 1.0
        chunk = topics[(n * share) % devices : (n * share) % devices + share]
        started = time.perf_counter()
        for topic in chunk:
            engine.handle(topic, payloads[0], now)
        handle_times.append((time.perf_counter() - started) / max(len(chunk), 1))
        started = time.perf_counter()
        engine.tick(now)
        tick_times.append(time.perf_counter() - started)
    store.close()
    tick_times.sort()
    return {
        "tick_p50_ms": statistics.median(tick_times) * 1e3,
        "tick_max_ms": tick_times[-1] * 1e3,
        "handle_us": statistics.median(handle_times) * 1e6,
        "bytes_per_device": per_device,
    }


def latency_benchmark(rate: float, trials: int) -> dict[str, float]:
    from testkit import KordonProcess, MosquittoServer, wait_until
    from testkit.mqtt import Publisher, StreamPublisher
    from testkit.receivers import WebhookReceiver

    work = Path(tempfile.mkdtemp(prefix="kordon-bench-alerts-"))
    broker = MosquittoServer(work / "mosquitto")
    broker.start()
    hook = WebhookReceiver().start()
    config = work / "alerts.yaml"
    config.write_text(
        "rules:\n  write_influx: false\n  MainsPowerLost: {for: 1s}\n"
        "  SitePowerOutage: {enabled: false}\n"
        f"notify:\n  webhook_url: {hook.url()}\n"
        "  route: {group_by: [site, alertname, device], group_wait: 0s}\n"
        "  outbox: {retry_min: 100ms}\n"
    )
    env = {
        "KORDON_CONFIG": str(config),
        "KORDON_MQTT_URL": broker.url,
        "KORDON_DATA_DIR": str(work / "data"),
    }
    engine = KordonProcess(["run", "--roles", "alerts"], env, work / "alerts")
    engine.start(ready_line="alerts ready")
    stream = StreamPublisher(broker.host, broker.port, "bench-load", 500, rate).start()
    trigger = Publisher(broker.host, broker.port)
    latencies = []
    try:
        time.sleep(2.0)  # let the background load reach its rate
        for trial in range(trials):
            device = f"trigger-{trial}"
            topic = f"kordon/v1/bench-{trial}/ups/{device}/telemetry"
            payload = orjson.dumps(
                {"ts": time.time(), "metrics": {"ups.status": "OB DISCHRG", "battery.charge": 90.0}}
            )
            count = len(hook.requests)
            started = time.monotonic()
            trigger.publish(topic, payload)
            wait_until(lambda c=count: len(hook.requests) > c, 10, interval=0.001, what="the page")
            latencies.append(time.monotonic() - started - 1.0)
        sent = stream.sent
    finally:
        stream.stop(settle=30)
        trigger.close()
        engine.stop()
        hook.stop()
        broker.stop()
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "max_ms": latencies[-1] * 1e3,
        "background_msgs": sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    figures = tick_benchmark(args.devices, args.ticks)
    print(
        f"tick, {args.devices:,} tracked devices (10% reporting per tick): "
        f"p50 {figures['tick_p50_ms']:.1f} ms, max {figures['tick_max_ms']:.1f} ms"
    )
    print(f"handle: {figures['handle_us']:.1f} us per telemetry message")
    print(f"memory: {figures['bytes_per_device']:.0f} bytes per tracked device")
    if not args.skip_latency:
        lat = latency_benchmark(args.rate, args.trials)
        print(
            f"publish -> webhook beyond for=1s, {args.rate:.0f} msg/s background: "
            f"p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms"
            f" ({lat['background_msgs']:,} background messages)"
        )


if __name__ == "__main__":
    main()
