"""Roles and how ``kordon run`` finds them.

Each role package exposes ``build(settings, clock) -> Role``. The kernel names them by import
path only, so ``kordon`` never imports a role package until it is asked to run it, and role
packages stay independent of each other.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Protocol

from kordon.clock import Clock
from kordon.config import Settings

ROLE_MODULES: dict[str, str] = {
    "collector": "collector.role",
    "alerts": "alerts.role",
    "api": "api.role",
}


class Role(Protocol):
    name: str

    def start(self) -> None:
        """Start background work and return."""
        ...

    def stop(self, timeout: float = 10.0) -> None:
        """Finish in-flight work (nothing acknowledged may be lost) and return."""
        ...

    def healthy(self) -> bool: ...


class UnknownRole(ValueError):
    pass


def build_role(name: str, settings: Settings, clock: Clock) -> Role:
    module_name = ROLE_MODULES.get(name)
    if module_name is None:
        raise UnknownRole(f"unknown role {name!r}; choose from {', '.join(ROLE_MODULES)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UnknownRole(f"role {name!r} is not available in this build: {exc}") from None
    if not hasattr(module, "build"):
        raise UnknownRole(f"role {name!r} is not implemented yet")
    return module.build(settings, clock)


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
