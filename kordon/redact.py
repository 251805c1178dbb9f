"""Secrets out of printed configuration: ``kordon config`` prints what :func:`redact` returns.

A secret is hidden wherever it sits, so a new setting is safe before anyone remembers it:

* a URL's password (``mqtt://user:pass@host``) and its query values (``?token=...``), in any
  string value that is a URL, whichever key holds it;
* the value of a key that names a secret (``password``, ``token``, ``community``, ``auth_key``,
  ``priv_key``, ``*_password``, ``*_token``, ``*_secret``, ...);
* every value of a ``headers`` mapping (``X-Token: ...``, ``Authorization: ...``).

Role sections hide what only they know on top of this (the alert receivers declare their
secret fields, see ``alerts/notify``); :func:`printable_settings` takes their printable form
and still passes it through :func:`redact`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

MASK = "***"

SECRET_KEYS = frozenset({
    "password", "passwd", "pass", "token", "secret", "api_key", "apikey", "private_key",
    "authorization", "credentials", "community", "auth_key", "priv_key", "v3_auth_key",
    "v3_priv_key", "bot_token", "client_secret",
})
SECRET_SUFFIXES = ("_password", "_token", "_secret", "_community")
SECRET_MAPPINGS = frozenset({"headers", "http_headers"})


def is_secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in SECRET_KEYS or name.endswith(SECRET_SUFFIXES)


def redact_url(url: str, *, hide_path: bool = False) -> str:
    """``url`` without its password and query values (and path, with ``hide_path``).

    ``hide_path`` is for receiver URLs: webhook endpoints often carry their token in the path
    (Slack, Teams, Telegram), so only scheme, user, host and port are left to recognise them.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return MASK if "@" in url else url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if sep else f"{userinfo}@{hostport}"
    path, query = parts.path, parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK) for k, _v in pairs], safe="*")
    if hide_path and path not in ("", "/"):
        path = "/" + MASK
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def _looks_like_url(value: str) -> bool:
    scheme, sep, _rest = value.partition("://")
    return bool(sep) and scheme.replace("+", "").replace(".", "").replace("-", "").isalnum()


def redact(value: Any, key: str = "") -> Any:
    """A copy of plain data (mappings, lists, scalars) with every secret replaced by ``***``."""
    if key and is_secret_key(key) and value not in (None, "", [], {}):
        if isinstance(value, Mapping):
            return {k: MASK for k in value}
        if isinstance(value, list):
            return [MASK for _ in value]
        return MASK
    if isinstance(value, Mapping):
        if key.lower() in SECRET_MAPPINGS:
            return {k: MASK for k in value}
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, key) for item in value]
    if isinstance(value, str) and _looks_like_url(value):
        return redact_url(value)
    return value


def printable_settings(
    settings: BaseModel, sections: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The effective configuration as ``kordon config`` prints it, secrets hidden.

    ``sections`` replace the kernel's raw form of role sections with the role's validated,
    printable one (defaults filled in, its own secrets already hidden).
    """
    data = settings.model_dump(mode="json")
    data.update(sections or {})
    return redact(data)
