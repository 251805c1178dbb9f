"""``kordon devices provision FLEET``: broker accounts and ACL for every device of a fleet.

Writes a Mosquitto password file and ACL (the scheme of ``deploy/mosquitto``):

- a device's username is its topic path ``{site}/{kind}/{device}``, and one pattern rule lets
  it publish its own ``telemetry`` and ``status`` (its last will included) and nothing else,
  so a stolen UPS credential cannot speak for another device or another site;
- ``kordon-collector`` reads ``kordon/v1/#`` and writes only the dead-letter topic;
  ``kordon-alerts`` and ``kordon-api`` only read; ``kordon-sim`` may publish for any device
  (it stands in for the fleet); ``healthcheck`` reads one broker statistic.

Existing accounts keep their passwords (re-running after a fleet change adds only the new
devices); new passwords are random, printed once, and only their hashes are written.
Accounts of devices that left the fleet are listed, and removed with ``--prune``.

Hashes are PBKDF2-HMAC-SHA512 in Mosquitto 2's ``$7$`` format, computed here so that no
``mosquitto_passwd`` is needed where provisioning runs (a test checks the result against
``mosquitto_passwd`` and a real Mosquitto 2.0.11). 101 iterations is Mosquitto's own
default; the passwords are 192 random bits, which no stretching would make stronger.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path

from kordon.config import Settings

ROLE_ACCOUNTS = ("kordon-collector", "kordon-alerts", "kordon-api", "kordon-sim", "healthcheck")
ITERATIONS = 101
_SALT_BYTES = 12

ACL = """\
# Mosquitto ACL written by `kordon devices provision` (see composition/devices.py).
#
# Devices: the username IS the device's topic path, {site}/{kind}/{device}, so one pattern
# rule lets every device publish its own telemetry and status (and its last will, which the
# broker checks against the same rule) and nothing else. A publish outside the ACL is
# dropped and the client disconnected.
pattern write kordon/v1/%u/telemetry
pattern readwrite kordon/v1/%u/status

# Kordon's roles only read telemetry. The collector also writes what it refuses.
user kordon-collector
topic read kordon/v1/#
topic write kordon/v1/deadletter

user kordon-alerts
topic read kordon/v1/#

user kordon-api
topic read kordon/v1/#

# The simulator stands in for every device of the fleet, and announces its stream clock.
user kordon-sim
topic write kordon/v1/+/+/+/telemetry
topic readwrite kordon/v1/+/+/+/status
topic readwrite kordon/v1/clock/+

# The container healthcheck reads one broker statistic.
user healthcheck
topic read $SYS/broker/uptime
"""


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Mosquitto 2's ``$7$`` PBKDF2-SHA512 hash of ``password``."""
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    _, kind, iterations, salt, _digest = hashed.split("$")
    if kind != "7":
        raise ValueError("only Mosquitto's $7$ (PBKDF2-SHA512) hashes are understood")
    expected = hash_password(password, base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(expected, hashed)


def device_username(site: str, kind: str, device: str) -> str:
    return f"{site}/{kind}/{device}"


def read_passwd(path: Path) -> dict[str, str]:
    accounts: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                user, _, hashed = line.rpartition(":")
                accounts[user] = hashed
    return accounts


def provision(
    usernames: list[str], passwd: dict[str, str], prune: bool = False
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(accounts to write, new credentials, stale device accounts)."""
    wanted = [*ROLE_ACCOUNTS, *usernames]
    new: dict[str, str] = {}
    accounts = dict(passwd)
    for user in wanted:
        if user not in accounts:
            new[user] = secrets.token_urlsafe(24)
            accounts[user] = hash_password(new[user])
    stale = sorted(user for user in accounts if "/" in user and user not in set(usernames))
    if prune:
        for user in stale:
            del accounts[user]
    return accounts, new, stale


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _cmd_provision(args: argparse.Namespace, _settings: Settings) -> int:
    from kordon.fleet import FleetError, load_fleet

    try:
        fleet = load_fleet(args.fleet)
    except (FleetError, OSError) as exc:
        print(f"kordon devices provision: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    passwd_path, acl_path = out / "passwd", out / "acl"
    usernames = [device_username(e.site, e.kind.value, e.device) for e in fleet.devices()]
    accounts, new, stale = provision(usernames, read_passwd(passwd_path), prune=args.prune)
    _write_private(passwd_path, "".join(f"{user}:{h}\n" for user, h in accounts.items()))
    acl_path.write_text(ACL, encoding="utf-8")
    print(f"wrote {passwd_path} ({len(accounts)} accounts) and {acl_path}", file=sys.stderr)
    if stale:
        verb = "removed" if args.prune else "not in the fleet (remove with --prune)"
        print(f"{len(stale)} device accounts {verb}: {', '.join(stale)}", file=sys.stderr)
    if new:
        print(
            f"{len(new)} new credentials, shown once (username password); install them on the "
            "devices, then reload the broker (kill -HUP mosquitto):",
            file=sys.stderr,
        )
        for user, password in new.items():
            print(f"{user} {password}")
    else:
        print("no new accounts", file=sys.stderr)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    devices = commands.add_parser("devices", help="device identities on the broker")
    actions = devices.add_subparsers(dest="devices_command", required=True)
    prov = actions.add_parser(
        "provision",
        help="write a Mosquitto password file and ACL for a fleet; prints new credentials once",
    )
    prov.add_argument("fleet", help="fleet file (sites and devices)")
    prov.add_argument(
        "--out", default="mosquitto", help="folder for passwd and acl (default ./mosquitto)"
    )
    prov.add_argument(
        "--prune", action="store_true", help="remove accounts of devices no longer in the fleet"
    )
    prov.set_defaults(handler=_cmd_provision)
