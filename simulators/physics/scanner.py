"""Cargo X-ray scanners: a state machine per scanner, stepped together.

    off -> self-test -> warm-up -> ready <-> scanning
                 any powered state -> fault (random or injected) -> self-test
                 any state -> e-stop (latched until reset) -> self-test

Losing power drops any state to ``off`` at once; when power returns the scanner goes through
self-test and warm-up again, which is why a one-minute outage costs a crossing half an hour of
scanning. The control PC rides on a small internal battery (``holdup``) and shuts down cleanly
when it runs out, so a long outage ends with the scanner publishing ``offline`` itself.

The contract's ``scanner.state`` has no self-test or e-stop words; self-test goes on the wire
as ``standby`` and e-stop as ``fault`` (``fault.code`` ``E-STOP``), with the detailed state in
the extra metric ``scanner.phase``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kordon.fleet import ScannerParams

OFF, SELF_TEST, WARMUP, READY, SCANNING, FAULT, ESTOP = range(7)
PHASE_NAMES = np.array(
    ["off", "self-test", "warmup", "ready", "scanning", "fault", "e-stop"], dtype=object
)
WIRE_STATES = np.array(
    ["off", "standby", "warmup", "ready", "scanning", "fault", "fault"], dtype=object
)
RANDOM_FAULT_CODES = ("HV-101", "LINAC-204", "DET-310", "COOL-412", "PLC-520")
ESTOP_CODE = "E-STOP"
MAX_QUEUE = 40  # trucks waiting at the gantry; more are sent to manual inspection
CABINET_LAG_S = 1800.0


class ScannerBank:
    def __init__(self, params: Sequence[ScannerParams], rng: np.random.Generator) -> None:
        self.rng = rng
        self.count = n = len(params)
        self.self_test_s = np.array([p.self_test for p in params], dtype=float)
        self.warmup_s = np.array([p.warmup for p in params], dtype=float)
        self.rate_per_s = np.array([p.scans_per_hour for p in params], dtype=float) / 3600.0
        self.scan_s = np.array([p.scan_duration for p in params], dtype=float)
        self.fault_rate = 1.0 / np.array([p.mtbf for p in params], dtype=float)
        self.repair_s = np.array([p.repair for p in params], dtype=float)
        self.holdup_s = np.array([p.holdup for p in params], dtype=float)
        self.power_table = np.array(
            [
                [0.0, p.power.self_test, p.power.warmup, p.power.ready,
                 p.power.scanning, p.power.fault, p.power.estop]
                for p in params
            ],
            dtype=float,
        ).reshape(n, 7)  # fmt: skip
        self._rows = np.arange(n)
        self.peak_w = np.maximum(self.power_table.max(axis=1), 1.0)

        self.state = np.full(n, READY, dtype=np.int64)  # the day starts with scanners working
        self.timer = np.zeros(n)
        self.queue = np.zeros(n, dtype=np.int64)
        self.scans_total = rng.integers(20_000, 400_000, size=n, dtype=np.int64)
        self.fault_code = np.full(n, "", dtype=object)
        self.estop_latched = np.zeros(n, dtype=bool)
        self.holdup_left = self.holdup_s.copy()
        self.cabinet = np.full(n, 24.0)
        self.controller_on = np.ones(n, dtype=bool)
        self.clean_shutdown = np.zeros(n, dtype=bool)

    # ------------------------------------------------------------------ injected events
    def inject_fault(self, index: int, code: str, duration: float) -> None:
        if self.state[index] != OFF:
            self.state[index] = FAULT
            self.timer[index] = duration
            self.fault_code[index] = code

    def estop(self, index: int) -> None:
        self.estop_latched[index] = True
        if self.state[index] != OFF:
            self.state[index] = ESTOP
            self.fault_code[index] = ESTOP_CODE

    def reset_estop(self, index: int) -> None:
        self.estop_latched[index] = False
        if self.state[index] == ESTOP:
            self.state[index] = SELF_TEST
            self.timer[index] = self.self_test_s[index]
            self.fault_code[index] = ""

    # ------------------------------------------------------------------ physics
    def power_draw(self) -> np.ndarray:
        return self.power_table[self._rows, self.state]

    def step(
        self,
        dt: float,
        powered: np.ndarray,
        traffic: float,
        outdoor_c: np.ndarray,
        room_c: np.ndarray,
    ) -> None:
        state = self.state
        # power lost: everything stops, the waiting trucks go to manual inspection
        lost = ~powered & (state != OFF)
        state[lost] = OFF
        self.queue[lost] = 0

        # the controller's internal battery
        self.holdup_left = np.where(powered, self.holdup_s, np.maximum(self.holdup_left - dt, 0.0))
        was_on = self.controller_on
        self.controller_on = powered | (self.holdup_left > 0.0)
        self.clean_shutdown = was_on & ~self.controller_on

        arrivals = self.rng.poisson(self.rate_per_s * traffic * dt)
        in_service = (state != OFF) & (state != ESTOP)
        self.queue = np.minimum(self.queue + np.where(in_service, arrivals, 0), MAX_QUEUE)

        timed = (state == SELF_TEST) | (state == WARMUP) | (state == SCANNING) | (state == FAULT)
        self.timer = np.where(timed, self.timer - dt, self.timer)
        done = timed & (self.timer <= 0.0)

        to_warmup = done & (state == SELF_TEST)
        finished_scan = done & (state == SCANNING)
        to_ready = (done & (state == WARMUP)) | finished_scan
        repaired = done & (state == FAULT)
        self.scans_total += finished_scan
        state[to_warmup] = WARMUP
        self.timer[to_warmup] = self.warmup_s[to_warmup]
        state[to_ready] = READY
        state[repaired] = SELF_TEST
        self.timer[repaired] = self.self_test_s[repaired]
        self.fault_code[repaired] = ""

        # power back: self-test, or straight to a latched e-stop (after the timers above, so
        # a fresh self-test runs its full time)
        back = powered & (state == OFF)
        state[back & self.estop_latched] = ESTOP
        start = back & ~self.estop_latched
        state[start] = SELF_TEST
        self.timer[start] = self.self_test_s[start]
        self.fault_code[start] = ""

        begin_scan = (state == READY) & (self.queue > 0)
        state[begin_scan] = SCANNING
        self.timer[begin_scan] = self.scan_s[begin_scan]
        self.queue -= begin_scan

        at_risk = (state == WARMUP) | (state == READY) | (state == SCANNING)
        faults = at_risk & (self.rng.random(self.count) < self.fault_rate * dt)
        if faults.any():
            for index in np.flatnonzero(faults):
                code = RANDOM_FAULT_CODES[int(self.rng.integers(len(RANDOM_FAULT_CODES)))]
                duration = float(self.rng.exponential(self.repair_s[index]))
                self.inject_fault(int(index), code, max(duration, 60.0))

        draw = self.power_draw()
        target = np.where(
            state == OFF,
            outdoor_c + 0.5 * (room_c - outdoor_c),
            room_c + 4.0 + 10.0 * draw / self.peak_w,
        )
        self.cabinet += min(1.0, dt / CABINET_LAG_S) * (target - self.cabinet)

    def xray_ready(self) -> np.ndarray:
        return (self.state == READY) | (self.state == SCANNING)
