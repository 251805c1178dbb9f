"""The roles ``kordon run`` and ``kordon demo`` can build, by name.

Each builder imports its role package inside the function, so a process pays for FastAPI only
when it runs the API and ``kordon --help`` stays fast. This is where roles meet other roles'
knowledge: the API gets the simulators' scenario library here, not by importing them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from kordon.clock import Clock
from kordon.config import Settings
from kordon.role import Role

__all__ = ["ROLES", "Role", "UnknownRole", "build_role", "stop_event_on_signals"]


def _collector(settings: Settings, clock: Clock) -> Role:
    from collector.role import build

    return build(settings, clock)


def _alerts(settings: Settings, clock: Clock) -> Role:
    from alerts.role import build

    return build(settings, clock)


def _api(settings: Settings, clock: Clock) -> Role:
    from api.role import build
    from simulators.library import library_dir

    return build(settings, clock, scenario_library=library_dir())


ROLES: dict[str, Callable[[Settings, Clock], Role]] = {
    "collector": _collector,
    "alerts": _alerts,
    "api": _api,
}


class UnknownRole(ValueError):
    pass


def build_role(name: str, settings: Settings, clock: Clock) -> Role:
    builder = ROLES.get(name)
    if builder is None:
        raise UnknownRole(f"unknown role {name!r}; choose from {', '.join(ROLES)}")
    return builder(settings, clock)


def stop_event_on_signals(what: str) -> threading.Event:
    """An event that SIGINT (Ctrl-C) and SIGTERM set, so every role stops cleanly."""
    stop = threading.Event()
    log = logging.getLogger("kordon")

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping %s", signal.Signals(signum).name, what)
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    return stop
