"""``kordon scenario verify SCENARIO...``: registered by kordon/cli.py's COMMAND_MODULES."""

from __future__ import annotations

import argparse
import sys

from kordon.config import Settings


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


def _scenario_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``scenario`` command, shared with the simulators' sub-commands if they made it."""
    existing = commands.choices.get("scenario")
    if existing is not None:
        return existing
    return commands.add_parser("scenario", help="simulated scenarios")


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.config import load
    from alerts.verify import check, table
    from kordon.config import ConfigError
    from kordon.fleet import FleetError
    from simulators import library, load_scenario

    try:
        rules = load(settings).rules
    except ConfigError as exc:
        print(f"kordon scenario verify: {exc}", file=sys.stderr)
        return 2
    names = list(args.scenarios)
    if names == ["all"]:
        names = list(library())
    checks = []
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
        from alerts.replay import replay

        checks.extend(check(scenario.name, list(scenario.expect), replay(scenario, rules)))
    if checks:
        print(table(checks))
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} expectations hold")
    return 1 if failed else 0
