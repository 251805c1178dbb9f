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

__all__ = ["ROLES", "Role", "UnknownRole", "build_role", "role_settings",
           "stop_event_on_signals"]


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


# The roles that hold a broker session of their own under ``mqtt.client_id`` (the API adds a
# random suffix to its own, the bridges run as processes of their own).
_SESSION_ROLES = frozenset({"collector", "alerts"})


def role_settings(name: str, settings: Settings, together: list[str]) -> Settings:
    """``settings`` for role ``name`` of a process that runs the roles ``together``.

    A broker allows one connection per client id: with an explicit ``mqtt.client_id`` and
    both the collector and the alerts role in one process, each would take the connection
    from the other every second (neither log says why). So each of them gets the id with its
    role appended (``site-a-collector``, ``site-a-alerts``); a role alone keeps the id as
    given, so a collector's persistent session keeps its name.
    """
    client_id = settings.mqtt.client_id
    if not client_id or name not in _SESSION_ROLES or len(_SESSION_ROLES & set(together)) < 2:
        return settings
    mqtt = settings.mqtt.model_copy(update={"client_id": f"{client_id}-{name}"[:64]})
    return settings.model_copy(update={"mqtt": mqtt})


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
