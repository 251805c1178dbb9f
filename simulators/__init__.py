"""Simulated border-crossing hardware: device physics, fleets, scenarios, recording and replay.

The Python API (no broker needed)::

    from simulators import ScenarioRun, load_scenario
    run = ScenarioRun(load_scenario("normal-day"), clock)
    for event in run: ...

Names are imported lazily so that ``kordon --help`` does not load NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulators.engine import DeviceRef, ScenarioRun
    from simulators.events import Action, SimEvent
    from simulators.scenario import Expectation, Scenario, library, load_scenario

__all__ = [
    "Action",
    "DeviceRef",
    "Expectation",
    "Scenario",
    "ScenarioRun",
    "SimEvent",
    "library",
    "load_scenario",
]

_HOMES = {
    "ScenarioRun": "simulators.engine",
    "DeviceRef": "simulators.engine",
    "Action": "simulators.events",
    "SimEvent": "simulators.events",
    "Scenario": "simulators.scenario",
    "Expectation": "simulators.scenario",
    "library": "simulators.scenario",
    "load_scenario": "simulators.scenario",
}


def __getattr__(name: str) -> Any:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'simulators' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
