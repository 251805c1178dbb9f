"""Alert types the alert store persists and the API reads: names, states, fingerprints,
matchers, records, silences, acks.

They are the narrow contract between the alert engine (``alerts/``), which writes alert state,
and the API, which reads it and writes acks and silences through
:mod:`kordon.storage.alert_store`; the API may not import the ``alerts`` role package. Everything
here is plain data and pure functions, so both sides agree on what a fingerprint or a silence
matcher means. Rules, routing and receivers are the engine's own business (``alerts/config``,
``alerts/notify``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

Labels = Mapping[str, str]

ALERT_NAMES = (
    "SitePowerOutage",
    "SiteUnreachable",
    "MainsPowerLost",
    "BatteryLow",
    "BatteryDepletionImminent",
    "DeviceOffline",
    "ScheduledOutageAtRisk",
    "ReplaceBattery",
)

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not set" for endsAt
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# An incident's picture as a set of facts, e.g. ("battery", "ups-1"): see alerts.incident.
Facts = frozenset[tuple[str, ...]]


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(labels: Labels) -> str:
    """A stable 16-hex-digit identity of a label set (order does not matter).

    Alertmanager uses FNV-1a over the sorted labels; any stable hash serves the same purpose,
    and SHA-256 avoids collisions between label sets that differ only in separators.
    """
    digest = hashlib.sha256()
    for name in sorted(labels):
        digest.update(name.encode())
        digest.update(b"\xff")
        digest.update(labels[name].encode())
        digest.update(b"\xfe")
    return digest.hexdigest()[:16]


def rfc3339(epoch: float | None) -> str:
    """Epoch seconds as RFC 3339 with milliseconds (``None`` -> Alertmanager's zero time)."""
    if epoch is None:
        return ZERO_TIME
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- matchers


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


_MATCHER_TEXT = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher, as in Alertmanager: ``name op value``.

    A missing label matches as the empty string, so ``cause!="power"`` matches alerts without
    a ``cause`` label and ``cause=""`` selects them. Regular expressions are anchored.
    """

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, name: str, op: str | MatchOp, value: str) -> Matcher:
        if not _LABEL_NAME.match(name):
            raise ValueError(f"label name {name!r} must match {_LABEL_NAME.pattern}")
        op = MatchOp(op)
        regex = None
        if op in (MatchOp.RE, MatchOp.NRE):
            try:
                regex = re.compile(f"(?:{value})")
            except re.error as exc:
                raise ValueError(f"bad regular expression {value!r}: {exc}") from None
        return cls(name, op, value, regex)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``site="chop"``, ``severity!=info``, ``device=~"ups-.*"``."""
        match = _MATCHER_TEXT.match(text)
        if not match:
            raise ValueError(
                f"matcher {text!r} must look like name=value, name!=value, name=~regex "
                "or name!~regex"
            )
        name, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return cls.make(name, op, value)

    def matches(self, labels: Labels) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def to_dict(self) -> dict[str, Any]:
        """Alertmanager API v2 shape (``isRegex``, ``isEqual``)."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op in (MatchOp.RE, MatchOp.NRE),
            "isEqual": self.op in (MatchOp.EQ, MatchOp.RE),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Matcher:
        """Accepts the Alertmanager v2 shape or ``{"name", "op", "value"}``."""
        if "op" in data:
            return cls.make(str(data["name"]), str(data["op"]), str(data["value"]))
        regex, equal = bool(data.get("isRegex")), bool(data.get("isEqual", True))
        op = {
            (False, True): MatchOp.EQ,
            (False, False): MatchOp.NE,
            (True, True): MatchOp.RE,
            (True, False): MatchOp.NRE,
        }[(regex, equal)]
        return cls.make(str(data["name"]), op, str(data["value"]))

    def __str__(self) -> str:
        return f'{self.name}{self.op.value}"{self.value}"'


def matches_all(matchers: Iterable[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class AlertRecord:
    """An alert as stored and as shown by the API.

    ``starts_at`` is when it began firing (``active_at`` when it became pending); ``ends_at``
    is set once resolved. ``acked_by`` is filled when the current firing instance is
    acknowledged: an ack belongs to one instance, so a re-fire after resolution is new.
    """

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    active_at: float
    starts_at: float | None = None
    ends_at: float | None = None
    updated_at: float = 0.0
    acked_by: str | None = None
    acked_at: float | None = None
    silenced_by: list[str] = field(default_factory=list)
    inhibited_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "state": self.state.value,
            "activeAt": rfc3339(self.active_at),
            "startsAt": rfc3339(self.starts_at) if self.starts_at else None,
            "endsAt": rfc3339(self.ends_at) if self.ends_at else None,
            "ackedBy": self.acked_by,
            "ackedAt": rfc3339(self.acked_at) if self.acked_at else None,
            "silencedBy": list(self.silenced_by),
            "inhibitedBy": list(self.inhibited_by),
        }


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float = 0.0

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Labels) -> bool:
        return matches_all(self.matchers, labels)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        state = None
        if now is not None:
            state = "active" if self.active(now) else (
                "pending" if now < self.starts_at else "expired"
            )
        return {
            "id": self.id,
            "matchers": [m.to_dict() for m in self.matchers],
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": state} if state else None,
        }


@dataclass(frozen=True, slots=True)
class Ack:
    fingerprint: str
    starts_at: float  # the firing instance acknowledged
    author: str
    comment: str
    at: float
