"""Alert transitions to the measurement ``alerts`` of the telemetry store (Grafana annotations).

Tags ``alertname``, ``site``, ``device``, ``severity``, ``state``; fields ``summary``,
``description``, ``fingerprint`` (and ``note`` when the alert has one). They go through the
same :class:`~kordon.storage.telemetry.TelemetryStore` as the collector's readings, so they land in
InfluxDB in production and in the embedded SQLite store in ``kordon demo``. The engine must
never wait for or fail on the store: events go into a bounded buffer that a thread writes in
batches. While the store is down the buffer holds the newest ``influx_buffer`` events; older
ones are dropped and counted (``dropped``), because annotations are a convenience and alert
state lives in the alert store.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from alerts.engine import Transition
from kordon.storage.lineprotocol import encode_line
from kordon.storage.telemetry import (
    ALERTS_MEASUREMENT,
    StoreDatabaseMissing,
    StoreError,
    TelemetryStore,
)

log = logging.getLogger("alerts.annotations")


def annotation_line(event: Transition) -> str:
    labels = event.labels
    fields = {
        "summary": event.annotations.get("summary", ""),
        "description": event.annotations.get("description", ""),
        "fingerprint": event.fingerprint,
    }
    note = event.annotations.get("note")
    if note:  # e.g. ended by a change of clock (alerts.settle)
        fields["note"] = note
    return encode_line(
        ALERTS_MEASUREMENT,
        {
            "alertname": labels.get("alertname", ""),
            "site": labels.get("site", ""),
            "device": labels.get("device", ""),
            "severity": labels.get("severity", ""),
            "state": event.state.value,
        },
        fields,
        int(event.at * 1e9),
    )


class AnnotationWriter:
    """``open_store`` opens the telemetry store at :meth:`start` (e.g.
    ``functools.partial(open_telemetry_store, settings.influx)``); the writer closes it."""

    def __init__(
        self,
        open_store: Callable[[], TelemetryStore],
        capacity: int,
        retry_max: float = 30.0,
        create_database: bool = True,
    ) -> None:
        self.open_store = open_store
        self._store: TelemetryStore | None = None
        self.create_database = create_database
        self.capacity = max(capacity, 1)
        self.retry_max = retry_max
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts-influx", daemon=True)
        self.written = 0
        self.dropped = 0
        self.failing = False

    def start(self) -> None:
        self._store = self.open_store()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._event.set()
        self._thread.join(timeout)

    def submit(self, event: Transition) -> None:
        self.submit_line(annotation_line(event))

    def submit_line(self, line: str) -> None:
        """Any line for the same store (the learned ``battery_health`` points too)."""
        with self._lock:
            if len(self._queue) >= self.capacity:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(line)
        self._event.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _run(self) -> None:
        client = self._store
        assert client is not None, "start() opens the store"
        backoff = 0.5
        try:
            while True:
                self._event.wait(1.0)
                self._event.clear()
                with self._lock:
                    batch = list(self._queue)[:5000]
                if not batch:
                    if self._stop.is_set():
                        return
                    continue
                try:
                    client.write(("\n".join(batch) + "\n").encode())
                except StoreDatabaseMissing:
                    if self.create_database and client.create_database():
                        self._event.set()
                        continue
                    if self._stop.wait(backoff):
                        return
                    backoff = min(backoff * 2, self.retry_max)
                    self._event.set()
                    continue
                except StoreError as exc:
                    if not exc.retryable:
                        log.error("the store refused alert annotations (%s); dropping them", exc)
                        self._forget(batch)
                        self.dropped += len(batch)
                        continue
                    if not self.failing:
                        log.warning("telemetry store unavailable for alert annotations: %s", exc)
                    self.failing = True
                    if self._stop.wait(backoff):
                        return
                    backoff = min(backoff * 2, self.retry_max)
                    self._event.set()
                    continue
                self._forget(batch)
                self.written += len(batch)
                self.failing = False
                backoff = 0.5
        finally:
            client.close()

    def _forget(self, batch: list[str]) -> None:
        with self._lock:
            for _ in range(min(len(batch), len(self._queue))):
                self._queue.popleft()
