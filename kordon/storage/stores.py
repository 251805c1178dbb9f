"""Settings to store: the one place that turns ``influx`` settings into a telemetry store.

Kept apart from :mod:`kordon.storage.telemetry` (the seam every backend implements) so that
the backends import the seam and this module imports the backends: no circle between them.
"""

from __future__ import annotations

import threading
from typing import Any

from kordon.storage.telemetry import TelemetryStore, sqlite_path


def open_telemetry_store(settings: Any) -> TelemetryStore:
    """The store ``settings`` (an ``InfluxSettings``) names: InfluxDB or a SQLite file.

    An InfluxDB store is an HTTP client with its own connection pool; a SQLite store is one
    connection. Either may be used from several threads, but a role that queries from many
    threads (the API) should hold one per thread: see :class:`TelemetryStores`.
    """
    path = sqlite_path(settings.url)
    if path is not None:
        from kordon.storage.sqlite_telemetry import SqliteTelemetryStore

        return SqliteTelemetryStore(path)
    from kordon.storage.influx import InfluxTarget, InfluxTelemetryStore

    return InfluxTelemetryStore(InfluxTarget.from_settings(settings))


class TelemetryStores:
    """The stores of one role: one per thread for InfluxDB (an HTTP client per thread, so a
    slow query does not hold up another's connection), one shared for SQLite (a single
    connection that serialises access itself). Opened on first use; :meth:`close` closes
    every one."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self._shared = sqlite_path(settings.url) is not None
        self._local = threading.local()
        self._stores: list[TelemetryStore] = []
        self._lock = threading.Lock()

    def get(self) -> TelemetryStore:
        if self._shared:
            with self._lock:
                if not self._stores:
                    self._stores.append(open_telemetry_store(self._settings))
                return self._stores[0]
        store: TelemetryStore | None = getattr(self._local, "store", None)
        if store is None:
            store = open_telemetry_store(self._settings)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            stores, self._stores = self._stores, []
        for store in stores:
            store.close()
