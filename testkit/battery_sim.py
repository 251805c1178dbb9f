"""Simulated UPS discharges for the battery model's tests and bench: the real scenario engine.

One site, one UPS carrying a constant load (``base_load_w``), no generator; the grid goes down
per ``outages``. What comes out is the UPS's telemetry as the collector would store it, decoded
into :class:`alerts.battery.Reading`, and the simulator's ground truth for the same unit.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import yaml

from alerts.battery import BatterySeed, Reading
from kordon.fleet import UpsParams, read_yaml
from simulators.engine import ScenarioRun
from simulators.physics.battery import peukert_runtime_s, temperature_factor
from simulators.scenario import parse_scenario

START = "2024-12-19T12:00:00+02:00"
LEAD_S = 1800.0  # on mains before the first outage: a full battery, the firmware's estimate


@dataclass(frozen=True)
class SimResult:
    readings: list[Reading]
    params: UpsParams
    room_c: float
    load: float  # share of rated
    outage_starts: list[float]  # epoch seconds

    @property
    def true_health_pct(self) -> float:
        return 100.0 * self.params.battery_health

    def true_runtime_s(self, load: float | None = None) -> float:
        """From full at ``load`` (share of rated; default the simulated one), at the room's
        temperature: what the unit really delivers."""
        p = self.params
        load = self.load if load is None else load
        real_wh = p.battery_wh * p.battery_health * float(temperature_factor(self.room_c))
        drain = load * p.rated_power_w / p.efficiency + p.inverter_idle_w
        return float(peukert_runtime_s(real_wh, drain, p.peukert))


def rated_runtime_s(params: UpsParams, load: float) -> float:
    """The datasheet: a new battery at 25 °C, from the simulator's own physics."""
    drain = load * params.rated_power_w / params.efficiency + params.inverter_idle_w
    return float(peukert_runtime_s(params.battery_wh, drain, params.peukert))


def nameplate_seed(params: UpsParams, loads: tuple[float, ...] = (0.25, 0.75)) -> BatterySeed:
    """A fleet nameplate with rated runtime at two loads, and the unit's Peukert exponent."""
    return BatterySeed(
        rated_runtime=tuple((100.0 * x, rated_runtime_s(params, x)) for x in loads),
        peukert=params.peukert,
        blocks=params.blocks,
    )


def simulate(
    health: float,
    load: float,
    outages: list[tuple[float, float]],
    *,
    room_c: float = 22.0,
    tail_s: float = 1800.0,
    seed: int = 1,
    ups: dict | None = None,
) -> SimResult:
    """``outages``: (start offset after ``LEAD_S``, duration) in seconds."""
    device = {"kind": "ups", "battery_health": health, **(ups or {})}
    probe = UpsParams.model_validate(device)
    device["base_load_w"] = load * probe.rated_power_w
    fleet = {"name": "bench", "sites": {"s": {"indoor_c": room_c, "devices": {"u": device}}}}
    last = max(at + length for at, length in outages)
    timeline = [
        {"at": f"{int(LEAD_S + at)}s", "grid_down": {"site": "s", "for": f"{int(length)}s"}}
        for at, length in outages
    ]
    scenario = {
        "name": "battery",
        "seed": seed,
        "start": START,
        "duration": f"{int(LEAD_S + last + tail_s)}s",
        "timeline": timeline,
    }
    with tempfile.TemporaryDirectory() as tmp:
        fleet_path = Path(tmp) / "fleet.yaml"
        fleet_path.write_text(yaml.safe_dump(fleet))
        scenario["fleet"] = str(fleet_path)
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario))
        loaded = parse_scenario(read_yaml(path))
    params = loaded.fleet.sites["s"].devices["u"]
    assert isinstance(params, UpsParams)
    run = ScenarioRun(loaded)
    readings = []
    for event in run:
        if event.on_wire and event.topic.endswith("/telemetry"):
            body = orjson.loads(event.payload)
            readings.append(Reading.from_metrics(float(body["ts"]), body["metrics"]))
    starts = [run.start + LEAD_S + at for at, _ in outages]
    return SimResult(readings, params, room_c, load, starts)


def to_lb(health: float, load: float, **kwargs) -> SimResult:
    """One outage long enough to run the battery flat."""
    probe = simulate_probe(health, load, kwargs.get("room_c", 22.0), kwargs.get("ups"))
    return simulate(health, load, [(0.0, math.ceil(probe * 1.5 + 600))], **kwargs)


def partials(health: float, load: float, depth: float = 0.3, count: int = 2, **kwargs) -> SimResult:
    """``count`` outages, each drawing ``depth`` of the true capacity, 2 h apart."""
    runtime = simulate_probe(health, load, kwargs.get("room_c", 22.0), kwargs.get("ups"))
    length = math.ceil(depth * runtime / 10.0) * 10.0
    return simulate(health, load, [(i * (length + 7200.0), length) for i in range(count)], **kwargs)


def simulate_probe(health: float, load: float, room_c: float, ups: dict | None) -> float:
    params = UpsParams.model_validate({"kind": "ups", "battery_health": health, **(ups or {})})
    real_wh = params.battery_wh * health * float(temperature_factor(np.array(room_c)))
    drain = load * params.rated_power_w / params.efficiency + params.inverter_idle_w
    return float(peukert_runtime_s(real_wh, drain, params.peukert))
