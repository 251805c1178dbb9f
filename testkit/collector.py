"""Starting a collector process against the test servers."""

from __future__ import annotations

from pathlib import Path

from testkit import InfluxServer, KordonProcess, MosquittoServer


def collector_process(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    database: str,
    *,
    client_id: str = "collector-test",
    protocol: str = "3.1.1",
    shared_group: str = "kordon",
    extra_config: str = "",
) -> KordonProcess:
    config = tmp_path / f"{client_id}.yaml"
    config.write_text(
        f"""mqtt:
  protocol: "{protocol}"
  client_id: {client_id}
  shared_group: "{shared_group}"
collector:
  flush_interval: 0.05
  stats_interval: 5s
  retry_max: 2s
{extra_config}"""
    )
    env = kordon_env(config, mosquitto, influxdb, database, tmp_path / "data")
    return KordonProcess(["run", "--roles", "collector"], env, tmp_path / client_id)


def kordon_env(
    config: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, database: str, data: Path
) -> dict[str, str]:
    """The environment of a Kordon process using the test servers."""
    return {
        "KORDON_CONFIG": str(config),
        "KORDON_MQTT_URL": mosquitto.url,
        "KORDON_INFLUX_URL": influxdb.url,
        "KORDON_INFLUX_DB": database,
        "KORDON_DATA_DIR": str(data),
    }
