"""The telemetry store seam: what every role may ask of a store, whichever database is behind it.

This module is the only one roles import to reach telemetry storage. It holds the
:class:`TelemetryStore` protocol, the point types its questions answer with, the errors every
backend raises (so a caller never learns which database failed it), the measurement names
Kordon writes besides the device kinds. :mod:`kordon.storage.stores` turns ``influx`` settings
into a store (:func:`~kordon.storage.stores.open_telemetry_store`, or
:class:`~kordon.storage.stores.TelemetryStores` for a role with threads).

Two backends implement it: :class:`~kordon.storage.influx.InfluxTelemetryStore` (InfluxDB
through the 1.x-compatible HTTP API; production) and
:class:`~kordon.storage.sqlite_telemetry.SqliteTelemetryStore` (an embedded SQLite file;
``kordon demo`` and laptops). The scheme of ``influx.url`` picks one: ``http(s)://`` or
``sqlite:///path``. Writers send line protocol to both; readers ask the three questions of the
protocol, so no role writes InfluxQL or SQL of its own.

Both keep a field's first type for good and refuse a point of another type with the same
answer (:mod:`kordon.storage.fieldtypes`), so a collector treats them alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

STATUS_MEASUREMENT = "device_status"  # availability changes; tags site, kind, device
ALERTS_MEASUREMENT = "alerts"  # alert transitions, read by Grafana as annotations
SCHEDULE_MEASUREMENT = "outage_schedule"  # planned cuts per site (kordon/schedule/points.py)
AGGREGATIONS = frozenset({"mean", "min", "max", "last", "first", "sum", "count"})


# --- errors ----------------------------------------------------------------------------------
class StoreError(Exception):
    """Base class. ``retryable`` says whether the same request may succeed later."""

    retryable = True


class StoreUnavailable(StoreError):
    """The store did not answer (refused, timed out, 5xx, busy): it may come back."""


class StoreAuthError(StoreError):
    """The store refused our credentials. Retried (an operator can fix the token without
    losing data), logged loudly."""


class StoreDatabaseMissing(StoreError):
    """The database does not exist (yet): create it, or wait for an operator to."""


class StoreRejected(StoreError):
    """The store refused the request itself (unparseable lines, a field type conflict, a bad
    query): sending the same request again fails again."""

    retryable = False

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status  # an HTTP status, also for backends that do not speak HTTP
        self.message = message


# --- points ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LatestPoint:
    """The newest point of one device, and the last known value of every field it sent."""

    site: str
    device: str
    ts_ns: int
    fields: dict[str, Any]  # of the newest point only
    last_values: dict[str, Any]  # last non-null value of every field, times unknown


@dataclass(frozen=True, slots=True)
class StatusPoint:
    site: str
    kind: str
    device: str
    state: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """``metrics`` maps each metric to its aggregation; names must already be validated."""

    measurement: str
    site: str
    device: str
    metrics: dict[str, str]
    start_ns: int
    end_ns: int
    step_s: int


History = dict[str, list[list[Any]]]  # metric -> [[epoch ms, value], ...] in time order


class TelemetryStore(Protocol):
    """Every method may raise a :class:`StoreError` subclass, and nothing else for a store
    that is down or refuses: callers catch those, never a backend's own exceptions."""

    def write(self, body: bytes, precision: str = "ns") -> None:
        """Write newline-separated line protocol. Points are keyed by series, field and time,
        so writing the same lines again changes nothing."""

    def create_database(self) -> bool: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...

    def latest(self, measurement: str, since_ns: int) -> list[LatestPoint]: ...

    def statuses(self, since_ns: int) -> list[StatusPoint]: ...

    def history(self, request: HistoryRequest) -> History: ...

    def field_types(self, measurement: str) -> dict[str, str]:
        """The type the store holds for each field of ``measurement``: ``float``,
        ``integer``, ``string`` or ``boolean`` (:mod:`kordon.storage.fieldtypes`). A point
        whose field has another type is refused (:class:`StoreRejected`, InfluxDB's "field
        type conflict" message); the other points of the write are stored."""


# --- settings -> store -----------------------------------------------------------------------
def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///absolute/path`` or ``sqlite://relative/path`` URL names, or None
    for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        return None
    return Path(parts.netloc + parts.path)
