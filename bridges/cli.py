"""``kordon nut-bridge`` and ``kordon snmp-bridge``.

Registered by the composition layer (``composition.cli``); heavy imports (pysnmp) happen
inside the handlers so ``kordon --help`` stays fast. Secrets can come from the environment
(``KORDON_NUT_PASSWORD``, ``KORDON_SNMP_COMMUNITY``, ``KORDON_SNMP_AUTH_KEY``,
``KORDON_SNMP_PRIV_KEY``) so they do not show in ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable

from kordon.config import Settings
from kordon.durations import parse_duration
from kordon.model.topics import NAME_PATTERN

log = logging.getLogger("bridges")


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than zero")
    return seconds


def _name(text: str) -> str:
    if not NAME_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} does not match {NAME_PATTERN.pattern}")
    return text


def _host_port(default_port: int) -> Callable[[str], tuple[str, int]]:
    """An argparse type for ``HOST[:PORT]`` and ``[IPv6]:PORT``."""

    def parse(text: str) -> tuple[str, int]:
        host, port = text, default_port
        if text.startswith("["):  # [IPv6]:port
            host, _, rest = text[1:].partition("]")
            if rest.startswith(":"):
                port = _port(rest[1:])
        elif text.count(":") == 1:
            host, _, raw = text.partition(":")
            port = _port(raw)
        if not host:
            raise argparse.ArgumentTypeError(f"{text!r} has no host")
        return host, port

    return parse


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise argparse.ArgumentTypeError(f"bad port {raw!r}")
    return int(raw)


def _ups_mapping(text: str) -> tuple[str, str]:
    ups, sep, device = text.partition("=")
    device = device if sep else ups
    if not ups:
        raise argparse.ArgumentTypeError("give NAME or NAME=DEVICE")
    return ups, _name(device)


def register(commands: argparse._SubParsersAction) -> None:
    nut = commands.add_parser(
        "nut-bridge",
        help="publish the UPS units of a Network UPS Tools server (upsd)",
        description="Poll upsd over the NUT network protocol and publish each UPS as "
        "kordon/v1/SITE/ups/UPS/telemetry, with retained online/offline status.",
    )
    nut.add_argument("--nut", required=True, type=_host_port(3493), metavar="HOST[:PORT]",
                     help="upsd address (port 3493 by default)")
    nut.add_argument("--site", required=True, type=_name)
    nut.add_argument("--ups", action="append", type=_ups_mapping, default=[],
                     metavar="NAME[=DEVICE]",
                     help="UPS to publish (repeat); =DEVICE renames it. Default: all of them")
    nut.add_argument("--interval", type=_duration, default=5.0, help="poll interval (5s)")
    nut.add_argument("--timeout", type=_duration, default=10.0, help="upsd answer timeout")
    nut.add_argument("--username", help="NUT user (upsd.users); never used to LOGIN")
    nut.add_argument("--password", default=os.environ.get("KORDON_NUT_PASSWORD"),
                     help="NUT password (default: $KORDON_NUT_PASSWORD)")
    nut.add_argument("--starttls", action="store_true",
                     help="require STARTTLS before anything else is sent")
    nut.add_argument("--cafile", help="CA or upsd certificate to verify upsd with")
    nut.add_argument("--insecure", action="store_true",
                     help="do not verify upsd's certificate (testing only)")
    nut.add_argument("--max-queued", type=int, default=10_000,
                     help="readings kept per UPS while the broker is away")
    nut.set_defaults(handler=run_nut_bridge)

    snmp = commands.add_parser(
        "snmp-bridge",
        help="publish a UPS whose network card serves the UPS-MIB (RFC 1628)",
        description="Poll a UPS-MIB agent over SNMP and publish it with NUT metric names.",
    )
    snmp.add_argument("--target", required=True, type=_host_port(161), metavar="HOST[:PORT]")
    snmp.add_argument("--site", required=True, type=_name)
    snmp.add_argument("--ups-name", type=_name,
                      help="device name (default: the target host)")
    auth = snmp.add_mutually_exclusive_group()
    auth.add_argument("--community", help="v1/v2c community (default: $KORDON_SNMP_COMMUNITY)")
    auth.add_argument("--v3-user", help="SNMPv3 USM user")
    snmp.add_argument("--snmp-version", choices=["1", "2c"], default="2c",
                      help="with --community")
    snmp.add_argument("--v3-auth-key", default=os.environ.get("KORDON_SNMP_AUTH_KEY"))
    snmp.add_argument("--v3-auth-proto", default="SHA",
                      choices=["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"])
    snmp.add_argument("--v3-priv-key", default=os.environ.get("KORDON_SNMP_PRIV_KEY"))
    snmp.add_argument("--v3-priv-proto", default="AES",
                      choices=["DES", "3DES", "AES", "AES192", "AES256"])
    snmp.add_argument("--v3-context", default="", help="SNMPv3 context name")
    snmp.add_argument("--interval", type=_duration, default=5.0, help="poll interval (5s)")
    snmp.add_argument("--timeout", type=_duration, default=2.0, help="per request, per try")
    snmp.add_argument("--retries", type=int, default=1, help="retries per request")
    snmp.add_argument("--max-queued", type=int, default=10_000,
                      help="readings kept while the broker is away")
    snmp.set_defaults(handler=run_snmp_bridge)


def _client_base(settings: Settings, role: str) -> str:
    return settings.mqtt.client_id_for(role)


def run_nut_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from bridges.nut.bridge import NutBridge, NutBridgeConfig, tls_options
    from bridges.publisher import DevicePublisher, device_client_id
    from bridges.runtime import run_until_signalled
    from kordon.clock import WALL_CLOCK

    host, port = args.nut
    if args.password is not None and args.username is None:
        print("kordon nut-bridge: --password needs --username", file=sys.stderr)
        return 2
    tls = None
    if args.starttls:
        tls = tls_options(host, args.cafile, args.insecure)
    mapping = dict(args.ups)
    if len(set(mapping.values())) != len(mapping):
        print("kordon nut-bridge: two UPSes map to the same device name", file=sys.stderr)
        return 2
    config = NutBridgeConfig(
        host=host, port=port, site=args.site, ups=mapping, interval=args.interval,
        timeout=args.timeout, username=args.username, password=args.password, tls=tls,
    )
    base = _client_base(settings, "nut-bridge")

    def publisher(device: str) -> DevicePublisher:
        return DevicePublisher(
            settings.mqtt, args.site, device, device_client_id(base, args.site, device),
            max_queued=args.max_queued,
        )

    bridge = NutBridge(config, publisher, WALL_CLOCK)
    log.info("nut-bridge: polling upsd %s:%d every %.1f s for site %s", host, port,
             args.interval, args.site)
    return run_until_signalled(bridge.run)


def default_device_name(host: str) -> str:
    """A device name from a host name or address (characters the contract refuses -> '-')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", host)[:64]


