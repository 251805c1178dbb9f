"""Everything a request handler needs, built once by the role and kept on ``app.state``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from api.auth import TokenBook
from api.live import LiveFollower
from api.scenarios import ScenarioRunner
from api.state import DeviceStates
from api.stats import ApiStats
from kordon.clock import Clock
from kordon.config import Settings
from kordon.storage.telemetry import TelemetryStore, open_telemetry_store


class InfluxPool:
    """One telemetry store client per worker thread (an HTTP client is not shared), or the
    one embedded SQLite store, which serialises access itself."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.influx
        self._shared = settings.influx.url.startswith("sqlite:")
        self._local = threading.local()
        self._clients: list[TelemetryStore] = []
        self._lock = threading.Lock()

    def get(self) -> TelemetryStore:
        if self._shared:
            with self._lock:
                if not self._clients:
                    self._clients.append(open_telemetry_store(self._settings))
                return self._clients[0]
        client = getattr(self._local, "client", None)
        if client is None:
            client = open_telemetry_store(self._settings)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()


@dataclass
class ApiContext:
    settings: Settings
    clock: Clock
    tokens: TokenBook
    states: DeviceStates
    influx: InfluxPool
    scenarios: ScenarioRunner
    stats: ApiStats
    alerts: Any = None  # api.alerts.AlertsBackend when the alert store is available
    live: LiveFollower | None = None
    extra: dict[str, Any] = field(default_factory=dict)
