"""``kordon scenario verify SCENARIO...``: the simulators' scenarios through the alert engine;
``kordon scenario fleet SCENARIO``: the fleet file a live rehearsal's engine loads.

The wiring of two roles that never import each other: the simulators load a scenario and
produce what a broker would deliver (:meth:`ScenarioRun.delivered`), the alert engine replays
that stream on the scenario's clock and checks the scenario's ``expect`` block
(:mod:`alerts.verify`). Both imports happen inside the functions: NumPy and the engine stay out
of ``kordon --help``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from kordon.config import Settings

if TYPE_CHECKING:
    from alerts.config import NotifySettings, RulesSettings
    from alerts.replay import ReplayResult
    from simulators.scenario import Scenario


def register(commands: argparse._SubParsersAction) -> None:
    scenario = _scenario_parser(commands)
    actions = next(
        (a for a in scenario._actions if isinstance(a, argparse._SubParsersAction)), None
    )
    if actions is None:
        actions = scenario.add_subparsers(dest="scenario_command", required=True)
    verify = actions.add_parser(
        "verify",
        help="replay scenarios through the alert engine and check their expect blocks",
        description="Exit 0 when every expectation holds, 1 otherwise (with a table).",
    )
    verify.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                        help="scenario file or library name; 'all' for the whole library")
    verify.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    verify.set_defaults(handler=_verify)
    fleet = actions.add_parser(
        "fleet",
        help="print a scenario's fleet (its overrides applied) as a fleet file",
        description="What a live rehearsal's alert engine should load (KORDON_FLEET) so that "
                    "the scenario's requirements (autonomy, replacement lines, nameplates) are "
                    "the engine's too, as they are to 'scenario verify'.",
    )
    fleet.add_argument("scenario", metavar="SCENARIO", help="scenario file or library name")
    fleet.set_defaults(handler=_fleet)


def _scenario_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``scenario`` command, shared with other sub-commands if they made it first."""
    existing = commands.choices.get("scenario")
    if existing is not None:
        return existing
    return commands.add_parser("scenario", help="simulated scenarios")


def replay_scenario(
    scenario: Scenario,
    rules: RulesSettings,
    notify: NotifySettings | None = None,
) -> ReplayResult:
    """Run ``scenario`` through a fresh alert engine on its own clock, in process."""
    from alerts.replay import replay
    from simulators.engine import ScenarioRun

    run = ScenarioRun(scenario)
    return replay(
        run.delivered(), rules, start=run.start, end=run.end, fleet=scenario.fleet, notify=notify,
        schedules=scenario_schedules(scenario, run.start),
    )


def scenario_schedules(scenario: Scenario, start: float):  # type: ignore[no-untyped-def]
    """The scenario's schedule as the alert engine reads it (moved with the run's start), or
    None when the scenario has none: the simulator plays it, the engine forecasts against it."""
    from kordon.schedule import StaticSchedules
    from simulators.timeline import run_schedule

    schedule = run_schedule(scenario, start)
    if schedule is None:
        return None
    return StaticSchedules.for_fleet(schedule, scenario.fleet, name=scenario.name)


def _fleet(args: argparse.Namespace, _settings: Settings) -> int:
    import yaml

    from kordon.fleet import FleetError
    from simulators.scenario import load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except FleetError as exc:
        print(f"kordon scenario fleet: {exc}", file=sys.stderr)
        return 2
    raw = scenario.fleet.model_dump(mode="json", by_alias=True, exclude_unset=True)
    print(f"# the fleet of scenario {scenario.name}, its overrides applied")
    print(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), end="")
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.config import load
    from alerts.verify import Check, table, verify
    from kordon.config import ConfigError
    from kordon.fleet import FleetError
    from simulators.engine import ScenarioRun
    from simulators.library import library
    from simulators.scenario import load_scenario

    try:
        rules = load(settings).rules
    except ConfigError as exc:
        print(f"kordon scenario verify: {exc}", file=sys.stderr)
        return 2
    names = list(args.scenarios)
    if names == ["all"]:
        names = list(library())
    checks: list[Check] = []
    for name in names:
        try:
            scenario = load_scenario(name)
        except FleetError as exc:
            print(f"kordon scenario verify: {exc}", file=sys.stderr)
            return 2
        if args.seed is not None:
            scenario = scenario.with_seed(args.seed)
        if not scenario.expect:
            print(f"{scenario.name}: no expect block, nothing to verify", file=sys.stderr)
            continue
        run = ScenarioRun(scenario)
        checks.extend(
            verify(
                scenario.name, run.delivered(), scenario.expect, rules,
                start=run.start, end=run.end, fleet=scenario.fleet,
                schedules=scenario_schedules(scenario, run.start),
            )
        )
    if checks:
        print(table(checks))
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} expectations hold")
    return 1 if failed else 0
