"""Bearer tokens with roles: ``viewer`` reads, ``operator`` also acts, ``admin`` does all.

Only SHA-256 hashes of tokens are configured, so a leaked configuration file grants nothing.
Tokens are long random strings, so a plain (unsalted) hash is enough: there is no dictionary to
attack. The presented token is hashed and looked up; the token itself is never stored, logged
or echoed back in an error.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from kordon.config import ApiToken

TOKEN_PREFIX = "kdn_"
_CHALLENGE = 'Bearer realm="kordon"'


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.upper()]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token() -> str:
    """A new token: 256 random bits, URL-safe, with a prefix that secret scanners can spot."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenBook:
    """The configured tokens, looked up by hash."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._by_hash = {t.sha256: Principal(t.name, Role.parse(t.role)) for t in tokens}

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthorized(
                "missing-token",
                "this endpoint needs a bearer token: send 'Authorization: Bearer <token>'; "
                "an administrator mints one with `kordon token create`",
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(
                "invalid-token",
                "the Authorization header must be 'Bearer <token>'",
            )
        principal = self._by_hash.get(hash_token(token))
        if principal is None:
            raise _unauthorized(
                "invalid-token",
                "the token is not one of the configured API tokens (revoked or mistyped?)",
                error="invalid_token",
            )
        return principal


def _unauthorized(kind: str, detail: str, error: str | None = None) -> Problem:
    challenge = _CHALLENGE + (f', error="{error}"' if error else "")
    return Problem(
        401, kind, "Authentication required", detail, headers={"WWW-Authenticate": challenge}
    )


# Declares the scheme in the OpenAPI document; the header is checked by TokenBook itself.
_BEARER = HTTPBearer(auto_error=False, description="an API token: kordon token create")


def require(role: Role) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller's principal, if its role is at least ``role``."""

    def dependency(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(_BEARER),  # noqa: B008
    ) -> Principal:
        book: TokenBook = request.app.state.context.tokens
        principal = book.authenticate(request.headers.get("authorization"))
        if principal.role < role:
            raise Problem(
                403,
                "forbidden",
                "Role too weak",
                f"this needs the {role.name.lower()} role; the token "
                f"{principal.name!r} has {principal.role.name.lower()}",
            )
        request.state.principal = principal
        return principal

    return dependency


VIEWER = require(Role.VIEWER)
OPERATOR = require(Role.OPERATOR)
ADMIN = require(Role.ADMIN)
