"""Soak: a steady stream for N minutes through the collector and the alert engine.

    .venv/bin/python -m bench.soak --minutes 30 [--rate 2000]

2,000 UPS devices publish once a second each (2,000 msgs/s at QoS 1) into a real Mosquitto;
``kordon run --roles collector`` and ``kordon run --roles alerts`` run as child processes
against a real InfluxDB and an HTTP webhook receiver. Printed:

- the collector's and the engine's RSS every ``--every`` seconds, and the growth from the
  first sample after warm-up to the last;
- end-to-end lag, publish -> visible in InfluxDB: a probe device publishes a reading every
  second with its send time as ``ts``; a poller queries InfluxDB for it every 20 ms
  (resolution 20 ms plus the query time), p50/p99/max;
- notification latency: every 30 s a probe UPS goes on battery or back (``MainsPowerLost``,
  ``for: 1s``, ``group_wait: 0s``) and back; time from the first on-battery reading to the
  webhook request, p50/max, firing and resolved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from testkit import InfluxServer, MosquittoServer
from testkit.alerts import (
    UPS_ON_MAINS,
    alerts_process,
    ups_on_battery,
    webhook_notify,
)
from testkit.collector import collector_process
from testkit.mqtt import StreamPublisher
from testkit.receivers import WebhookReceiver

RULES = """rules:
  evaluation_interval: 200ms
  MainsPowerLost: {for: 1s}
  DeviceOffline: {default_interval: 30s, min_silence: 120s}
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class LagProbe:
    """One reading a second with its send time as ts; a poller notes when InfluxDB has it."""

    def __init__(self, broker: MosquittoServer, influx: InfluxServer, database: str) -> None:
        self.influx, self.database = influx, database
        self.site = f"probe-{uuid.uuid4().hex[:6]}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{self.site}")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.sent: dict[int, float] = {}
        self.lags: list[float] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._publish, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _publish(self) -> None:
        seq = 0
        while not self._stop.wait(1.0):
            now = time.time()
            self.sent[seq] = now
            payload = orjson.dumps({"ts": now, "seq": seq, "metrics": {"battery.charge": 99.0}})
            self.client.publish(f"kordon/v1/{self.site}/ups/probe/telemetry", payload, qos=1)
            seq += 1

    def _poll(self) -> None:
        seen = -1
        while not self._stop.wait(0.02):
            try:
                rows = self.influx.query(
                    f"SELECT last(seq) FROM ups WHERE site='{self.site}'", self.database
                )
            except Exception:  # the database may be busy; try again
                continue
            if rows and rows[0]["last"] is not None and int(rows[0]["last"]) > seen:
                now = time.time()
                for seq in range(seen + 1, int(rows[0]["last"]) + 1):
                    if seq in self.sent:
                        self.lags.append(now - self.sent[seq])
                seen = int(rows[0]["last"])

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="msgs/s (devices at 1 Hz)")
    parser.add_argument("--every", type=float, default=30.0, help="RSS sample interval, s")
    parser.add_argument("--warmup", type=float, default=60.0, help="RSS baseline after, s")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kordon-soak-"))
    broker, influx = MosquittoServer(base / "mosquitto"), InfluxServer(base / "influxdb")
    broker.start()
    influx.start()
    hook = WebhookReceiver().start()
    database = "soak"
    notify = webhook_notify(hook.url("/oncall"))
    collector = collector_process(base, broker, influx, database, client_id="soak-collector")
    engine = alerts_process(
        base, broker, notify, influx=influx, database=database, rules=RULES, name="soak-alerts"
    )
    collector.start(ready_line="collector ready")
    engine.start(ready_line="alerts ready")
    assert collector.process is not None and engine.process is not None
    pids = {"collector": collector.process.pid, "alerts": engine.process.pid}
    devices = int(args.rate)
    stream = StreamPublisher(
        broker.host,
        broker.port,
        "soak",
        devices=devices,
        rate=args.rate,
        start_ts=int(time.time()),
    ).start()
    probe = LagProbe(broker, influx, database)
    alert_site = f"alert-{uuid.uuid4().hex[:6]}"
    alert_pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"ap-{alert_site}")
    alert_pub.connect(broker.host, broker.port)
    alert_pub.loop_start()
    watch = HookWatch(hook)
    started = time.monotonic()
    end = started + args.minutes * 60
    samples: list[tuple[float, float, float]] = []
    latencies: dict[str, list[float]] = {"firing": [], "resolved": []}
    next_sample = started
    next_flip, on_battery, flip_at, seq = started + 20, False, 0.0, 0
    print(f"soak: {devices} devices at 1 Hz = {args.rate:.0f} msgs/s for {args.minutes} min")
    print("   t(s)  collector RSS MB  alerts RSS MB  sent")
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_sample:
                row = (now - started, rss_mb(pids["collector"]), rss_mb(pids["alerts"]))
                samples.append(row)
                print(f"{row[0]:7.0f}  {row[1]:16.1f}  {row[2]:13.1f}  {stream.sent}", flush=True)
                next_sample += args.every
            if now >= next_flip:
                on_battery = not on_battery
                flip_at, next_flip = time.time(), now + 30
            values = ups_on_battery(80.0) if on_battery else dict(UPS_ON_MAINS)
            values.pop("_drain", None)
            for kind, device, metrics in (
                ("ups", "ups-1", values),
                ("radio", "radio-1", {"power.source": "mains", "supply.voltage": 54.0}),
            ):
                payload = orjson.dumps({"ts": time.time(), "seq": seq, "metrics": metrics})
                alert_pub.publish(f"kordon/v1/{alert_site}/{kind}/{device}/telemetry", payload, 1)
            seq += 1
            status = "firing" if on_battery else "resolved"
            if flip_at and watch.count(status) > len(latencies[status]):
                latencies[status].append(watch.last(status) - flip_at)
                flip_at = 0.0
            time.sleep(0.25)
    finally:
        probe.stop()
        watch.stop()
        stream.stop(settle=60)
        alert_pub.loop_stop()
        collector_rc = collector.stop()
        engine_rc = engine.stop()
        hook.stop()
        broker.stop()
        influx.stop()
    base_row = next((s for s in samples if s[0] >= args.warmup), samples[0])
    last = samples[-1]
    print(f"\nacknowledged by the broker: {len(stream.acked)} readings")
    for index, name in ((1, "collector"), (2, "alerts")):
        growth = (last[index] / base_row[index] - 1) * 100
        print(
            f"{name} RSS: {base_row[index]:.1f} MB at {base_row[0]:.0f} s -> {last[index]:.1f} MB "
            f"at {last[0]:.0f} s ({growth:+.1f} %)"
        )
    lags = probe.lags
    print(
        f"end-to-end lag publish->InfluxDB ({len(lags)} probes): p50 {pct(lags, 0.5) * 1000:.0f} "
        f"ms, p99 {pct(lags, 0.99) * 1000:.0f} ms, max {max(lags, default=0) * 1000:.0f} ms"
    )
    for status, values in latencies.items():
        if values:
            print(
                f"notification latency ({status}, {len(values)}): p50 "
                f"{statistics.median(values):.2f} s, max {max(values):.2f} s "
                "(includes for: 1s and the 200 ms evaluation interval)"
            )
    print(f"exit codes: collector {collector_rc}, alerts {engine_rc}")
    return 0


class HookWatch:
    """Notes when each webhook request arrived (polls the receiver every 10 ms)."""

    def __init__(self, hook: WebhookReceiver) -> None:
        self.hook = hook
        self.arrivals: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            bodies = self.hook.bodies()
            now = time.time()
            for body in bodies[len(self.arrivals) :]:
                self.arrivals.append((now, body["status"]))

    def count(self, status: str) -> int:
        return sum(1 for _, s in self.arrivals if s == status)

    def last(self, status: str) -> float:
        return [t for t, s in self.arrivals if s == status][-1]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


if __name__ == "__main__":
    sys.exit(main())
