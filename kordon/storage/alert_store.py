"""The alert store: SQLite under ``KORDON_DATA_DIR`` (``alerts.sqlite``).

Two processes use it: the alert engine (writes alerts, notification log and outbox; reads
silences and acks) and the API (reads alerts; writes acks and silences). SQLite in WAL mode
lets readers and one writer work at the same time, and ``busy_timeout`` makes a writer wait
for the other instead of failing. Each process (and each thread) opens its own
:class:`AlertStore`; a lock serialises the threads that share one.

Schema (version 1)::

    alerts(fingerprint PK, labels JSON, annotations JSON, state, active_at, starts_at,
           ends_at, updated_at)             firing and recently resolved alerts
    silences(id PK, matchers JSON, starts_at, ends_at, created_by, comment, created_at)
    acks(fingerprint, starts_at, author, comment, at)    PK (fingerprint, starts_at):
                                             an ack belongs to one firing instance
    nflog(group_key, receiver, firing JSON, resolved JSON, sent_at, material JSON)
                                             what each receiver was last told about each
                                             group (no duplicate pages; the incident picture)
    escalations(fingerprint, starts_at, receiver, at)    instances already escalated
    outbox(id, receiver, idempotency_key UNIQUE, payload JSON, created_at, next_attempt_at,
           attempts, last_error, delivered_at, given_up_at)   durable notifications
    devices(site, device, kind, interval, first_seen)   devices ever seen (silence detection
                                             after a restart)

Times are epoch seconds (REAL). JSON columns hold UTF-8 text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kordon.model.alerts import Ack, AlertRecord, AlertState, Facts, Matcher, Silence

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    state TEXT NOT NULL,
    active_at REAL NOT NULL,
    starts_at REAL,
    ends_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    fingerprint TEXT NOT NULL,
    starts_at REAL NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE TABLE IF NOT EXISTS nflog (
    group_key TEXT NOT NULL,
    receiver TEXT NOT NULL,
    firing TEXT NOT NULL,
    resolved TEXT NOT NULL,
    sent_at REAL NOT NULL,
    material TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (group_key, receiver)
);
CREATE TABLE IF NOT EXISTS escalations (
    fingerprint TEXT NOT NULL,
    starts_at REAL NOT NULL,
    receiver TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at REAL,
    given_up_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at, given_up_at, next_attempt_at);
CREATE TABLE IF NOT EXISTS devices (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    interval REAL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (site, device)
);
"""


@dataclass(frozen=True, slots=True)
class NflogEntry:
    firing: frozenset[str]
    resolved: frozenset[str]
    sent_at: float
    # fingerprint -> the incident picture (set of facts) the receiver was told; durable so
    # that a restarted engine compares a half-rebuilt picture with what was really told.
    material: dict[str, Facts] = field(default_factory=dict)


def _material_json(material: dict[str, Facts]) -> str:
    return json.dumps({fp: sorted(list(fact) for fact in facts)
                       for fp, facts in sorted(material.items())})


def _material_of(text: str) -> dict[str, Facts]:
    return {fp: frozenset(tuple(fact) for fact in facts)
            for fp, facts in json.loads(text).items()}


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    receiver: str
    idempotency_key: str
    payload: dict[str, Any]
    created_at: float
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class KnownDevice:
    site: str
    device: str
    kind: str
    interval: float | None


class AlertStoreError(Exception):
    """The store cannot be used (bad path, corrupt file, newer schema)."""


