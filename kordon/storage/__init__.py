"""Storage: the telemetry store seam (:mod:`kordon.storage.telemetry`) and its backends
(InfluxDB through its 1.x-compatible HTTP API, an embedded SQLite file), line protocol, and
the alert store."""
