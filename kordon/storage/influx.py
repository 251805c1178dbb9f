"""InfluxDB through the 1.x-compatible HTTP API (``POST /write``, ``/query``).

InfluxDB 1.x, 2.x (v1 compatibility API with a DBRP mapping) and 3.x all serve these two
endpoints, and so does Grafana's InfluxQL data source, so Kordon speaks nothing else.
Authentication: a token (sent as ``Authorization: Token ...``, which 1.8+, 2.x and 3.x accept)
or a user name and password (HTTP basic auth, which every version accepts), given as settings
or as the user-info of the URL (:meth:`InfluxTarget.from_settings`).

Failures are raised as the store-neutral errors of :mod:`kordon.storage.telemetry`, so the
roles handle InfluxDB and the embedded SQLite store alike.
"""

from __future__ import annotations

import gzip as gzip_codec
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from kordon.storage.telemetry import (
    AGGREGATIONS,
    STATUS_MEASUREMENT,
    History,
    HistoryRequest,
    LatestPoint,
    StatusPoint,
    StoreAuthError,
    StoreDatabaseMissing,
    StoreError,
    StoreRejected,
    StoreUnavailable,
)

log = logging.getLogger(__name__)


# The name a rejection had before the store-neutral errors; tests written against InfluxDB use
# it. New code catches kordon.storage.telemetry.StoreRejected (the same class).
InfluxRejected = StoreRejected


@dataclass(frozen=True, slots=True)
class InfluxTarget:
    url: str = "http://127.0.0.1:8086"
    database: str = "kordon"
    retention_policy: str = ""
    token: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    gzip: bool = False

    @classmethod
    def from_settings(cls, settings: Any, url: str | None = None) -> InfluxTarget:
        """The target ``settings`` (an ``InfluxSettings``) name, at ``url`` if given (the same
        InfluxDB as another network sees it, e.g. Grafana's).

        Credentials may sit in the URL's user-info (``http://user:pass@host:8086``); explicit
        ``username`` and ``password`` settings win over it. The URL kept here has no user-info,
        so it can be shown and logged.
        """
        parts = urlsplit(url or settings.url)
        username = settings.username or (unquote(parts.username) if parts.username else None)
        password = settings.password or (unquote(parts.password) if parts.password else None)
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        return cls(
            url=f"{parts.scheme}://{netloc}{parts.path}",
            database=settings.database,
            retention_policy=settings.retention_policy,
            token=settings.token,
            username=username,
            password=password,
            timeout=settings.timeout,
            gzip=settings.gzip,
        )


def quote_identifier(name: str) -> str:
    """Quote an InfluxQL identifier (database, measurement, field or tag key)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """Quote an InfluxQL string literal (tag values in WHERE clauses).

    InfluxQL has no escape for a carriage return or NUL: such values are refused here, so a
    caller answers "bad input" instead of sending a query InfluxDB cannot parse.
    """
    if "\r" in value or "\0" in value:
        raise ValueError("InfluxQL strings cannot hold a carriage return or NUL")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


class InfluxClient:
    """A small synchronous client; one per thread that writes or queries."""

    def __init__(self, target: InfluxTarget) -> None:
        self.target = target
        headers = {"User-Agent": "kordon"}
        auth: httpx.BasicAuth | None = None
        if target.token:
            headers["Authorization"] = f"Token {target.token}"
        elif target.username:
            auth = httpx.BasicAuth(target.username, target.password or "")
        self._http = httpx.Client(
            base_url=target.url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=target.timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        try:
            return self._http.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def write(self, body: bytes, precision: str = "ns") -> None:
        """Write newline-separated line protocol. Raises a :class:`StoreError` subclass."""
        params = {"db": self.target.database, "precision": precision}
        if self.target.retention_policy:
            params["rp"] = self.target.retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.target.gzip:
            body = gzip_codec.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._http.post("/write", params=params, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 204:
            return
        raise _error_for(response)

    def query(self, q: str, *, database: str | None = None, epoch: str = "ns") -> list[dict]:
        """Run InfluxQL; returns the ``results`` list. Statement errors raise StoreRejected."""
        params = {"q": q, "db": database or self.target.database, "epoch": epoch}
        try:
            response = self._http.post("/query", data=params)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise _error_for(response)
        results: list[dict[str, Any]] = orjson.loads(response.content).get("results", [])
        for result in results:
            if "error" in result:
                raise StoreRejected(400, result["error"])
        return results

    def series(self, q: str) -> list[dict[str, Any]]:
        """Rows of a one-statement query as dicts, with the series tags merged in."""
        rows: list[dict[str, Any]] = []
        for result in self.query(q):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                columns = series["columns"]
                for values in series["values"]:
                    row = dict(zip(columns, values, strict=True))
                    row.update(tags)
                    rows.append(row)
        return rows

    def create_database(self) -> bool:
        """CREATE DATABASE where permitted (1.x); 2.x and 3.x manage databases themselves."""
        try:
            self.query(f"CREATE DATABASE {quote_identifier(self.target.database)}")
        except StoreError as exc:
            log.info("could not create database %s: %s", self.target.database, exc)
            return False
        return True


def _error_for(response: httpx.Response) -> StoreError:
    status = response.status_code
    try:
        message = orjson.loads(response.content).get("error") or response.text
    except orjson.JSONDecodeError:
        message = response.text
    message = message.strip()[:500]
    if status >= 500:
        return StoreUnavailable(f"HTTP {status}: {message}")
    if status in (401, 403):
        return StoreAuthError(f"HTTP {status}: {message} (check KORDON_INFLUX_TOKEN)")
    if status == 404 and "database not found" in message:
        return StoreDatabaseMissing(message)
    if status == 404:
        return StoreUnavailable(f"HTTP 404 from {response.request.url.path}: {message}")
    if status == 429:
        return StoreUnavailable(f"HTTP 429 (rate limited): {message}")
    return StoreRejected(status, message)


class InfluxTelemetryStore(InfluxClient):
    """InfluxDB as a :class:`~kordon.storage.telemetry.TelemetryStore`: the questions as
    InfluxQL, every identifier and literal quoted."""

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


    def field_types(self, measurement: str) -> dict[str, str]:
        """``SHOW FIELD KEYS``. InfluxDB 1.x types a field per shard: a name written with two
        types into two shards (before Kordon typed it) is listed twice; the first listed is
        taken, and a write into a shard that holds the other is refused and corrected like
        any conflict."""
        try:
            rows = self.series(f"SHOW FIELD KEYS FROM {quote_identifier(measurement)}")
        except StoreRejected as exc:
            if "database not found" in exc.message:
                return {}
            raise
        types: dict[str, str] = {}
        for row in rows:
            types.setdefault(str(row["fieldKey"]), str(row["fieldType"]))
        return types


def _aggregation(name: str) -> str:
    if name not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {name!r}")
    return name
