"""A scenario played to the live engine in process, as a stream at speed N would reach it.

The live alert engine (stream clocks, wall-clock ticks, scenario time per streamed site) is fed
a simulator run's messages at the wall times a publisher at ``speed`` would send them, with the
clock announced (and its plan) every wall second, on simulated wall and monotonic clocks: what
the live stack does minus the broker and processes, so a day-long scenario takes seconds and
the comparison with ``scenario verify`` is deterministic. The engine is ticked as the alerts
role's ticker does (``alerts.role.tick_wait``: every evaluation interval shortened by the
stream's speed, at the engine's deadlines, and when a message or a clock announcement wakes
it), not after every message. The real-process version is ``testkit/fidelity.py``.
"""

from __future__ import annotations

from typing import Any

from alerts.config import NotifySettings, RulesSettings
from alerts.engine import Engine, Transition
from alerts.role import tick_wait
from kordon.clock import SimulatedClock
from kordon.model.rehearsal import TimedMessage
from kordon.storage.alert_store import AlertStore
from kordon.streamclock import StreamClocks, announce
from simulators.engine import ScenarioRun
from simulators.timeline import run_plan

WALL0 = 1_900_000_000.0


def play_in_process(
    scenario: Any, speed: float, messages: list[TimedMessage] | None = None
) -> tuple[list[Transition], float, float]:
    """(the live engine's transitions, the run's start, its end), scenario times.
    ``messages``: the run's delivered messages if the caller has them already."""
    run = ScenarioRun(scenario)
    mono = [0.0]
    wall = SimulatedClock(WALL0)
    clocks = StreamClocks(wall, lambda: mono[0])
    transitions: list[Transition] = []
    rules = RulesSettings()
    interval = rules.evaluation_interval
    engine = Engine(rules, NotifySettings(webhook_url="http://127.0.0.1:9/"),
                    AlertStore(":memory:"), WALL0, fleet=scenario.fleet, clocks=clocks,
                    on_transition=transitions.append)
    sites = list(dict.fromkeys(device.site for device in run.devices))
    plan = run_plan(scenario, run.start, sites)

    def move(to: float) -> None:
        if to > wall.now():
            mono[0] += to - wall.now()
            wall.advance(to - wall.now())

    heard = -1.0
    next_tick = WALL0

    def tick() -> None:
        nonlocal next_tick
        engine.tick(wall.now())
        next_tick = wall.now() + tick_wait(
            interval, engine.stream_speed(), engine.next_due(), wall.now())

    for message in run.delivered() if messages is None else messages:
        arrives = WALL0 + (message.time - run.start) / speed
        while next_tick <= arrives:  # the ticker's own rounds before the message comes
            move(next_tick)
            tick()
        move(arrives)
        woken = False
        if wall.now() - heard >= 1.0:  # the publisher re-announces every wall second
            heard = wall.now()
            clocks.handle("kordon/v1/clock/sim-t", announce(
                "sim-t", sites, message.time, speed, wall=wall.now(), plan=plan).encode())
            engine.sync(wall.now())
            woken = True  # a clock announcement wakes the ticker
        engine.handle(message.topic, message.payload, wall.now())
        if woken or engine.wake:
            tick()
    return transitions, run.start, run.end
