"""The collector's counters, exposed in the Prometheus text format and logged periodically.

Plain integers on the hot path (an increment is one bytecode, and the GIL makes it atomic
enough for counters read by a scraper); :meth:`CollectorStats.collect` turns them into
metric families when /metrics is scraped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CollectorStats(Collector):
    def __init__(self) -> None:
        self.messages_received = 0
        self.readings_accepted = 0
        self.status_received = 0
        self.deadlettered = 0
        self.deadletter_reasons: dict[str, int] = {}
        self.lines_written = 0
        self.lines_rejected = 0
        self.write_batches = 0
        self.write_errors = 0
        self.write_latency_sum = 0.0
        self.write_latency_buckets = [0] * (len(_LATENCY_BUCKETS) + 1)
        self.seq_gaps: dict[tuple[str, str, str], int] = {}
        self.seq_restarts = 0
        self.mqtt_connects = 0
        self.resubscribes = 0
        # (measurement, stored_as) -> values stored under a derived name (type rule)
        self.values_retyped: dict[tuple[str, str], int] = {}
        self.type_conflicts = 0  # writes the store refused for a field type, then rewritten
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self._lock = threading.Lock()

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self._gauges[name] = (help_text, read)

    def count_deadletter(self, reason_class: str) -> None:
        self.deadlettered += 1
        self.deadletter_reasons[reason_class] = self.deadletter_reasons.get(reason_class, 0) + 1

    def count_retyped(self, measurement: str, stored_as: str) -> None:
        key = (measurement, stored_as)
        self.values_retyped[key] = self.values_retyped.get(key, 0) + 1

    def observe_write(self, seconds: float, lines: int) -> None:
        with self._lock:
            self.write_batches += 1
            self.lines_written += lines
            self.write_latency_sum += seconds
            for index, bound in enumerate(_LATENCY_BUCKETS):
                if seconds <= bound:
                    self.write_latency_buckets[index] += 1
                    break
            else:
                self.write_latency_buckets[-1] += 1

    def summary(self) -> str:
        gauges = " ".join(
            f"{name.removeprefix('kordon_collector_')}={read():.0f}"
            for name, (_, read) in self._gauges.items()
        )
        return (
            f"received={self.messages_received} readings={self.readings_accepted} "
            f"written={self.lines_written} deadlettered={self.deadlettered} "
            f"write_errors={self.write_errors} seq_gaps={sum(self.seq_gaps.values())} "
            f"retyped={sum(self.values_retyped.values())} type_conflicts={self.type_conflicts} "
            f"{gauges}"
            + "".join(
                f" deadletter.{reason}={count}"
                for reason, count in sorted(self.deadletter_reasons.items())
            )
        )

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        p = "kordon_collector_"
        simple = (
            ("messages_received", "MQTT messages received", self.messages_received),
            ("readings_accepted", "readings validated and spooled", self.readings_accepted),
            ("status_received", "availability messages received", self.status_received),
            ("lines_written", "lines written to InfluxDB", self.lines_written),
            ("lines_rejected", "lines InfluxDB refused for good", self.lines_rejected),
            ("write_errors", "failed InfluxDB write attempts", self.write_errors),
            ("seq_restarts", "sequence restarts (device reboots)", self.seq_restarts),
            ("mqtt_connects", "MQTT connections established", self.mqtt_connects),
            ("resubscribes", "subscriptions made after a lost session", self.resubscribes),
            (
                "type_conflicts",
                "writes the store refused for a field's type, rewritten by the type rule",
                self.type_conflicts,
            ),
        )
        for name, help_text, value in simple:
            yield CounterMetricFamily(p + name, help_text, value=value)
        dead = CounterMetricFamily(
            p + "deadlettered", "messages sent to the dead letter topic", labels=["reason"]
        )
        for reason, value in sorted(self.deadletter_reasons.items()):
            dead.add_metric([reason], value)
        yield dead
        retyped = CounterMetricFamily(
            p + "values_retyped",
            "values stored under a derived name because their field holds another type",
            labels=["kind", "stored_as"],
        )
        for labels, value in sorted(self.values_retyped.items()):
            retyped.add_metric(list(labels), value)
        yield retyped
        gaps = CounterMetricFamily(
            p + "seq_gaps", "readings missing by seq, per device", labels=["site", "kind", "device"]
        )
        for labels, value in sorted(self.seq_gaps.items()):
            gaps.add_metric(list(labels), value)
        yield gaps
        with self._lock:
            buckets = list(self.write_latency_buckets)
            total = self.write_latency_sum
        cumulative, running = [], 0
        for bound, count in zip((*_LATENCY_BUCKETS, float("inf")), buckets, strict=True):
            running += count
            cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
        yield HistogramMetricFamily(
            p + "write_latency_seconds",
            "InfluxDB write latency",
            buckets=cumulative,
            sum_value=total,
        )
        for name, (help_text, read) in self._gauges.items():
            yield GaugeMetricFamily(name, help_text, value=read())
