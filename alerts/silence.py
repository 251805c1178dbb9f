"""Silences: label matchers with a start and an end, created by people through the API.

Silences are stored in the alert store (the API writes them); the engine keeps an in-memory
copy and reloads it when SQLite reports a change by another connection.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerts.state import Alert
from kordon.model.alerts import Silence


class Silencer:
    def __init__(self) -> None:
        self.silences: list[Silence] = []

    def load(self, silences: Iterable[Silence]) -> None:
        self.silences = list(silences)

    def apply(self, alerts: Iterable[Alert], now: float) -> None:
        active = [s for s in self.silences if s.active(now)]
        for alert in alerts:
            alert.silenced_by = [s.id for s in active if s.matches(alert.labels)]

    def next_change(self, now: float) -> float | None:
        """The next start or end of a silence: a tick is due then."""
        times = [t for s in self.silences for t in (s.starts_at, s.ends_at) if t > now]
        return min(times) if times else None
