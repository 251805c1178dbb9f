"""The telemetry store: what every role may ask of it, whichever database is behind it.

Two implementations: :class:`InfluxTelemetryStore` (InfluxDB through the 1.x-compatible HTTP
API; production) and :class:`~kordon.storage.sqlite_telemetry.SqliteTelemetryStore` (an
embedded SQLite file; ``kordon demo`` and laptops). :func:`open_telemetry_store` picks one by
the scheme of ``influx.url``: ``http(s)://`` or ``sqlite:///path``. Writers send line protocol
to both; readers ask the three questions below, so no role writes InfluxQL of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from kordon.storage.influx import InfluxClient, InfluxTarget, quote_identifier, quote_string

STATUS_MEASUREMENT = "device_status"
AGGREGATIONS = frozenset({"mean", "min", "max", "last", "first", "sum", "count"})


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
    def write(self, body: bytes, precision: str = "ns") -> None: ...

    def create_database(self) -> bool: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...

    def latest(self, measurement: str, since_ns: int) -> list[LatestPoint]: ...

    def statuses(self, since_ns: int) -> list[StatusPoint]: ...

    def history(self, request: HistoryRequest) -> History: ...


class InfluxTelemetryStore(InfluxClient):
    """InfluxDB: the questions as InfluxQL, every identifier and literal quoted."""

    def latest(self, measurement: str, since_ns: int) -> list[LatestPoint]:
        table = quote_identifier(measurement)
        where = f"WHERE time > {int(since_ns)}"
        newest = self.series(
            f'SELECT * FROM {table} {where} GROUP BY "site","device" ORDER BY time DESC LIMIT 1'
        )
        lasts = {
            (row.get("site"), row.get("device")): {
                key.removeprefix("last_"): value
                for key, value in row.items()
                if key.startswith("last_") and value is not None
            }
            for row in self.series(f'SELECT last(*) FROM {table} {where} GROUP BY "site","device"')
        }
        points = []
        for row in newest:
            site, device = row.get("site"), row.get("device")
            if not site or not device:
                continue
            fields = {
                key: value
                for key, value in row.items()
                if key not in ("time", "site", "device") and value is not None
            }
            points.append(
                LatestPoint(site, device, int(row["time"]), fields, lasts.get((site, device), {}))
            )
        return points

    def statuses(self, since_ns: int) -> list[StatusPoint]:
        rows = self.series(
            f'SELECT last("state") AS "state" FROM {quote_identifier(STATUS_MEASUREMENT)} '
            f'WHERE time > {int(since_ns)} GROUP BY "site","kind","device"'
        )
        return [
            StatusPoint(
                row["site"], row["kind"], row["device"], str(row["state"]), int(row["time"])
            )
            for row in rows
            if row.get("site") and row.get("kind") and row.get("device") and row.get("state")
        ]

    def history(self, request: HistoryRequest) -> History:
        selectors = ", ".join(
            f"{_aggregation(agg)}({quote_identifier(name)}) AS {quote_identifier(name)}"
            for name, agg in request.metrics.items()
        )
        q = (
            f"SELECT {selectors} FROM {quote_identifier(request.measurement)} "
            f'WHERE "site" = {quote_string(request.site)} '
            f'AND "device" = {quote_string(request.device)} '
            f"AND time >= {int(request.start_ns)} AND time < {int(request.end_ns)} "
            f"GROUP BY time({int(request.step_s)}s) fill(none)"
        )
        points: History = {name: [] for name in request.metrics}
        for result in self.query(q, epoch="ms"):
            for series in result.get("series", []):
                columns = series["columns"]
                for values in series["values"]:
                    for column, value in zip(columns[1:], values[1:], strict=True):
                        if value is not None and column in points:
                            points[column].append([values[0], value])
        return points


def _aggregation(name: str) -> str:
    if name not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {name!r}")
    return name


def open_telemetry_store(settings: Any) -> TelemetryStore:
    """The store ``settings`` (an ``InfluxSettings``) names: InfluxDB or a SQLite file."""
    parts = urlsplit(settings.url)
    if parts.scheme == "sqlite":
        from kordon.storage.sqlite_telemetry import SqliteTelemetryStore

        # sqlite:///absolute/path or sqlite://relative/path
        return SqliteTelemetryStore(Path(parts.netloc + parts.path))
    target: InfluxTarget = settings.target()
    return InfluxTelemetryStore(target)
