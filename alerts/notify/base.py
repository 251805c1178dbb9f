"""What every receiver kind provides: a configuration model that builds its sender.

A receiver kind is one module of ``alerts/notify/`` with one :class:`ReceiverConfig` subclass
(its ``kind`` is the key under a receiver in ``notify.receivers``, its fields are that key's
settings, its ``secrets`` the fields ``kordon config`` hides) whose :meth:`~ReceiverConfig.notifier`
builds the sender the outbox delivers through. The registry in :mod:`alerts.notify` lists the
kinds; configuration validation, ``kordon config``, the outbox and the engine's fan-out all
read it, so nothing else names a receiver type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from kordon.redact import MASK, redact_url


class DeliveryError(Exception):
    """A delivery failed; ``retryable`` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    """Sends one stored notification (Alertmanager v4 payload) or raises DeliveryError."""

    def send(self, payload: dict[str, Any], idempotency_key: str) -> None: ...

    def close(self) -> None: ...


class ReceiverConfig(BaseModel):
    """Base of every receiver kind's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: ClassVar[str]
    # Fields ``kordon config`` never prints: a mapping (headers) has every value hidden, a URL
    # keeps only its scheme, user, host and port.
    secrets: ClassVar[frozenset[str]] = frozenset()
    # False for a kind that takes every alert rather than the routing tree's notifications
    # (``alertmanager``: :mod:`alerts.push` feeds it); the fan-out of routed pages skips it.
    routed: ClassVar[bool] = True

    def notifier(self) -> Notifier:
        raise NotImplementedError(f"receiver kind {self.kind!r} builds no notifier")

    def redacted(self) -> dict[str, Any]:
        """The settings as ``kordon config`` prints them: secrets hidden, keys as written."""
        data = self.model_dump(mode="json", by_alias=True)
        for name in self.secrets:
            key = self.model_fields[name].alias or name
            value = data.get(key)
            if isinstance(value, Mapping):
                data[key] = {k: MASK for k in value}
            elif isinstance(value, str) and "://" in value:
                data[key] = redact_url(value, hide_path=True)
            elif value not in (None, ""):
                data[key] = MASK
        return data
