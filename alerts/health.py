"""Is the alert engine doing its job? Readiness, its gauges, and the role's own HTTP endpoint.

A process can be alive and useless: the evaluation thread may hang, the broker may drop the
connection, or keep it and stop delivering (Mosquitto's queue limit, a stuck session). Each
shows up here as a check:

* ``evaluation``: the ticker completed an evaluation within ``rules.evaluation_stall``;
* ``mqtt``: connected to the broker;
* ``stream``: a message arrived within ``rules.stream_stall`` (counted from the later of the
  last message and the connection), once the engine knows any device (0 turns it off).

``/readyz`` answers 200 or 503 with the checks; ``kordon_alerts_ready`` and the ages are on
``/metrics`` (the API's, when the roles share a process, and this endpoint's). The Watchdog
(:mod:`alerts.watchdog`) is sent only while ready. ``rules.metrics_addr`` turns the endpoint on:
``/healthz``, ``/readyz``, ``/metrics``, no token (bind it to a private address).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kordon import metrics
from kordon.config import split_host_port

log = logging.getLogger("alerts.health")


class Readiness:
    def __init__(
        self,
        evaluation_stall: float,
        stream_stall: float,
        connected: Callable[[], bool],
        has_devices: Callable[[], bool],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.evaluation_stall = evaluation_stall
        self.stream_stall = stream_stall
        self.connected = connected
        self.has_devices = has_devices
        self.monotonic = monotonic
        start = monotonic()
        self.last_tick = start
        self.last_message: float | None = None
        self.connected_at = start

    # Called from the ticker and the MQTT thread: plain float stores, no lock needed.
    def ticked(self) -> None:
        self.last_tick = self.monotonic()

    def message(self) -> None:
        self.last_message = self.monotonic()

    def on_connect(self) -> None:
        self.connected_at = self.monotonic()

    def evaluation_age(self) -> float:
        return self.monotonic() - self.last_tick

    def stream_age(self) -> float:
        since = self.connected_at if self.last_message is None else max(
            self.last_message, self.connected_at
        )
        return self.monotonic() - since

    def checks(self) -> dict[str, dict[str, Any]]:
        age = self.evaluation_age()
        connected = self.connected()
        stream = self.stream_age()
        watch_stream = self.stream_stall > 0 and self.has_devices()
        stream_ok = not connected or not watch_stream or stream <= self.stream_stall
        return {
            "evaluation": {
                "ok": age <= self.evaluation_stall,
                "detail": f"last evaluation {age:.1f} s ago (limit {self.evaluation_stall:g} s)",
            },
            "mqtt": {
                "ok": connected,
                "detail": "connected to the broker" if connected else "broker connection lost",
            },
            "stream": {
                "ok": connected and stream_ok,
                "detail": (
                    f"last message {stream:.1f} s ago (limit {self.stream_stall:g} s)"
                    if watch_stream else "not watched (no devices known, or stream_stall 0)"
                ),
            },
        }

    def ready(self) -> bool:
        return all(check["ok"] for check in self.checks().values())


class HealthMetrics(Collector):
    """``kordon_alerts_*`` gauges and counters, read when /metrics is scraped."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {
            "kordon_alerts_ready": ("1 while /readyz is 200", lambda: float(readiness.ready())),
            "kordon_alerts_mqtt_connected": (
                "1 while connected to the broker", lambda: float(readiness.connected())
            ),
            "kordon_alerts_last_evaluation_age_seconds": (
                "seconds since the engine last evaluated", readiness.evaluation_age
            ),
            "kordon_alerts_last_message_age_seconds": (
                "seconds since the last MQTT message (or connection)", readiness.stream_age
            ),
        }
        self.counters: dict[str, tuple[str, Callable[[], float]]] = {}

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Names only: the registry calls this at registration, before the role is built."""
        for name, (help_text, _) in self.gauges.items():
            yield GaugeMetricFamily(name, help_text)
        for name, (help_text, _) in self.counters.items():
            yield CounterMetricFamily(name, help_text)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, (help_text, read) in self.gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())
        for name, (help_text, read) in self.counters.items():
            yield CounterMetricFamily(name, help_text, value=read())


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` of the alerts role on ``rules.metrics_addr``."""

    def __init__(self, addr: str, readiness: Readiness) -> None:
        host, port = split_host_port(addr)
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._send(200, "application/json", b'{"status": "ok"}')
                elif path == "/readyz":
                    checks = health.readiness.checks()
                    ok = all(c["ok"] for c in checks.values())
                    body = {"status": "ready" if ok else "not ready", "checks": checks}
                    self._send(200 if ok else 503, "application/json", json.dumps(body).encode())
                elif path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8",
                               metrics.exposition())
                else:
                    self._send(404, "application/json", b'{"status": "not found"}')

            def _send(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.readiness = readiness
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.address = f"{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="alerts-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("alerts health on http://%s/readyz (and /metrics, /healthz)", self.address)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
