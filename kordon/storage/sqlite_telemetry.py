"""An embedded telemetry store in SQLite, for ``kordon demo`` and laptops without InfluxDB.

It takes the same line protocol the collector sends InfluxDB (``write``) and answers the
same questions the API asks (:mod:`kordon.storage.telemetry`), so no role knows which store
is behind it. Points are keyed like InfluxDB's (series, field, time), so a redelivered
message overwrites rather than duplicates. It is meant for a demo-sized fleet, not for a
border's worth of history: use InfluxDB for that.

Failures are the store-neutral errors: lines that do not parse are :class:`StoreRejected`
(as InfluxDB answers 400), a database that is locked or cannot be written is
:class:`StoreUnavailable` (retried, as InfluxDB's 5xx), so the collector's writer and the
alert annotations treat both stores alike.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kordon.model.metrics import METRICS, SEQ_FIELD, MetricType
from kordon.storage.fieldtypes import TYPE_NAMES, FieldConflict, conflict_message
from kordon.storage.lineprotocol import LineProtocolError, parse_lines
from kordon.storage.telemetry import (
    STATUS_MEASUREMENT,
    History,
    HistoryRequest,
    LatestPoint,
    StatusPoint,
    StoreRejected,
    StoreUnavailable,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    tags TEXT NOT NULL,           -- canonical JSON of the tag set
    site TEXT, kind TEXT, device TEXT,
    UNIQUE (measurement, tags)
);
CREATE TABLE IF NOT EXISTS samples (
    series INTEGER NOT NULL,
    field TEXT NOT NULL,
    ts INTEGER NOT NULL,          -- nanoseconds since the epoch
    value,                        -- no declared type, so no affinity: "0042" stays text
    is_bool INTEGER NOT NULL DEFAULT 0,  -- SQLite has no boolean: remember which were
    PRIMARY KEY (series, field, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fields (  -- InfluxDB's field types: the first written, for good
    measurement TEXT NOT NULL,
    field TEXT NOT NULL,
    type TEXT NOT NULL,           -- float, integer, string, boolean
    PRIMARY KEY (measurement, field)
) WITHOUT ROWID;
"""
_VERSION = 1
# Files written before version 1 declared ``value ANY``: NUMERIC affinity, which turned text
# that reads as a number into one ("0042" into 42, "128.00" into 128) and floats with no
# fraction into integers. Their samples are kept; each field's type is taken from its
# earliest sample (integers are floats there, except the fields Kordon writes as integers).
_MIGRATE_V0 = """
ALTER TABLE samples RENAME TO samples_v0;
CREATE TABLE samples (
    series INTEGER NOT NULL, field TEXT NOT NULL, ts INTEGER NOT NULL, value,
    is_bool INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (series, field, ts)
) WITHOUT ROWID;
INSERT INTO samples SELECT series, field, ts, value, is_bool FROM samples_v0;
DROP TABLE samples_v0;
"""
_INTEGER_FIELDS = (
    SEQ_FIELD,
    *sorted({name for specs in METRICS.values() for name, spec in specs.items()
             if spec.type is MetricType.INT}),
)


