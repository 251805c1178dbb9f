"""The API's own counters: requests by route and status, and their latency.

Recorded by a plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs a task
per request), keyed by the route template rather than the raw path so that hostile or
mistyped paths cannot grow the label set without bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
]


class ApiStats(Collector):
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._lock = threading.Lock()

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            buckets = self.latency.setdefault(route, [0] * (len(_BUCKETS) + 1))
            for index, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
                    break
            else:
                buckets[-1] += 1
            self.latency_sum[route] = self.latency_sum.get(route, 0.0) + seconds

    def collect(self) -> Iterator[Any]:
        with self._lock:
            requests = dict(self.requests)
            latency = {route: list(b) for route, b in self.latency.items()}
            sums = dict(self.latency_sum)
        family = CounterMetricFamily(
            "kordon_api_requests", "HTTP requests answered", labels=["method", "route", "status"]
        )
        for labels, value in sorted(requests.items()):
            family.add_metric(list(labels), value)
        yield family
        histogram = HistogramMetricFamily(
            "kordon_api_request_seconds", "time to answer a request", labels=["route"]
        )
        for route, buckets in sorted(latency.items()):
            running, cumulative = 0, []
            for bound, count in zip((*_BUCKETS, float("inf")), buckets, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else str(bound), running))
            histogram.add_metric([route], cumulative, sums[route])
        yield histogram
        for name, (help_text, read) in self.gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())


class StatsMiddleware:
    """Counts requests and adds security headers to every response."""

    def __init__(self, app: Callable[..., Any], stats: ApiStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template.startswith("/static"):
                template = "/static"
            self.stats.observe(
                scope.get("method", ""), template, status, time.perf_counter() - started
            )
