"""``python -m bridges nut-bridge ...``: the bridges without the rest of the ``kordon`` CLI.

The same commands as ``kordon nut-bridge`` / ``kordon snmp-bridge``, with the same
configuration (``--config`` or ``KORDON_CONFIG``, ``KORDON_MQTT_URL``, ...). Handy on a small
host next to upsd where only the bridge runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bridges.cli import register
from kordon.config import ConfigError, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridges", description=__doc__)
    parser.add_argument("--config", help="YAML configuration file (default: $KORDON_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return int(args.handler(args, settings))


if __name__ == "__main__":
    sys.exit(main())
