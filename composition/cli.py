"""The ``kordon`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from alerts import config as alerts_config
from api import cli as api_cli
from bridges import cli as bridges_cli
from composition import battery, demo, devices, schedule, verify
from composition.roles import (
    Role,
    UnknownRole,
    build_role,
    role_settings,
    stop_event_on_signals,
)
from dashboards import cli as dashboards_cli
from kordon import __version__
from kordon.clock import WALL_CLOCK
from kordon.config import ConfigError, Settings, load_settings
from simulators import cli as simulators_cli

log = logging.getLogger("kordon")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One line per HTTP request would drown everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    names = [name.strip() for name in args.roles.split(",") if name.strip()]
    if not names:
        print("kordon run: --roles needs at least one role", file=sys.stderr)
        return 2
    stop = stop_event_on_signals("the roles")
    roles: list[Role] = []
    try:
        for name in names:
            roles.append(build_role(name, role_settings(name, settings, names), WALL_CLOCK))
        for role in roles:
            role.start()
            log.info("role %s started", role.name)
    except (UnknownRole, ConfigError) as exc:
        print(f"kordon run: {exc}", file=sys.stderr)
        for role in reversed(roles):
            role.stop()
        return 2
    stop.wait()
    for role in reversed(roles):
        role.stop()
        log.info("role %s stopped", role.name)
    return 0


def _cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from alerts.config import printable
    from kordon.redact import printable_settings

    try:
        sections = printable(settings)  # the alerts role validates its own sections
    except ConfigError as exc:
        print(f"kordon: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump(printable_settings(settings, sections), sort_keys=False), end="")
    return 0


# Modules that add sub-commands: each has ``register(subparsers)`` and imports its heavy
# dependencies inside the handlers, so ``kordon --help`` stays fast.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    simulators_cli,
    verify,
    api_cli,
    dashboards_cli,
    demo,
    bridges_cli,
    devices,
    battery,
    schedule,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kordon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kordon {__version__}")
    parser.add_argument("--config", help="YAML configuration file (default: $KORDON_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one or more roles in this process")
    run.add_argument("--roles", default="collector", help="comma-separated: collector,alerts,api")
    run.set_defaults(handler=_cmd_run)
    show = commands.add_parser("config", help="print the effective configuration (secrets hidden)")
    show.set_defaults(handler=_cmd_config)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        # The kernel keeps `rules` and `notify` as written; checking them here too means a
        # mistake in them stops every command at start, not only the alerts role.
        alerts_config.load(settings)
    except ConfigError as exc:
        print(f"kordon: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    return int(args.handler(args, settings))


if __name__ == "__main__":
    sys.exit(main())
