"""``kordon token create``: mint an API token and print the configuration line for it.

The token is printed once and never stored; the configuration keeps only its SHA-256, so
whoever reads the configuration file cannot use the API.
"""

from __future__ import annotations

import argparse
import re
import sys

from kordon.config import Settings

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def _cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from api.auth import hash_token, mint_token

    if not _NAME.match(args.name):
        print(
            f"kordon token create: --name {args.name!r} must match {_NAME.pattern}",
            file=sys.stderr,
        )
        return 2
    if any(token.name == args.name for token in settings.api.tokens):
        print(f"note: a token named {args.name!r} is configured already", file=sys.stderr)
    token = mint_token()
    digest = hash_token(token)
    print(f"token (shown once; give it to {args.name}, store it in a password manager):")
    print(f"  {token}")
    print()
    print("add to the api section of the configuration file:")
    print("api:")
    print("  tokens:")
    print(f"    - {{name: {args.name}, role: {args.role}, sha256: {digest}}}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser("token", help="API bearer tokens")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser(
        "create", help="mint a token; prints it once and the config line with its hash"
    )
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--name", required=True, help="who holds the token, e.g. duty-officer")
    create.set_defaults(handler=_cmd_create)
