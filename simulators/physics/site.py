"""A site's AC bus: grid feed, optional diesel generator and the automatic transfer switch.

Grid loss leaves the bus dead for the generator's start delay (the UPS units bridge it, which
is why a real outage always begins with a short ``OB`` on every UPS). A generator may fail to
start (by chance, or because a scenario says so), and it stops when the fuel runs out. When the
grid returns the ATS waits ``retransfer_delay`` before switching back, in case it flickers.

Few sites, so plain Python per site; the per-device work is vectorised elsewhere.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from kordon.fleet import GeneratorParams, GridParams


class Source(IntEnum):
    NONE = 0
    GRID = 1
    GENERATOR = 2


class GeneratorState(IntEnum):
    STOPPED = 0
    STARTING = 1
    RUNNING = 2
    FAILED = 3  # failed to start; stays down until the grid returns or fuel is delivered


class PowerFeed:
    def __init__(
        self,
        grid: GridParams | None,
        generator: GeneratorParams | None,
        rng: np.random.Generator,
        grid_up: bool = True,
    ) -> None:
        self.grid = grid
        self.generator = generator
        self.rng = rng
        self.grid_up = grid_up and grid is not None
        self.source = Source.GRID if self.grid_up else Source.NONE
        self.gen_state = GeneratorState.STOPPED
        self.gen_timer = 0.0
        self.fuel_left = generator.fuel if generator is not None else 0.0
        self.fail_next_start = False
        self.stable_for = 0.0
        if not self.grid_up and generator is not None:  # own generator: running from the start
            self.gen_state = GeneratorState.RUNNING
            self.source = Source.GENERATOR

    @property
    def powered(self) -> bool:
        return self.source is not Source.NONE

    def _start_generator(self) -> None:
        if self.generator is None or self.gen_state in (
            GeneratorState.STARTING,
            GeneratorState.RUNNING,
        ):
            return
        if self.fuel_left <= 0.0:
            self.gen_state = GeneratorState.FAILED
            return
        self.gen_state = GeneratorState.STARTING
        self.gen_timer = self.generator.start_delay

    def step(self, dt: float) -> None:
        gen = self.generator
        if self.grid_up:
            self.stable_for += dt
            if self.source is Source.GENERATOR:
                assert gen is not None
                if self.stable_for >= gen.retransfer_delay:
                    self.source = Source.GRID
                    self.gen_state = GeneratorState.STOPPED
            else:
                self.source = Source.GRID
                if self.gen_state is not GeneratorState.RUNNING:
                    self.gen_state = GeneratorState.STOPPED
        else:
            self.stable_for = 0.0
            if self.source is Source.GRID:
                self.source = Source.NONE
            if gen is not None and self.gen_state is GeneratorState.STOPPED:
                self._start_generator()
            if self.gen_state is GeneratorState.STARTING:
                assert gen is not None
                self.gen_timer -= dt
                if self.gen_timer <= 0.0:
                    failed = (
                        self.fail_next_start or self.rng.random() < gen.start_failure_probability
                    )
                    self.fail_next_start = False
                    self.gen_state = GeneratorState.FAILED if failed else GeneratorState.RUNNING
        if self.gen_state is GeneratorState.RUNNING:
            self.fuel_left -= dt
            if self.fuel_left <= 0.0:
                self.fuel_left = 0.0
                self.gen_state = GeneratorState.FAILED
        if self.source is Source.GENERATOR and self.gen_state is not GeneratorState.RUNNING:
            self.source = Source.NONE
        if self.source is Source.NONE and self.gen_state is GeneratorState.RUNNING:
            self.source = Source.GENERATOR

    # scenario hooks
    def set_grid(self, up: bool) -> None:
        self.grid_up = up and self.grid is not None

    def run_out_of_fuel(self) -> None:
        self.fuel_left = 0.0

    def refuel(self, seconds: float | None = None) -> None:
        if self.generator is None:
            return
        self.fuel_left = self.generator.fuel if seconds is None else seconds
        if self.gen_state is GeneratorState.FAILED:
            self.gen_state = GeneratorState.STOPPED

    def voltage(self) -> float:
        if self.source is Source.GRID and self.grid is not None:
            return self.grid.voltage
        if self.source is Source.GENERATOR and self.generator is not None:
            return self.generator.voltage
        return 0.0

    def frequency(self) -> float:
        if self.source is Source.GRID and self.grid is not None:
            return self.grid.frequency
        if self.source is Source.GENERATOR and self.generator is not None:
            return self.generator.frequency
        return 0.0
