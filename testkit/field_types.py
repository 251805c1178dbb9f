"""A collector process on InfluxDB or on a SQLite file, with its /metrics: for the tests of
type-stable storage (issue 12)."""

from __future__ import annotations

from pathlib import Path

import httpx

from kordon.storage.fieldtypes import derived_name, type_name
from testkit import InfluxServer, KordonProcess, MosquittoServer, free_port
from testkit.collector import kordon_env


class Collector:
    """A collector process on InfluxDB or on a SQLite file, with its /metrics."""

    def __init__(self, tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer,
                 database: str, backend: str, name: str, *, protocol: str = "3.1.1",
                 group: str = "", extra: str = "") -> None:
        self.port = free_port()
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f'mqtt:\n  protocol: "{protocol}"\n  client_id: {name}\n'
            f"  shared_group: {group or name}\n"
            "collector:\n  flush_interval: 0.05\n  stats_interval: 5s\n  retry_max: 1s\n"
            f'  metrics_addr: "127.0.0.1:{self.port}"\n{extra}'
        )
        env = kordon_env(config, mosquitto, influxdb, database, tmp_path / f"data-{name}")
        if backend == "sqlite":
            env["KORDON_INFLUX_URL"] = f"sqlite://{self.sqlite_path(tmp_path)}"
        self.process = KordonProcess(["run", "--roles", "collector"], env, tmp_path / name)

    @staticmethod
    def sqlite_path(tmp_path: Path) -> Path:
        return tmp_path / "telemetry.db"

    def start(self) -> Collector:
        self.process.start(ready_line="collector ready")
        return self

    def metrics(self) -> dict[str, float]:
        samples: dict[str, float] = {}
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def counter(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def stop(self) -> None:
        self.process.stop()


def stored_name(types: dict[str, str], name: str, value: object) -> str:
    """Where the type rule stores ``value`` of metric ``name`` in a store holding ``types``."""
    kind = type_name(value)
    while types.get(name, kind) != kind:
        name = derived_name(name, kind)
    return name
