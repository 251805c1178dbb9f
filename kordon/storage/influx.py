"""InfluxDB through the 1.x-compatible HTTP API (``POST /write``, ``/query``).

InfluxDB 1.x, 2.x (v1 compatibility API with a DBRP mapping) and 3.x all serve these two
endpoints, and so does Grafana's InfluxQL data source, so Kordon speaks nothing else.
Authentication: a token (sent as ``Authorization: Token ...``, which 1.8+, 2.x and 3.x accept)
or a user name and password (HTTP basic auth, which every version accepts).
"""

from __future__ import annotations

import gzip as gzip_codec
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)


class InfluxError(Exception):
    """Base class. ``retryable`` says whether the same request may succeed later."""

    retryable = True


class InfluxUnavailable(InfluxError):
    """Connection refused, timed out, or a 5xx: the server may come back."""


class InfluxAuthError(InfluxError):
    """401/403. Retried (an operator can fix the token without losing data), logged loudly."""


class InfluxDatabaseMissing(InfluxError):
    """404 database not found."""


class InfluxRejected(InfluxError):
    """4xx for the data itself (syntax, field type conflict): retrying the same lines fails."""

    retryable = False

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


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
        """Write newline-separated line protocol. Raises an :class:`InfluxError` subclass."""
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
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 204:
            return
        raise _error_for(response)

    def query(self, q: str, *, database: str | None = None, epoch: str = "ns") -> list[dict]:
        """Run InfluxQL; returns the ``results`` list. Statement errors raise InfluxRejected."""
        params = {"q": q, "db": database or self.target.database, "epoch": epoch}
        try:
            response = self._http.post("/query", data=params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise _error_for(response)
        results: list[dict[str, Any]] = orjson.loads(response.content).get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxRejected(400, result["error"])
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
        except InfluxError as exc:
            log.info("could not create database %s: %s", self.target.database, exc)
            return False
        return True


def _error_for(response: httpx.Response) -> InfluxError:
    status = response.status_code
    try:
        message = orjson.loads(response.content).get("error") or response.text
    except orjson.JSONDecodeError:
        message = response.text
    message = message.strip()[:500]
    if status >= 500:
        return InfluxUnavailable(f"HTTP {status}: {message}")
    if status in (401, 403):
        return InfluxAuthError(f"HTTP {status}: {message} (check KORDON_INFLUX_TOKEN)")
    if status == 404 and "database not found" in message:
        return InfluxDatabaseMissing(message)
    if status == 404:
        return InfluxUnavailable(f"HTTP 404 from {response.request.url.path}: {message}")
    if status == 429:
        return InfluxUnavailable(f"HTTP 429 (rate limited): {message}")
    return InfluxRejected(status, message)
