"""How fast the demo's publisher gets the default fleet through a broker: amqtt vs Mosquitto.

`kordon demo --speed 300` needs 42 devices x 0.1 msg/s x 300 = 1,260 msg/s. This publishes the
`single-site-blackout` scenario of the default fleet flat out (no pacing) through the real
publisher (one MQTT connection per device, QoS 1, the in-flight window) to each broker, with
the demo's three subscribers attached (collector and alerts at QoS 1, the API's live follower
at QoS 0, each counting what it receives) or none, and prints messages per second.

    .venv/bin/python -m bench.broker_pace [--messages 10000] [--window 2000]

The amqtt broker runs in a process of its own (as in the demo it shares one with the roles:
then it is slower still). Mosquitto is Debian's binary on a free port.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from simulators.engine import ScenarioRun
from simulators.events import Action
from simulators.mqtt import BrokerTarget, FleetConnections
from simulators.scenario import load_scenario


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _amqtt(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    from kordon.embedded_broker import EmbeddedBroker

    broker = EmbeddedBroker(port=port)
    broker.start()
    ready.set()
    threading.Event().wait()


class Counter:
    def __init__(self, port: int, qos: int, name: str) -> None:
        self.count = 0
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name)
        self.client.on_message = self._on_message
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.on_connect = lambda c, *_: c.subscribe("kordon/v1/#", qos)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert done.wait(10)

    def _on_message(self, *_args: object) -> None:
        self.count += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def publish(port: int, messages: int, window: int, subscribers: int) -> dict[str, float]:
    counters = [
        Counter(port, qos, f"bench-sub-{i}")
        for i, qos in enumerate((1, 1, 0)[:subscribers])
    ]
    scenario = load_scenario("single-site-blackout")
    run = ScenarioRun(scenario, start=time.time() - scenario.duration)
    conns = FleetConnections(BrokerTarget("127.0.0.1", port), max_in_flight=window)
    keepalive = {d.client_id: d.keepalive for d in run.devices}
    started = None
    cpu0 = time.process_time()
    for event in run.events():
        conns.handle(event, keepalive.get(event.client_id, 30.0))
        if event.action is Action.PUBLISH and started is None and conns.connected_count() == 42:
            started, base = time.monotonic(), conns.sent
        if started is not None and conns.sent - base >= messages:
            break
    conns.drain(120)
    elapsed = time.monotonic() - (started or time.monotonic())
    cpu = time.process_time() - cpu0
    sent = conns.sent - base
    deadline = time.monotonic() + 60
    while counters and min(c.count for c in counters) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    delivered = time.monotonic() - (started or 0)
    conns.close(clean=False)
    for c in counters:
        c.close()
    return {
        "sent": sent,
        "publish_rate": sent / elapsed,
        "delivered_rate": (sent / delivered) if counters else 0.0,
        "publisher_cpu_s": cpu,
        "received": min((c.count for c in counters), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=2000)
    parser.add_argument("--brokers", default="amqtt,mosquitto")
    parser.add_argument("--subscribers", default="0,3")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores", flush=True)
    for name in args.brokers.split(","):
        for subs in (int(s) for s in args.subscribers.split(",")):
            port = _free_port()
            if name == "amqtt":
                ready = multiprocessing.Event()
                proc: object = multiprocessing.Process(
                    target=_amqtt, args=(port, ready), daemon=True
                )
                proc.start()  # type: ignore[attr-defined]
                ready.wait(20)
                pid = proc.pid  # type: ignore[attr-defined]
            else:
                folder = Path(tempfile.mkdtemp())
                conf = folder / "m.conf"
                conf.write_text(
                    f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    "max_inflight_messages 1000\nmax_queued_messages 100000\n"
                )
                proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
                time.sleep(0.3)
                pid = proc.pid  # type: ignore[attr-defined]
            try:
                if os.environ.get("BENCH_PAUSE"):
                    print(f"broker pid {pid}; publisher pid {os.getpid()}", flush=True)
                    time.sleep(float(os.environ["BENCH_PAUSE"]))
                result = publish(port, args.messages, args.window, subs)
            finally:
                if name == "amqtt":
                    proc.terminate()  # type: ignore[attr-defined]
                else:
                    proc.terminate()  # type: ignore[attr-defined]
                    proc.wait()  # type: ignore[attr-defined]
            print(
                f"{name:9s} subscribers {subs}: {result['sent']:,.0f} msgs published at "
                f"{result['publish_rate']:,.0f} msg/s "
                f"(publisher CPU {result['publisher_cpu_s']:.1f} s)"
                + (
                    f", all delivered to every subscriber at {result['delivered_rate']:,.0f} msg/s"
                    if subs
                    else ""
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
