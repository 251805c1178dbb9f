"""Learned battery models as the API serves them: read from ``battery.sqlite``.

The alerts role learns each UPS's battery and saves the model when a discharge finishes
(``kordon battery relearn`` rewrites them from history); the API never imports the learner,
it reads the saved JSON and evaluates the runtime curve with the kernel's formula
(:mod:`kordon.model.battery`). The file is re-read only when another connection changed it
(SQLite's ``data_version``), so a request costs a dictionary lookup.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kordon.model.battery import curve_at, learned_time_to_empty, used_from_charge
from kordon.model.nut import figure
from kordon.storage.battery_store import BatteryStore, StoredModel


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class BatteryModels:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "battery.sqlite"
        self._store: BatteryStore | None = None
        self._version = -1
        self._models: dict[tuple[str, str], StoredModel] = {}
        self._lock = threading.Lock()

    def _fresh(self) -> dict[tuple[str, str], StoredModel]:
        with self._lock:
            if self._store is None:
                if not self.path.exists():
                    return {}
                self._store = BatteryStore(self.path)
            try:
                version = self._store.data_version()
                if version != self._version:
                    self._models = {(m.site, m.device): m for m in self._store.models()}
                    self._version = version
            except sqlite3.Error:
                pass  # keep what we had; the alerts role may be mid-write
            return self._models

    def get(self, site: str, device: str) -> Mapping[str, Any] | None:
        found = self._fresh().get((site, device))
        return found.model if found is not None else None

    def all(self) -> list[StoredModel]:
        return list(self._fresh().values())

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def learned_tte(model: Mapping[str, Any] | None, values: Mapping[str, Any]) -> float | None:
    """Time to empty by the learned curve, from the UPS's latest load and charge."""
    if model is None:
        return None
    load = figure("ups.load", values.get("ups.load"))
    if load is None:
        return None
    used = used_from_charge(figure("battery.charge", values.get("battery.charge")))
    return learned_time_to_empty(model, load, used)


def view(stored: StoredModel, values: Mapping[str, Any], device_id: str) -> dict[str, Any]:
    """One UPS's learned battery, at its latest load (``values``: its latest metrics)."""
    m = stored.model
    load = figure("ups.load", values.get("ups.load"))
    learned = m.get("health_pct") is not None
    runtime = curve_at(m["curve"], load) if learned and load is not None else None
    rated = curve_at(m["rated"], load) if load is not None else None
    return {
        "id": device_id,
        "site": stored.site,
        "device": stored.device,
        "health_pct": m.get("health_pct"),
        "confidence": float(m.get("confidence", 0.0)),
        "discharges": int(m.get("discharges", 0)),
        "discharges_to_empty": int(m.get("discharges_to_empty", 0)),
        "load_pct": load,
        "runtime_at_load_s": runtime,
        "rated_runtime_at_load_s": rated,
        "ups_runtime_s": figure("battery.runtime", values.get("battery.runtime")),
        "runtime_at_50_s": curve_at(m["curve"], 50.0),
        "exponent": float(m["curve"]["exponent"]),
        "rated_source": str(m.get("rated_source", "")),
        "learned_at": _iso(m.get("learned_at")),
        "model_version": stored.model_version,
        "evidence": [
            {
                "start": _iso(e["start"]),
                "end": _iso(e["end"]),
                "duration_s": float(e["duration_s"]),
                "end_reason": e["end_reason"],
                "method": e["method"],
                "reached_empty": bool(e["reached_empty"]),
                "mean_load_pct": e.get("mean_load_pct"),
                "mean_temperature_c": e.get("mean_temperature_c"),
                "depth": float(e["depth"]),
                "health_pct": float(e["health_pct"]),
                "ups_runtime_at_start_s": e.get("ups_runtime_at_start_s"),
            }
            for e in sorted(m.get("evidence", []), key=lambda e: e["start"], reverse=True)
        ],
    }