class SqliteTelemetryStore:
    """Thread-safe; one connection per store, guarded by a lock (SQLite serialises anyway)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], int] = {}
        # (measurement, field) -> type: a type never changes once written, so what is cached
        # stays true; a name not cached is looked up in the file (another writer's).
        self._types: dict[tuple[str, str], str] = {}

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version < _VERSION:
                old = self._db.execute(
                    "SELECT sql FROM sqlite_master WHERE name = 'samples'"
                ).fetchone()
                if old is not None and "value ANY" in old[0]:
                    for statement in _MIGRATE_V0.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                if old is not None:
                    marks = ",".join("?" * len(_INTEGER_FIELDS))
                    self._db.execute(
                        "INSERT OR IGNORE INTO fields (measurement, field, type) "
                        "SELECT s.measurement, m.field, CASE WHEN m.is_bool THEN 'boolean' "
                        "WHEN typeof(m.value) = 'text' THEN 'string' "
                        f"WHEN typeof(m.value) = 'integer' AND m.field IN ({marks}) "
                        "THEN 'integer' ELSE 'float' END "
                        "FROM samples m JOIN series s ON s.id = m.series ORDER BY m.ts",
                        _INTEGER_FIELDS,
                    )
                self._db.execute(f"PRAGMA user_version = {_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # --- writes (kordon.storage.telemetry.TelemetryStore) -----------------------------------
    def ping(self) -> bool:
        return True

    def create_database(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def write(self, body: bytes, precision: str = "ns") -> None:
        """Like InfluxDB: a point with a field of another type than the one held (in the file,
        or earlier in this write) is dropped, the other points are stored, and the write is
        refused with InfluxDB's "partial write: field type conflict" message."""
        if precision != "ns":
            raise ValueError("the SQLite store takes nanosecond timestamps only")
        try:
            points = parse_lines(body.decode("utf-8"))
        except (LineProtocolError, UnicodeDecodeError) as exc:
            raise StoreRejected(400, f"unable to parse: {exc}") from None
        rows = []
        new_types: dict[tuple[str, str], str] = {}
        first: FieldConflict | _InvalidName | None = None
        dropped = 0
        with self._lock, _unavailable_on_error():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for measurement, tags, fields, ts in points:
                    if "time" in fields:  # as InfluxDB: dropped, and a point of it refused
                        fields = {k: v for k, v in fields.items() if k != "time"}
                        if not fields:
                            dropped += 1
                            first = first or _InvalidName(measurement, "time")
                            continue
                    conflict, fresh = self._check_types(measurement, fields, new_types)
                    if conflict is not None:
                        dropped += 1
                        first = first or conflict
                        continue
                    new_types.update(fresh)
                    series = self._series_id(measurement, tags)
                    stamp = ts if ts is not None else 0
                    for name, value in fields.items():
                        rows.append((series, name, stamp, value, type(value) is bool))
                self._db.executemany(
                    "INSERT OR REPLACE INTO samples (series, field, ts, value, is_bool) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO fields (measurement, field, type) VALUES (?, ?, ?)",
                    [(m, f, t) for (m, f), t in new_types.items()],
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed write leaves nothing half-done
                    self._db.execute("ROLLBACK")
                self._series.clear()  # ids made in the rolled-back transaction are gone
                raise
            self._types.update(new_types)
        if isinstance(first, _InvalidName):
            raise StoreRejected(
                400,
                f'partial write: invalid field name: input field "{first.field}" on '
                f'measurement "{first.measurement}" is invalid dropped={dropped}',
            )
        if first is not None:
            raise StoreRejected(400, conflict_message(first, dropped))

    def _check_types(
        self, measurement: str, fields: dict[str, Any], new_types: dict[tuple[str, str], str]
    ) -> tuple[FieldConflict | None, list[tuple[tuple[str, str], str]]]:
        """The point's first conflicting field, and the types it would add."""
        fresh = []
        for name, value in fields.items():
            got = TYPE_NAMES[type(value)]
            key = (measurement, name)
            held = new_types.get(key) or self._held(key)
            if held is None:
                fresh.append((key, got))
            elif held != got:
                return FieldConflict(measurement, name, got, held), []
        return None, fresh

    def _held(self, key: tuple[str, str]) -> str | None:
        held = self._types.get(key)
        if held is None:
            row = self._db.execute(
                "SELECT type FROM fields WHERE measurement = ? AND field = ?", key
            ).fetchone()
            if row is not None:
                held = self._types[key] = str(row[0])
        return held

    def field_types(self, measurement: str) -> dict[str, str]:
        rows = self._rows(
            "SELECT field, type FROM fields WHERE measurement = ? ORDER BY field", (measurement,)
        )
        return {str(name): str(kind) for name, kind in rows}

    def _series_id(self, measurement: str, tags: dict[str, str]) -> int:
        key = (measurement, orjson.dumps(tags, option=orjson.OPT_SORT_KEYS).decode())
        cached = self._series.get(key)
        if cached is not None:
            return cached
        self._db.execute(
            "INSERT OR IGNORE INTO series (measurement, tags, site, kind, device) "
            "VALUES (?, ?, ?, ?, ?)",
            (key[0], key[1], tags.get("site"), tags.get("kind"), tags.get("device")),
        )
        row = self._db.execute(
            "SELECT id FROM series WHERE measurement = ? AND tags = ?", key
        ).fetchone()
        self._series[key] = row[0]
        return int(row[0])

    # --- questions (kordon.storage.telemetry.TelemetryStore) ---------------------------------
    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock, _unavailable_on_error():
            return self._db.execute(sql, params).fetchall()

    def latest(self, measurement: str, since_ns: int) -> list[LatestPoint]:
        rows = self._rows(
            "SELECT s.site, s.device, m.field, m.value, m.is_bool, m.ts, "
            "       (SELECT MAX(ts) FROM samples WHERE series = s.id) AS newest "
            "FROM series s JOIN samples m ON m.series = s.id "
            "WHERE s.measurement = ? AND m.ts > ? "
            "AND m.ts = (SELECT MAX(ts) FROM samples WHERE series = s.id AND field = m.field)",
            (measurement, since_ns),
        )
        points: dict[tuple[str, str], tuple[int, dict[str, Any], dict[str, Any]]] = {}
        for site, device, name, value, is_bool, ts, newest in rows:
            if not site or not device:
                continue
            value = bool(value) if is_bool else value
            entry = points.setdefault((site, device), (newest, {}, {}))
            entry[2][name] = value
            if ts == newest:
                entry[1][name] = value
        return [
            LatestPoint(site, device, newest, fields, lasts)
            for (site, device), (newest, fields, lasts) in points.items()
        ]

    def statuses(self, since_ns: int) -> list[StatusPoint]:
        rows = self._rows(
            "SELECT s.site, s.kind, s.device, m.value, MAX(m.ts) FROM series s "
            "JOIN samples m ON m.series = s.id "
            "WHERE s.measurement = ? AND m.field = 'state' AND m.ts > ? GROUP BY s.id",
            (STATUS_MEASUREMENT, since_ns),
        )
        return [
            StatusPoint(site, kind, device, str(state), ts)
            for site, kind, device, state, ts in rows
            if site and kind and device
        ]

    def history(self, request: HistoryRequest) -> History:
        step_ns = int(request.step_s) * 1_000_000_000
        where = (
            "FROM samples m JOIN series s ON m.series = s.id "
            "WHERE s.measurement = ? AND s.site = ? AND s.device = ? AND m.field = ? "
            "AND m.ts >= ? AND m.ts < ?"
        )
        points: History = {}
        for name, agg in request.metrics.items():
            params = (
                request.measurement,
                request.site,
                request.device,
                name,
                request.start_ns,
                request.end_ns,
            )
            if agg in ("last", "first"):
                order = "DESC" if agg == "last" else "ASC"
                rows = self._rows(
                    "SELECT bucket, value, is_bool FROM (SELECT (m.ts / ?) * ? AS bucket, "
                    "m.value, m.is_bool, ROW_NUMBER() OVER (PARTITION BY m.ts / ? "
                    f"ORDER BY m.ts {order}) AS rank {where}) WHERE rank = 1 ORDER BY bucket",
                    (step_ns, step_ns, step_ns, *params),
                )
            else:
                rows = self._rows(
                    f"SELECT (m.ts / ?) * ? AS bucket, {_SQL_AGGREGATES[agg]}(m.value), 0 "
                    f"{where} GROUP BY bucket ORDER BY bucket",
                    (step_ns, step_ns, *params),
                )
            points[name] = [
                [bucket // 1_000_000, bool(value) if is_bool else value]
                for bucket, value, is_bool in rows
                if value is not None
            ]
        return points


@dataclass(frozen=True, slots=True)
class _InvalidName:
    measurement: str
    field: str


_SQL_AGGREGATES = {"mean": "AVG", "min": "MIN", "max": "MAX", "sum": "SUM", "count": "COUNT"}


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """SQLite's operational errors (locked or busy past the timeout, disk full, read-only
    file) may pass: report them as the store being unavailable, which callers retry."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"SQLite: {exc}") from exc
