"""Turn a scenario's timeline into timed operations on a running simulation.

Events with a ``for`` become two operations (the change and its undo); a rolling-outage
schedule becomes a grid down/up pair per site and block; a burst of malformed messages becomes
one operation per message. Operations are sorted by time, then by file order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from kordon.fleet import Fleet
from kordon.model.kinds import DeviceKind
from kordon.schedule.model import Schedule, shifted
from kordon.streamclock import StreamPlan
from simulators import scenario as sc
from simulators.devices import DeviceRef
from simulators.physics.radio import RadioBank
from simulators.physics.scanner import ScannerBank
from simulators.physics.site import PowerFeed


class ScenarioRun(Protocol):
    """What a timeline operation may change in a running simulation
    (:class:`simulators.engine.ScenarioRun` is the one implementation): named here so the
    timeline does not import the engine that runs it."""

    fleet: Fleet
    devices: list[DeviceRef]
    scanners: ScannerBank
    radios: RadioBank
    rebooted: np.ndarray
    crashed: np.ndarray
    hung: np.ndarray

    def device(self, site: str, device: str) -> DeviceRef: ...
    def local_index(self, ref: DeviceRef) -> int: ...
    def site_feed(self, site: str) -> PowerFeed: ...
    def scanner_generator(self, site: str, device: str) -> PowerFeed | None: ...
    def set_temperature(self, site: str, outdoor: float | None, indoor: float | None) -> None: ...
    def set_network(self, site: str, up: bool) -> None: ...
    def schedule_op(self, when: float, apply: Callable[[ScenarioRun, float], None]) -> None: ...
    def send_malformed(
        self, ref: DeviceRef, variant: str, text: str | None, when: float
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Op:
    time: float  # absolute simulated time
    order: int
    apply: Callable[[ScenarioRun, float], None]
    label: str = ""


def rolling_schedule(args: sc.RollingOutages, length: float) -> list[tuple[float, float, int]]:
    """``(start, end, queue)`` per outage, offsets from the schedule's start.

    Blocks of ``block`` length; block ``i`` switches off ``queues_off[i % len(queues_off)]``
    queues, the next ones in turn after those of the block before, so each queue gets its share.
    """
    out = []
    duration = args.duration if args.duration is not None else length
    next_queue = 0
    block = 0
    while block * args.block < duration:
        count = min(args.queues_off[block % len(args.queues_off)], args.queues)
        start = block * args.block
        end = min(start + args.block, duration)
        for j in range(count):
            out.append((start, end, (next_queue + j) % args.queues + 1))
        next_queue = (next_queue + count) % args.queues
        block += 1
    return out


def run_schedule(scenario: sc.Scenario, start: float) -> Schedule | None:
    """The scenario's outage schedule moved with a run that starts at ``start`` (None when it
    has none): what the simulated grid plays and what the alert engine forecasts against."""
    if scenario.schedule is None:
        return None
    shift = start - scenario.start if scenario.start is not None else 0.0
    return shifted(scenario.schedule, shift) if shift else scenario.schedule


def run_plan(scenario: sc.Scenario, start: float, sites: Iterable[str]) -> StreamPlan | None:
    """The plan a stream of the run announces with its clock (kordon.streamclock)."""
    schedule = run_schedule(scenario, start)
    if schedule is None:
        return None
    groups = {site: scenario.fleet.sites[site].schedule_group
              for site in sites if site in scenario.fleet.sites}
    return StreamPlan(groups, schedule)


def schedule_cuts(scenario: sc.Scenario, start: float) -> list[tuple[float, float, list[str]]]:
    """``(start, end, sites)`` of each scheduled cut inside the run, absolute times: the
    scenario's schedule, moved with the run when it starts at another time than the file's."""
    schedule = run_schedule(scenario, start)
    if schedule is None:
        return []
    end_of_run = start + scenario.duration
    by_group: dict[str, list[str]] = {}
    for name, site in scenario.fleet.sites.items():
        by_group.setdefault(site.schedule_group, []).append(name)
    out = []
    for group, sites in sorted(by_group.items()):
        for day in schedule.groups.get(group, ()):
            for cut in day.cuts:
                begin, end = cut.start, cut.end
                if end > start and begin < end_of_run:
                    out.append((max(begin, start), min(end, end_of_run), sites))
    return sorted(out)


def compile_timeline(scenario: sc.Scenario, start: float) -> list[Op]:
    ops: list[Op] = []
    fleet = scenario.fleet

    def add(at: float, fn: Callable[[ScenarioRun, float], None], label: str) -> None:
        ops.append(Op(start + at, len(ops), fn, label))

    for event in scenario.timeline:
        at, args = event.at, event.args
        action = event.action
        if action in ("grid_down", "grid_up"):
            sites = args.resolve(fleet)
            up = action == "grid_up"
            add(at, _grid(sites, up), f"{action} {sites}")
            if not up and args.for_ is not None:
                add(at + args.for_, _grid(sites, True), f"grid_up {sites}")
        elif action == "rolling_outages":
            remaining = scenario.duration - at
            for begin, end, queue in rolling_schedule(args, remaining):
                sites = fleet.sites_in_queue(queue)
                if sites:
                    add(at + begin, _grid(sites, False), f"queue {queue} off")
                    add(at + end, _grid(sites, True), f"queue {queue} on")
        elif action in ("generator_fails_to_start", "generator_out_of_fuel", "generator_refuel"):
            add(at, _generator(action, args), action)
        elif action == "temperature":
            sites = args.resolve(fleet)
            add(at, _temperature(sites, args.outdoor_c, args.indoor_c), action)
        elif action == "device_fault":
            add(at, _fault(args.site, args.device, args.code, args.for_), action)
        elif action == "estop":
            add(at, _estop(args.site, args.device, True), action)
        elif action == "estop_reset":
            add(at, _estop(args.site, args.device, False), action)
        elif action == "device_crash":
            add(at, _flag("crashed", args.site, args.device, True), action)
            add(at + args.restart_after, _flag("crashed", args.site, args.device, False), "restart")
        elif action == "device_hang":
            add(at, _flag("hung", args.site, args.device, True), action)
            add(at + args.for_, _flag("hung", args.site, args.device, False), "watchdog reboot")
        elif action == "device_power_off":
            add(at, _flag("power_off", args.site, args.device, True), action)
            if args.for_ is not None:
                add(at + args.for_, _flag("power_off", args.site, args.device, False), "power on")
        elif action == "device_power_on":
            add(at, _flag("power_off", args.site, args.device, False), action)
        elif action in ("network_down", "network_up"):
            sites = args.resolve(fleet)
            up = action == "network_up"
            add(at, _network(sites, up), action)
            if not up and args.for_ is not None:
                add(at + args.for_, _network(sites, True), "network_up")
        elif action in ("backhaul_down", "backhaul_up"):
            up = action == "backhaul_up"
            add(at, _backhaul(args.site, args.device, up), action)
            if not up and args.for_ is not None:
                add(at + args.for_, _backhaul(args.site, args.device, True), "backhaul_up")
        elif action == "malformed":
            for number in range(args.count):
                add(at + number * args.every, _malformed(args), action)
        else:  # pragma: no cover - the scenario parser only admits known actions
            raise ValueError(f"unknown action {action!r}")
    if scenario.schedule is not None:
        for begin, end, sites in schedule_cuts(scenario, start):
            ops.append(Op(begin, len(ops), _grid(sites, False), f"scheduled cut {sites}"))
            ops.append(Op(end, len(ops), _grid(sites, True), f"scheduled cut over {sites}"))
    ops.sort(key=lambda op: (op.time, op.order))
    return ops


def _grid(sites: list[str], up: bool) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        for site in sites:
            run.site_feed(site).set_grid(up)

    return apply


def _generator(action: str, args: Any) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        if args.device is not None:
            feeds = [run.scanner_generator(args.site, args.device)]
        else:
            feeds = [run.site_feed(site) for site in args.resolve(run.fleet)]
        for feed in feeds:
            if feed is None:
                continue
            if action == "generator_fails_to_start":
                feed.fail_next_start = True
            elif action == "generator_out_of_fuel":
                feed.run_out_of_fuel()
            else:
                feed.refuel(args.fuel)

    return apply


def _temperature(
    sites: list[str], outdoor: float | None, indoor: float | None
) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        for site in sites:
            run.set_temperature(site, outdoor, indoor)

    return apply


def _fault(
    site: str, device: str, code: str, duration: float
) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        ref = run.device(site, device)
        index = run.local_index(ref)
        if ref.kind is DeviceKind.SCANNER:
            run.scanners.inject_fault(index, code, duration)
        elif ref.kind is DeviceKind.RADIO:  # antenna or feeder fault: high VSWR
            run.radios.vswr[index] = 3.2
            run.schedule_op(_when + duration, _vswr_back(index))

    return apply


def _vswr_back(index: int) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        run.radios.vswr[index] = 1.25

    return apply


def _estop(site: str, device: str, pressed: bool) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        ref = run.device(site, device)
        if ref.kind is not DeviceKind.SCANNER:
            return
        if pressed:
            run.scanners.estop(run.local_index(ref))
        else:
            run.scanners.reset_estop(run.local_index(ref))

    return apply


def _flag(name: str, site: str, device: str, value: bool) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        index = run.device(site, device).index
        getattr(run, name)[index] = value
        if not value and name in ("crashed", "hung"):
            run.rebooted[index] = True  # a crash or a watchdog reset reboots: seq restarts

    return apply


def _network(sites: list[str], up: bool) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        for site in sites:
            run.set_network(site, up)

    return apply


def _backhaul(site: str, device: str | None, up: bool) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, _when: float) -> None:
        refs = (
            [run.device(site, device)]
            if device is not None
            else [d for d in run.devices if d.site == site and d.kind is DeviceKind.RADIO]
        )
        for ref in refs:
            if ref.kind is DeviceKind.RADIO:
                run.radios.backhaul_up[run.local_index(ref)] = up

    return apply


def _malformed(args: Any) -> Callable[[ScenarioRun, float], None]:
    def apply(run: ScenarioRun, when: float) -> None:
        run.send_malformed(run.device(args.site, args.device), args.variant, args.payload, when)

    return apply
