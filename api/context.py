"""Everything a request handler needs, built once by the role and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.auth import TokenBook
from api.live import LiveFollower
from api.scenarios import ScenarioRunner
from api.state import DeviceStates
from api.stats import ApiStats
from kordon.clock import Clock
from kordon.config import Settings
from kordon.storage.stores import TelemetryStores


@dataclass
class ApiContext:
    settings: Settings
    clock: Clock
    tokens: TokenBook
    states: DeviceStates
    influx: TelemetryStores  # the telemetry store, one per request thread
    scenarios: ScenarioRunner
    stats: ApiStats
    alerts: Any = None  # api.alerts.AlertsBackend when the alert store is available
    live: LiveFollower | None = None
    extra: dict[str, Any] = field(default_factory=dict)
