"""The learned battery through the real API: /api/v1/batteries and the device's time to empty.

The model is what the learner makes of a simulated worn battery (testkit/battery_sim.py),
saved where the alerts role saves it (battery.sqlite); the UPS's readings are in InfluxDB."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from alerts.battery import MODEL_VERSION, learn
from kordon.model.battery import learned_time_to_empty
from kordon.storage.battery_store import BatteryStore
from kordon.storage.influx import InfluxClient
from testkit import InfluxServer, MosquittoServer, wait_until
from testkit.api import RunningApi, api_settings, write_fleet, write_history
from testkit.battery_sim import nameplate_seed, to_lb

SITE = "battery-site"


@pytest.fixture(scope="module")
def battery_api(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> Iterator[tuple[RunningApi, dict]]:
    workdir = tmp_path_factory.mktemp("api-battery")
    settings = api_settings(workdir, mosquitto, influxdb, f"battery_{time.time_ns() % 10**9}",
                            fleet=write_fleet(workdir / "f.yaml", SITE), live=False)
    sim = to_lb(0.5, 0.4)
    model = learn(sim.readings, nameplate_seed(sim.params)).to_dict()
    store = BatteryStore.in_data_dir(settings.data_dir)
    store.save([(SITE, "ups-1", MODEL_VERSION, model, model["learned_at"])], time.time())
    store.close()
    with InfluxClient(settings.influx.target()) as influx:
        influx.create_database()
        write_history(influx, SITE, "ups-1", hours=0.5, step=60)
        # On battery now: 80 % by the UPS's own count, 25 minutes by its own estimate.
        influx.write(
            f'ups,device=ups-1,site={SITE} ups.status="OB DISCHRG",battery.charge=80.0,'
            f"battery.runtime=1500.0,ups.load=40.0,input.voltage=0.0 {time.time_ns()}".encode()
        )
    with RunningApi(settings) as api:
        yield api, model


def test_batteries_list_health_runtime_and_evidence(battery_api: tuple[RunningApi, dict]) -> None:
    api, model = battery_api
    with api.client("viewer") as client:
        (found,) = client.get("/api/v1/batteries").json()
        one = client.get(f"/api/v1/batteries/{SITE}:ups-1").json()
        missing = client.get(f"/api/v1/batteries/{SITE}:nope")
    assert found == one
    assert found["health_pct"] == pytest.approx(model["health_pct"])
    assert abs(found["health_pct"] - 50.0) <= 10
    assert found["model_version"] == MODEL_VERSION
    (evidence,) = found["evidence"]
    assert evidence["method"] == "empty" and evidence["reached_empty"]
    assert evidence["ups_runtime_at_start_s"] > evidence["duration_s"]  # the UPS's promise
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_time_to_empty_uses_the_learned_curve_when_more_pessimistic(
    battery_api: tuple[RunningApi, dict],
) -> None:
    api, model = battery_api
    expected = learned_time_to_empty(model, 40.0, 0.2)
    assert expected is not None and expected < 1500.0

    def device() -> dict | None:
        with api.client("viewer") as client:
            found = client.get(f"/api/v1/devices/{SITE}:ups-1").json()
        return found if found.get("power_source") == "battery" else None

    found = wait_until(device, 30, what="the UPS on battery in the API's state")
    assert found["time_to_empty_source"] == "learned"
    assert found["time_to_empty"] == pytest.approx(expected)
    with api.client("viewer") as client:
        (battery,) = client.get("/api/v1/batteries").json()
    assert battery["load_pct"] == 40.0 and battery["ups_runtime_s"] == 1500.0
    assert battery["runtime_at_load_s"] < battery["rated_runtime_at_load_s"]
