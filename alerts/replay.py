"""Run the real engine over a stream of timed messages on the stream's clock, in process.

The stream is what a broker would deliver, in time order (:class:`TimedMessage`, from the
kernel); where it comes from (a simulator run, a recording) is the caller's business, so this
package never imports the simulators. Between two messages the engine is ticked at every moment
it has work (``next_due``), so timings (``for``, ``group_wait``, silence timeouts) are exact,
and the same stream gives the same alerts every time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from alerts.battery.live import BatteryLearning
from alerts.config import NotifySettings, RulesSettings
from alerts.dispatch import Notification
from alerts.engine import Engine, Transition
from kordon.fleet import Fleet
from kordon.model.payload import DecodeLimits
from kordon.model.rehearsal import TimedMessage
from kordon.schedule import SiteSchedules
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
    messages: Iterable[TimedMessage],
    rules: RulesSettings,
    *,
    start: float,
    end: float,
    fleet: Fleet | None = None,
    notify: NotifySettings | None = None,
    schedules: SiteSchedules | None = None,
    battery: BatteryLearning | None = None,
) -> ReplayResult:
    """Run ``messages`` (from ``start`` to ``end``, epoch seconds) through a fresh engine.

    ``battery``: the battery learner to use (e.g. one with a store, to keep what it learned);
    a fresh in-memory one by default."""
    if notify is None:
        # A receiver that exists only in the replay, so routing and grouping run as live.
        notify = NotifySettings(webhook_url="http://replay.invalid/")
    result = ReplayResult(start=start, end=end)
    store = AlertStore(":memory:")
    engine = Engine(
        rules, notify, store, start, fleet=fleet, limits=_REPLAY_LIMITS,
        on_transition=result.transitions.append, battery=battery, schedules=schedules,
    )

    def tick_until(until: float, inclusive: bool) -> None:
        while True:
            due = engine.next_due()
            if due is None or due > until or (due == until and not inclusive):
                return
            for note in engine.tick(max(due, 0.0)):
                result.notifications.append((due, note))

    for message in messages:
        tick_until(message.time, inclusive=False)
        engine.handle(message.topic, message.payload, message.time)
        result.messages += 1
        if engine.wake:
            for note in engine.tick(message.time):
                result.notifications.append((message.time, note))
    tick_until(end, inclusive=True)
    store.close()
    return result
