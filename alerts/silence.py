"""Silences: label matchers with a start and an end, created by people through the API.

Silences are stored in the alert store (the API writes them); the engine keeps an in-memory
copy and reloads it when SQLite reports a change by another connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from alerts.state import Alert
from kordon.model.alerts import Silence


class Silencer:
    def __init__(self) -> None:
        self.silences: list[Silence] = []

    def load(self, silences: Iterable[Silence]) -> None:
        self.silences = list(silences)

    def apply(
        self, alerts: Iterable[Alert], now: float, now_of: Callable[[Alert], float] | None = None
    ) -> None:
        """Mark silenced alerts; each is judged at ``now_of(alert)`` (its site's time: a
        silence of a simulated site is in scenario time), else at ``now``."""
        active = [s for s in self.silences if s.active(now)]
        for alert in alerts:
            if now_of is not None:
                at = now_of(alert)
                if at != now:
                    alert.silenced_by = [
                        s.id for s in self.silences if s.active(at) and s.matches(alert.labels)
                    ]
                    continue
            alert.silenced_by = [s.id for s in active if s.matches(alert.labels)]

    def next_change(self, now: float) -> float | None:
        """The next start or end of a silence: a tick is due then."""
        times = [t for s in self.silences for t in (s.starts_at, s.ends_at) if t > now]
        return min(times) if times else None