class AlertStore:
    """One SQLite connection with a lock. See the module docstring for the schema."""

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a committed transaction survives a process crash; only a
            # power loss may lose the last few, which the outbox tolerates (at-least-once).
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)  # idempotent; executescript commits by itself
            self._add_missing_columns()
            with self.transaction() as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                    )
                elif int(row[0]) > SCHEMA_VERSION:
                    raise AlertStoreError(
                        f"{self.path} has schema {row[0]}, newer than this Kordon "
                        f"({SCHEMA_VERSION}); upgrade Kordon"
                    )
        except sqlite3.DatabaseError as exc:
            raise AlertStoreError(f"cannot open alert store {self.path}: {exc}") from None

    def _add_missing_columns(self) -> None:
        """Columns added after schema 1 shipped, added to older files in place."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(nflog)")}
        if "material" not in columns:
            self._db.execute("ALTER TABLE nflog ADD COLUMN material TEXT NOT NULL DEFAULT '{}'")

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> AlertStore:
        return cls(Path(data_dir) / "alerts.sqlite")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ plumbing
    class _Tx:
        def __init__(self, store: AlertStore) -> None:
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            return self.store._db

        def __exit__(self, exc_type: object, *_: object) -> None:
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()

    def transaction(self) -> AlertStore._Tx:
        """``with store.transaction() as db:`` one atomic write (BEGIN IMMEDIATE)."""
        return AlertStore._Tx(self)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """Changes when *another* connection commits: cheap polling for new silences/acks."""
        return int(self._query("PRAGMA data_version")[0][0])

    # ------------------------------------------------------------------ alerts
    def save_alerts(self, records: Iterable[AlertRecord]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (fingerprint) DO UPDATE SET labels = excluded.labels, "
                "annotations = excluded.annotations, state = excluded.state, "
                "active_at = excluded.active_at, starts_at = excluded.starts_at, "
                "ends_at = excluded.ends_at, updated_at = excluded.updated_at",
                [
                    (
                        r.fingerprint,
                        json.dumps(r.labels, sort_keys=True),
                        json.dumps(r.annotations, sort_keys=True),
                        r.state.value,
                        r.active_at,
                        r.starts_at,
                        r.ends_at,
                        r.updated_at,
                    )
                    for r in records
                ],
            )

    def alerts(
        self, *, states: Sequence[AlertState] = (AlertState.FIRING,), site: str | None = None
    ) -> list[AlertRecord]:
        """Stored alerts in ``states`` (firing by default), with their current acks."""
        marks = ",".join("?" for _ in states)
        rows = self._query(
            "SELECT a.fingerprint, a.labels, a.annotations, a.state, a.active_at, a.starts_at, "
            "a.ends_at, a.updated_at, k.author, k.at FROM alerts a LEFT JOIN acks k "
            "ON k.fingerprint = a.fingerprint AND k.starts_at = a.starts_at "
            f"WHERE a.state IN ({marks}) ORDER BY a.starts_at, a.fingerprint",
            [s.value for s in states],
        )
        records = [
            AlertRecord(
                fingerprint=row[0],
                labels=json.loads(row[1]),
                annotations=json.loads(row[2]),
                state=AlertState(row[3]),
                active_at=row[4],
                starts_at=row[5],
                ends_at=row[6],
                updated_at=row[7],
                acked_by=row[8],
                acked_at=row[9],
            )
            for row in rows
        ]
        if site is not None:
            records = [r for r in records if r.labels.get("site") == site]
        return records

    def alert(self, fingerprint: str) -> AlertRecord | None:
        for record in self.alerts(
            states=(AlertState.FIRING, AlertState.RESOLVED, AlertState.PENDING)
        ):
            if record.fingerprint == fingerprint:
                return record
        return None

    def prune_resolved(self, before: float) -> int:
        """Forget alerts resolved before ``before`` (history lives in InfluxDB)."""
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND ends_at < ?", (before,)
            )
            db.execute("DELETE FROM acks WHERE at < ? AND NOT EXISTS (SELECT 1 FROM alerts a "
                       "WHERE a.fingerprint = acks.fingerprint)", (before,))
            return cursor.rowcount

    # ------------------------------------------------------------------ acks
    def ack(self, fingerprint: str, author: str, comment: str, now: float) -> Ack | None:
        """Acknowledge the alert's current firing instance; ``None`` if it is not firing.

        Acknowledging stops repeats and escalation for this instance only: when the alert
        resolves and fires again it is a new instance and pages again.
        """
        with self.transaction() as db:
            row = db.execute(
                "SELECT starts_at FROM alerts WHERE fingerprint = ? AND state = 'firing'",
                (fingerprint,),
            ).fetchone()
            if row is None or row[0] is None:
                return None
            db.execute(
                "INSERT OR REPLACE INTO acks VALUES (?, ?, ?, ?, ?)",
                (fingerprint, row[0], author, comment, now),
            )
            return Ack(fingerprint, row[0], author, comment, now)

    def unack(self, fingerprint: str) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM acks WHERE fingerprint = ?", (fingerprint,)).rowcount > 0

    def acks(self) -> list[Ack]:
        return [Ack(*row) for row in self._query("SELECT * FROM acks")]

    # ------------------------------------------------------------------ silences
    def add_silence(
        self,
        matchers: Sequence[Matcher],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
        silence_id: str | None = None,
    ) -> Silence:
        """Create (or, with ``silence_id``, replace) a silence. Matchers may not be empty."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        if all(m.matches({}) for m in matchers):
            # Alertmanager's rule: one matcher must not match the empty label value.
            raise ValueError("these matchers match every alert; name at least one label")
        silence = Silence(
            id=silence_id or uuid.uuid4().hex,
            matchers=tuple(matchers),
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            created_at=now,
        )
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    silence.id,
                    json.dumps([m.to_dict() for m in matchers]),
                    starts_at,
                    ends_at,
                    created_by,
                    comment,
                    now,
                ),
            )
        return silence

    def expire_silence(self, silence_id: str, now: float) -> bool:
        """End a silence now (kept for the record)."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
                (now, silence_id, now),
            )
            return cursor.rowcount > 0

    def silences(self, *, active_at: float | None = None) -> list[Silence]:
        """All silences, or those active at ``active_at``."""
        sql = "SELECT * FROM silences"
        params: tuple[Any, ...] = ()
        if active_at is not None:
            sql += " WHERE starts_at <= ? AND ends_at > ?"
            params = (active_at, active_at)
        return [
            Silence(
                id=row[0],
                matchers=tuple(Matcher.from_dict(m) for m in json.loads(row[1])),
                starts_at=row[2],
                ends_at=row[3],
                created_by=row[4],
                comment=row[5],
                created_at=row[6],
            )
            for row in self._query(sql + " ORDER BY starts_at", params)
        ]

    # ------------------------------------------------------------------ notification log
    def nflog(self) -> dict[tuple[str, str], NflogEntry]:
        return {
            (row[0], row[1]): NflogEntry(
                frozenset(json.loads(row[2])), frozenset(json.loads(row[3])), row[4],
                _material_of(row[5]),
            )
            for row in self._query(
                "SELECT group_key, receiver, firing, resolved, sent_at, material FROM nflog"
            )
        }

    def escalations(self) -> set[tuple[str, float]]:
        rows = self._query("SELECT fingerprint, starts_at FROM escalations")
        return {(row[0], row[1]) for row in rows}

    # ------------------------------------------------------------------ outbox
    def record_notifications(
        self,
        notifications: Sequence[tuple[str, str, dict[str, Any]]],
        nflog: Sequence[tuple[str, str, NflogEntry]],
        escalated: Sequence[tuple[str, float, str]],
        now: float,
    ) -> None:
        """Queue notifications and update the notification log in one transaction.

        Atomic on purpose: a crash between "queued" and "logged as sent" would either page
        twice or never; here both happen or neither. ``notifications`` are
        (receiver, idempotency_key, payload).
        """
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO outbox (receiver, idempotency_key, payload, created_at, "
                "next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                [(r, key, json.dumps(p), now, now) for r, key, p in notifications],
            )
            db.executemany(
                "INSERT OR REPLACE INTO nflog (group_key, receiver, firing, resolved, sent_at, "
                "material) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (key, receiver, json.dumps(sorted(e.firing)), json.dumps(sorted(e.resolved)),
                     e.sent_at, _material_json(e.material))
                    for key, receiver, e in nflog
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO escalations VALUES (?, ?, ?, ?)",
                [(fp, starts, receiver, now) for fp, starts, receiver in escalated],
            )

    def due(self, now: float, limit: int = 100) -> list[OutboxItem]:
        rows = self._query(
            "SELECT id, receiver, idempotency_key, payload, created_at, attempts, last_error "
            "FROM outbox WHERE delivered_at IS NULL AND given_up_at IS NULL "
            "AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (now, limit),
        )
        return [
            OutboxItem(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6])
            for row in rows
        ]

    def next_attempt_at(self) -> float | None:
        rows = self._query(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE delivered_at IS NULL "
            "AND given_up_at IS NULL"
        )
        return rows[0][0]

    def delivered(self, item_id: int, now: float) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                (now, item_id),
            )

    def failed(self, item_id: int, error: str, next_attempt_at: float | None, now: float) -> None:
        """Record a failed attempt; ``next_attempt_at=None`` gives up for good."""
        with self.transaction() as db:
            if next_attempt_at is None:
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, given_up_at = ? "
                    "WHERE id = ?",
                    (error[:1000], now, item_id),
                )
            else:
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                    "next_attempt_at = ? WHERE id = ?",
                    (error[:1000], next_attempt_at, item_id),
                )

    def outbox_counts(self) -> dict[str, int]:
        row = self._query(
            "SELECT SUM(delivered_at IS NULL AND given_up_at IS NULL), "
            "SUM(delivered_at IS NOT NULL), SUM(given_up_at IS NOT NULL) FROM outbox"
        )[0]
        return {"pending": row[0] or 0, "delivered": row[1] or 0, "given_up": row[2] or 0}

    def prune_outbox(self, before: float, receivers: Sequence[str] | None = None) -> int:
        """Delete rows delivered or given up before ``before`` (of ``receivers`` only, if
        given: the alerts role prunes its periodic Alertmanager pushes and Watchdogs)."""
        only = ""
        params: list[Any] = [before, before]
        if receivers is not None:
            only = f" AND receiver IN ({', '.join('?' * len(receivers))})"
            params.extend(receivers)
        with self.transaction() as db:
            return db.execute(
                "DELETE FROM outbox WHERE ((delivered_at IS NOT NULL AND delivered_at < ?) "
                "OR (given_up_at IS NOT NULL AND given_up_at < ?))" + only,
                params,
            ).rowcount

    # ------------------------------------------------------------------ devices
    def remember_devices(
        self, devices: Iterable[tuple[str, str, str, float | None]], now: float
    ) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO devices VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, device) DO UPDATE "
                "SET kind = excluded.kind, interval = COALESCE(excluded.interval, interval)",
                [(site, device, kind, interval, now) for site, device, kind, interval in devices],
            )

    def settle_site(self, site: str, cutoff: float) -> None:
        """A site changed its clock (alert engine): forget its devices, and remember that
        statuses and readings from before ``cutoff`` are not news there (a restart must not
        page a finished simulation's retained ``offline`` statuses)."""
        with self.transaction() as db:
            db.execute("DELETE FROM devices WHERE site = ?", (site,))
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value",
                (f"settled/{site}", repr(float(cutoff))),
            )

    def settled_sites(self) -> dict[str, float]:
        """Site -> cutoff of every site :meth:`settle_site` was told about."""
        return {
            key.removeprefix("settled/"): float(value)
            for key, value in self._query("SELECT key, value FROM meta WHERE key LIKE 'settled/%'")
        }

    def known_devices(self) -> list[KnownDevice]:
        return [KnownDevice(*row) for row in self._query(
            "SELECT site, device, kind, interval FROM devices ORDER BY site, device"
        )]
