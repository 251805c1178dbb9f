"""Learned battery models, one row per UPS: SQLite under ``KORDON_DATA_DIR`` (``battery.sqlite``).

The alerts role writes a UPS's model each time a discharge finishes (and ``kordon battery
relearn`` rewrites them all from stored history); the API reads them. A file of its own, not
a table of ``alerts.sqlite``: a relearn may rewrite every row without holding up the engine's
alert transactions. Schema (version 1)::

    models(site, device, model_version, model JSON, learned_at, updated_at)  PK (site, device)

``model`` is ``BatteryModel.to_dict()`` of ``alerts.battery`` (health, curves, evidence);
``model_version`` is the learner's, so a newer learner knows which rows to recompute.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    model TEXT NOT NULL,
    learned_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (site, device)
);
"""


@dataclass(frozen=True, slots=True)
class StoredModel:
    site: str
    device: str
    model_version: int
    model: dict[str, Any]
    learned_at: float | None
    updated_at: float


class BatteryStore:
    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path) -> BatteryStore:
        return cls(Path(data_dir) / "battery.sqlite")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def save(self, rows: Iterable[tuple[str, str, int, dict[str, Any], float | None]],
             now: float) -> None:
        """``(site, device, model_version, model, learned_at)`` rows, in one transaction."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site, device) DO "
                "UPDATE SET model_version = excluded.model_version, model = excluded.model, "
                "learned_at = excluded.learned_at, updated_at = excluded.updated_at",
                [(s, d, v, json.dumps(m, sort_keys=True), at, now) for s, d, v, m, at in rows],
            )

    def data_version(self) -> int:
        """Changes when another connection committed (the API's cue to re-read)."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def models(self) -> list[StoredModel]:
        with self._lock:
            rows = self._db.execute(
                "SELECT site, device, model_version, model, learned_at, updated_at FROM models "
                "ORDER BY site, device"
            ).fetchall()
        return [StoredModel(s, d, v, json.loads(m), at, up) for s, d, v, m, at, up in rows]

    def model(self, site: str, device: str) -> StoredModel | None:
        with self._lock:
            row = self._db.execute(
                "SELECT site, device, model_version, model, learned_at, updated_at FROM models "
                "WHERE site = ? AND device = ?", (site, device)
            ).fetchone()
        if row is None:
            return None
        s, d, v, m, at, up = row
        return StoredModel(s, d, v, json.loads(m), at, up)