def run_snmp_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from bridges.publisher import DevicePublisher, device_client_id
    from bridges.runtime import run_until_signalled
    from bridges.snmp.bridge import SnmpBridge, SnmpBridgeConfig
    from bridges.snmp.client import SnmpClient, SnmpCredentials
    from kordon.clock import WALL_CLOCK

    host, port = args.target
    if args.v3_user:
        credentials = SnmpCredentials(
            version="3", user=args.v3_user, auth_key=args.v3_auth_key,
            auth_protocol=args.v3_auth_proto, priv_key=args.v3_priv_key,
            priv_protocol=args.v3_priv_proto, context=args.v3_context,
        )
        if args.v3_priv_key and not args.v3_auth_key:
            print("kordon snmp-bridge: --v3-priv-key needs --v3-auth-key", file=sys.stderr)
            return 2
    else:
        community = args.community or os.environ.get("KORDON_SNMP_COMMUNITY")
        if not community:
            print("kordon snmp-bridge: give --community (or $KORDON_SNMP_COMMUNITY) or "
                  "--v3-user", file=sys.stderr)
            return 2
        credentials = SnmpCredentials(version=args.snmp_version, community=community)
    device = args.ups_name or default_device_name(host)
    config = SnmpBridgeConfig(host=host, port=port, site=args.site, device=device,
                              interval=args.interval)
    base = _client_base(settings, "snmp-bridge")
    publisher = DevicePublisher(
        settings.mqtt, args.site, device, device_client_id(base, args.site, device),
        max_queued=args.max_queued,
    )

    async def main(stop: asyncio.Event) -> None:
        # pysnmp binds its engine to the running loop, so it is built inside it.
        client = SnmpClient(host, port, credentials, timeout=args.timeout, retries=args.retries)
        await SnmpBridge(config, client, publisher, WALL_CLOCK).run(stop)

    log.info("snmp-bridge: polling %s:%d every %.1f s as %s/%s", host, port, args.interval,
             args.site, device)
    return run_until_signalled(main)
