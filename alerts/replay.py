"""Run the real engine over a simulator scenario on the simulated clock, in process.

This is the thin adapter between ``simulators`` (which yields the messages a broker would
deliver, in time order) and :class:`alerts.engine.Engine`. Between two events the engine is
ticked at every moment it has work (``next_due``), so timings (``for``, ``group_wait``,
silence timeouts) are exact, and the same scenario gives the same alerts every time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.config import NotifySettings, RulesSettings
from alerts.dispatch import Notification
from alerts.engine import Engine, Transition
from kordon.clock import SimulatedClock
from kordon.model.payload import DecodeLimits
from kordon.storage.alert_store import AlertStore

# A replay has no broker in between, so the engine sees every message at its own event time;
# decoding may not refuse "future" timestamps that are only future to the wall clock.
_REPLAY_LIMITS = DecodeLimits(max_future_seconds=86400.0 * 365)


@dataclass(slots=True)
class ReplayResult:
    start: float
    end: float
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[tuple[float, Notification]] = field(default_factory=list)
    messages: int = 0


def replay(
    scenario: Any,
    rules: RulesSettings,
    notify: NotifySettings | None = None,
    *,
    seed: int | None = None,
) -> ReplayResult:
    """Run ``scenario`` (a ``simulators.Scenario``) through a fresh engine."""
    from simulators import ScenarioRun  # imported here: the live role never needs NumPy physics

    if notify is None:
        # A receiver that exists only in the replay, so routing and grouping run as live.
        notify = NotifySettings(webhook_url="http://replay.invalid/")
    start = scenario.start if scenario.start is not None else None
    clock = SimulatedClock(start if start is not None else 1_734_156_000.0)
    run = ScenarioRun(scenario, clock, seed=seed)
    result = ReplayResult(start=run.start, end=run.end)
    store = AlertStore(":memory:")
    engine = Engine(
        rules, notify, store, run.start, fleet=scenario.fleet, limits=_REPLAY_LIMITS,
        on_transition=result.transitions.append,
    )

    def tick_until(until: float, inclusive: bool) -> None:
        while True:
            due = engine.next_due()
            if due is None or due > until or (due == until and not inclusive):
                return
            for note in engine.tick(max(due, 0.0)):
                result.notifications.append((due, note))

    for event in run:
        if not event.on_wire:
            continue
        tick_until(event.time, inclusive=False)
        engine.handle(event.topic, event.payload, event.time)
        result.messages += 1
        if engine.wake:
            for note in engine.tick(event.time):
                result.notifications.append((event.time, note))
    tick_until(run.end, inclusive=True)
    store.close()
    return result
