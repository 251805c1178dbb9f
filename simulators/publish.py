"""Play a scenario run into a real broker at a speed: ``kordon simulate`` and ``kordon demo``.

Each simulated device gets its own MQTT connection (:class:`~simulators.mqtt.FleetConnections`),
so last wills and reconnects happen as in the field. Place the run in time first with
:func:`simulators.pacing.choose_start`, so a live broker never sees timestamps from the
future; :class:`ScenarioPublisher` then paces the events against the wall clock and stops
between two events when asked, so a caller can run it in a thread and shut it down cleanly.
"""

from __future__ import annotations

import threading

from simulators.clock_announce import ClockAnnouncer
from simulators.engine import ScenarioRun
from simulators.mqtt import BrokerTarget, FleetConnections
from simulators.pacing import Pacer, Progress
from simulators.timeline import run_plan

# Longest uninterrupted wait between two events: how quickly a stop request is noticed.
_STOP_POLL = 0.5


class ScenarioPublisher:
    """Publishes a run's events to a broker, ``speed`` times real time (``None``: flat out).

    Connections open as the run's devices connect; :meth:`close` powers every device off
    (``offline``, then a clean DISCONNECT). Errors of the broker surface as
    :class:`~simulators.mqtt.BrokerUnavailable`. The run's scenario clock is announced on the
    stream-clock topic (:mod:`simulators.clock_announce`) while it plays, so the live stack
    judges the run's sites on scenario time.
    """

    def __init__(
        self, run: ScenarioRun, broker: BrokerTarget, speed: float | None, kind: str = "simulate"
    ) -> None:
        self.run = run
        self.speed = speed
        self.kind = kind
        self.connections = FleetConnections(broker)
        self.pacer = Pacer(speed, run.start)
        self._keepalive = {d.client_id: d.keepalive for d in run.devices}
        self._clock: ClockAnnouncer | None = None

    def play(
        self, stop: threading.Event | None = None, progress: Progress | None = None
    ) -> bool:
        """Publish the rest of the run. True when it played to the end (every message
        acknowledged or the drain timed out), False when ``stop`` was set first."""
        connections = self.connections
        pacer = self.pacer
        if self._clock is None:
            sites = [device.site for device in self.run.devices]
            plan = run_plan(self.run.scenario, self.run.start, sites)
            self._clock = ClockAnnouncer.start(
                connections, self.kind, sites, self.speed, self.run.start, plan
            )
        clock = self._clock
        for event in self.run.events():
            wait = pacer.delay(event.time)
            while wait > 0:
                if stop is not None and stop.is_set():
                    return False
                connections.wait(min(wait, _STOP_POLL) if stop is not None else wait)
                wait = pacer.delay(event.time)
            if stop is not None and stop.is_set():
                return False
            clock.tick(event.time)
            connections.handle(event, self._keepalive.get(event.client_id, 30.0))
            if progress is not None:
                progress.update(event.time, connections.connected_count(), connections.sent)
        connections.drain()
        return True

    @property
    def sent(self) -> int:
        return self.connections.sent

    def close(self) -> None:
        if self._clock is not None:
            self._clock.stop()
            self._clock = None
        self.connections.close()
