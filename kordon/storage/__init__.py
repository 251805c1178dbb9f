"""Storage adapters: InfluxDB through its 1.x-compatible HTTP API, line protocol."""
