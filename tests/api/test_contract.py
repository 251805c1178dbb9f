"""Contract tests for every endpoint: real collector, broker, InfluxDB and alert store."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from kordon import metrics
from kordon.model.alerts import AlertRecord, AlertState, fingerprint
from kordon.storage.alert_store import AlertStore
from testkit import InfluxServer, MosquittoServer, wait_until
from testkit.api import TOKENS, RunningApi, api_settings, ups_payload, write_fleet
from testkit.collector import collector_process
from testkit.mqtt import Publisher

PROBLEM = "application/problem+json"


class Stack:
    def __init__(self, api: RunningApi, site: str, store: AlertStore, now: float) -> None:
        self.api = api
        self.site = site
        self.store = store
        self.now = now
        self.alerts: dict[str, str] = {}


def _alert(site: str, device: str, name: str, severity: str, state: AlertState, since: float):
    labels = {"alertname": name, "site": site, "device": device, "severity": severity}
    return AlertRecord(
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations={"summary": f"{name} on {site}/{device}"},
        state=state,
        active_at=since,
        starts_at=since if state is not AlertState.PENDING else None,
        ends_at=since + 60 if state is AlertState.RESOLVED else None,
        updated_at=since,
    )


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("api-contract")
    site = f"site-{time.time_ns() % 10**8:08d}"
    database = f"api_{site.replace('-', '_')}"
    collector = collector_process(workdir, mosquitto, influxdb, database, client_id="api-coll")
    collector.start(ready_line="collector ready")
    fleet = write_fleet(workdir / "fleet.yaml", site)
    settings = api_settings(workdir, mosquitto, influxdb, database, fleet=fleet)
    publisher = Publisher(mosquitto.host, mosquitto.port)
    now = time.time()
    try:
        for k in range(20):  # 20 minutes on mains, then on battery now
            publisher.publish(
                f"kordon/v1/{site}/ups/ups-1/telemetry",
                ups_payload(now - (20 - k) * 60, k, "OL", 60.0 + k, 3000.0),
            )
        publisher.publish(
            f"kordon/v1/{site}/ups/ups-1/telemetry",
            ups_payload(now, 20, "OB DISCHRG", 80.0, 1500.0),
        )
        publisher.publish(
            f"kordon/v1/{site}/ups/ups-2/telemetry", ups_payload(now, 0, "OL", 100.0, 4000.0)
        )
        publisher.publish(
            f"kordon/v1/{site}/scanner/scanner-1/telemetry",
            orjson.dumps(
                {
                    "ts": now,
                    "metrics": {"scanner.state": "ready", "power.source": "ups", "power.draw": 9e3},
                }
            ),
        )
        publisher.publish(
            f"kordon/v1/{site}/radio/radio-1/telemetry",
            orjson.dumps(
                {
                    "ts": now,
                    "metrics": {
                        "power.source": "battery",
                        "supply.voltage": 12.4,
                        "battery.charge": 91.0,
                    },
                }
            ),
        )
        publisher.publish(
            f"kordon/v1/{site}/ups/ux-{site}/telemetry",
            orjson.dumps({"ts": now, "metrics": {"ups.status": "OL", "vendor.fan_rpm": 1200}}),
        )
        publisher.publish(f"kordon/v1/{site}-b/ups/ups-1/status", "offline", retain=True)
        wait_until(
            lambda: len(influxdb.query(f"SELECT * FROM ups WHERE site = '{site}'", database)) >= 23,
            20,
            what="readings in InfluxDB",
        )
        store = AlertStore.in_data_dir(settings.data_dir)
        records = [
            _alert(site, "ups-1", "MainsPowerLost", "warning", AlertState.FIRING, now - 30),
            _alert(site, "ups-1", "SitePowerOutage", "critical", AlertState.FIRING, now - 60),
            _alert(site, "ups-2", "BatteryLow", "warning", AlertState.PENDING, now - 10),
            _alert(site, "radio-1", "DeviceOffline", "warning", AlertState.RESOLVED, now - 600),
        ]
        store.save_alerts(records)
        with RunningApi(settings) as api:
            result = Stack(api, site, store, now)
            result.alerts = {r.labels["alertname"]: r.fingerprint for r in records}
            with api.client("viewer") as client:
                wait_until(
                    lambda: client.get("/api/v1/sites").json()[0]["power"] == "ups",
                    15,
                    what="the API to see the site on UPS",
                )
            yield result
        store.close()
    finally:
        publisher.close()
        collector.stop()


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def test_healthz_needs_no_token(stack: Stack) -> None:
    with stack.api.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_checks_broker_and_stores(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "broker": True,
        "influxdb": True,
        "alert_store": True,
    }


def test_sites_show_power_reserve_devices_and_alerts(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        sites = {s["site"]: s for s in client.get("/api/v1/sites").json()}
    site = sites[stack.site]
    assert site["title"] == f"Test crossing {stack.site}"
    assert site["power"] == "ups" and site["power_text"] == "On UPS battery"
    assert site["ups"] == {
        "total": 3,
        "on_battery": 1,
        "min_charge": 80.0,
        "min_time_to_empty": 1500.0,
    }
    assert site["devices"]["online"] == 5 and site["devices"]["offline"] == 0
    assert site["alerts"] == {"firing": 2, "critical": 1}
    dark = sites[f"{stack.site}-b"]
    assert dark["power"] == "dark" and dark["devices"]["offline"] == 1


def test_devices_list_and_filters(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        everything = client.get("/api/v1/devices").json()
        mine = client.get("/api/v1/devices", params={"site": stack.site}).json()
        radios = client.get("/api/v1/devices", params={"site": stack.site, "kind": "radio"})
        offline = client.get("/api/v1/devices", params={"state": "offline"}).json()
    assert {d["id"] for d in mine} == {
        f"{stack.site}:{name}"
        for name in ("ups-1", "ups-2", f"ux-{stack.site}", "scanner-1", "radio-1")
    }
    assert len(everything) >= 6
    assert [d["device"] for d in radios.json()] == ["radio-1"]
    assert radios.headers["content-type"] == "application/json"
    assert f"{stack.site}-b:ups-1" in {d["id"] for d in offline}
    by_id = {d["id"]: d for d in mine}
    ups = by_id[f"{stack.site}:ups-1"]
    assert ups["power_source"] == "battery" and ups["time_to_empty"] == 1500.0
    assert ups["ups_status"] == "OB DISCHRG" and ups["state"] == "online"
    assert by_id[f"{stack.site}:scanner-1"]["fed_by"] == "ups-1"
    assert by_id[f"{stack.site}:scanner-1"]["power_source"] == "ups"
    assert by_id[f"{stack.site}:ux-{stack.site}"]["in_fleet"] is False


def test_device_detail(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        detail = client.get(f"/api/v1/devices/{stack.site}:ups-1").json()
        # a bare name resolves when only one site has it (retained status messages of other
        # tests' fleets share the broker, so the name must be this test's own)
        by_name = client.get(f"/api/v1/devices/ux-{stack.site}")
        ambiguous = client.get("/api/v1/devices/ups-1")
        missing = client.get("/api/v1/devices/no-such-device")
    assert detail["metrics"]["battery.charge"]["value"] == 80.0
    assert detail["metrics"]["battery.charge"]["unit"] == "%"
    assert detail["metrics"]["battery.runtime"]["unit"] == "s"
    assert detail["power_source"] == "battery" and detail["time_to_empty"] == 1500.0
    assert {a["alertname"] for a in detail["alerts"]} == {"MainsPowerLost", "SitePowerOutage"}
    assert by_name.json()["id"] == f"{stack.site}:ux-{stack.site}"
    body = _problem(ambiguous, 409)
    assert f"{stack.site}:ups-1" in body["candidates"] and "name it as one of" in body["detail"]
    assert "GET /api/v1/devices" in _problem(missing, 404)["detail"]


def test_telemetry_history_is_downsampled(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        response = client.get(
            f"/api/v1/devices/{stack.site}:ups-1/telemetry",
            params={
                "metric": ["battery.charge", "ups.status"],
                "start": "now-30m",
                "step": "60s",
            },
        )
        coarse = client.get(
            f"/api/v1/devices/{stack.site}:ups-1/telemetry",
            params={"metric": "battery.charge", "start": "now-30m", "step": "10m", "agg": "max"},
        )
        custom = client.get(
            f"/api/v1/devices/{stack.site}:ux-{stack.site}/telemetry",
            params={"metric": "vendor.fan_rpm"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["step"] == 60 and body["kind"] == "ups"
    charge, status = body["series"]
    assert charge["metric"] == "battery.charge" and charge["unit"] == "%"
    assert charge["aggregation"] == "mean" and status["aggregation"] == "last"
    assert [p[1] for p in charge["points"]] == [60.0 + k for k in range(20)] + [80.0]
    assert status["points"][-1][1] == "OB DISCHRG"
    assert all(isinstance(p[0], int) for p in charge["points"])
    maxima = [p[1] for p in coarse.json()["series"][0]["points"]]
    assert max(maxima) == 80.0 and len(maxima) <= 4
    assert custom.json()["series"][0]["points"][0][1] == 1200.0


@pytest.mark.parametrize(
    ("params", "parameter", "words"),
    [
        ({"metric": "battery charge"}, "metric", "not a metric name"),
        ({"metric": "battery.charge", "start": "yesterday"}, "start", "RFC 3339"),
        ({"metric": "battery.charge", "start": "now", "end": "now-1h"}, "start", "before end"),
        ({"metric": "battery.charge", "start": "now-30d", "step": "1s"}, "step", "use step="),
        ({"metric": "battery.charge", "step": "1.5s"}, "step", "whole number"),
        ({"metric": "battery.charge", "start": "now-400d"}, "start", "limit"),
        ({"metric": "battery.charge", "agg": "sum"}, "agg", "one of"),
        ({"metric": "battery.charge", "start": "2026-01-01T00:00:00"}, "start", "UTC offset"),
    ],
)
def test_telemetry_rejects_bad_parameters(
    stack: Stack, params: dict, parameter: str, words: str
) -> None:
    with stack.api.client("viewer") as client:
        response = client.get(f"/api/v1/devices/{stack.site}:ups-1/telemetry", params=params)
    body = _problem(response, 422)
    assert body["errors"][0]["parameter"] == parameter
    assert words in body["detail"]


def test_telemetry_needs_a_metric(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        response = client.get(f"/api/v1/devices/{stack.site}:ups-1/telemetry")
    assert _problem(response, 422)["errors"][0]["parameter"] == "metric"


def test_alerts_sorted_by_severity_then_newest(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        active = client.get("/api/v1/alerts", params={"site": stack.site}).json()
        firing = client.get("/api/v1/alerts", params={"site": stack.site, "state": "firing"})
        resolved = client.get("/api/v1/alerts", params={"site": stack.site, "state": "resolved"})
        critical = client.get("/api/v1/alerts", params={"severity": "critical"}).json()
    assert [a["alertname"] for a in active] == ["SitePowerOutage", "BatteryLow", "MainsPowerLost"]
    assert {a["alertname"] for a in firing.json()} == {"SitePowerOutage", "MainsPowerLost"}
    assert [a["alertname"] for a in resolved.json()] == ["DeviceOffline"]
    assert all(a["severity"] == "critical" for a in critical)
    alert = active[0]
    assert alert["site"] == stack.site and alert["device"] == "ups-1"
    assert alert["annotations"]["summary"].startswith("SitePowerOutage")


def test_ack_records_who_and_shows_in_lists(stack: Stack) -> None:
    fp = stack.alerts["MainsPowerLost"]
    with stack.api.client("operator") as client:
        response = client.post(f"/api/v1/alerts/{fp}/ack", json={"comment": "on my way"})
        listed = client.get("/api/v1/alerts", params={"site": stack.site}).json()
        pending = client.post(f"/api/v1/alerts/{stack.alerts['BatteryLow']}/ack")
        unknown = client.post("/api/v1/alerts/0123456789abcdef/ack")
    assert response.status_code == 200, response.text
    ack = response.json()
    assert ack["by"] == "test-operator" and ack["comment"] == "on my way"
    shown = next(a for a in listed if a["fingerprint"] == fp)
    assert shown["ack"]["by"] == "test-operator" and shown["ack"]["comment"] == "on my way"
    assert "only a firing alert" in _problem(pending, 409)["detail"]
    _problem(unknown, 404)


def test_silences_create_list_match_and_expire(stack: Stack) -> None:
    with stack.api.client("operator") as client:
        created = client.post(
            "/api/v1/silences",
            json={
                "matchers": [
                    {"name": "alertname", "value": "SitePowerOutage"},
                    {"name": "site", "value": stack.site},
                ],
                "duration": "2h",
                "comment": "planned works",
            },
        )
        assert created.status_code == 201, created.text
        silence = created.json()
        active = client.get("/api/v1/silences").json()
        alerts = client.get("/api/v1/alerts", params={"alertname": "SitePowerOutage"}).json()
        deleted = client.delete(f"/api/v1/silences/{silence['id']}")
        expired = client.get("/api/v1/silences", params={"state": "expired"}).json()
        missing = client.delete("/api/v1/silences/nope")
        no_end = client.post(
            "/api/v1/silences", json={"matchers": [{"name": "site", "value": stack.site}]}
        )
        everything = client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "site", "value": ".*", "is_regex": True}],
                "duration": "1h",
            },
        )
    assert silence["state"] == "active" and silence["created_by"] == "test-operator"
    assert silence["matchers"][0] == {
        "name": "alertname",
        "value": "SitePowerOutage",
        "is_regex": False,
        "is_equal": True,
    }
    assert silence["id"] in {s["id"] for s in active}
    assert any(silence["id"] in a["silenced_by"] for a in alerts)
    assert deleted.status_code == 200 and deleted.json()["state"] == "expired"
    assert silence["id"] in {s["id"] for s in expired}
    _problem(missing, 404)
    assert "duration" in _problem(no_end, 422)["detail"]
    assert "match every alert" in _problem(everything, 422)["detail"]


def test_scenarios_library(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        library = client.get("/api/v1/scenarios").json()
        runs = client.get("/api/v1/scenarios/runs")
        missing = client.get("/api/v1/scenarios/runs/0123456789ab")
    by_name = {s["name"]: s for s in library}
    assert "single-site-blackout" in by_name
    assert "SitePowerOutage" in by_name["single-site-blackout"]["expects"]
    assert runs.status_code == 200 and isinstance(runs.json(), list)
    _problem(missing, 404)


def test_unknown_scenario_and_speed_limits(stack: Stack) -> None:
    with stack.api.client("operator") as client:
        unknown = client.post("/api/v1/scenarios/no-such-scenario/run", json={"speed": 10})
        too_fast = client.post("/api/v1/scenarios/normal-day/run", json={"speed": 1e6})
        zero = client.post("/api/v1/scenarios/normal-day/run", json={"speed": 0})
    assert "in the library; it has" in _problem(unknown, 404)["detail"]
    assert "max_scenario_speed" in _problem(too_fast, 422)["detail"]
    _problem(zero, 422)


class _EngineCounters(Collector):
    """Stands in for another role registering into the kernel registry (a real collector)."""

    def collect(self):
        yield CounterMetricFamily("kordon_alerts_test_evaluations", "evaluations", value=7)


def test_metrics_show_every_role_of_the_process(stack: Stack) -> None:
    metrics.register("alerts-test", _EngineCounters())
    try:
        with stack.api.client("viewer") as client:
            client.get("/api/v1/devices")
            response = client.get("/metrics")
    finally:
        metrics.unregister("alerts-test")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'kordon_api_requests_total{method="GET",route="/api/v1/devices",status="200"}' in text
    assert "kordon_api_request_seconds_bucket" in text
    assert "kordon_alerts_test_evaluations_total 7.0" in text


def test_unknown_paths_and_methods_are_problems(stack: Stack) -> None:
    with stack.api.client("viewer") as client:
        assert "/api/v1" in _problem(client.get("/api/v2/devices"), 404)["detail"]
        _problem(client.delete("/api/v1/devices"), 405)


def test_page_and_static_files_are_served_with_a_strict_policy(stack: Stack) -> None:
    with stack.api.client() as client:
        page = client.get("/")
        script = client.get("/static/app.js")
    assert page.status_code == 200 and "Kordon" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert script.status_code == 200 and "sessionStorage" in script.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_cors_is_off_by_default(stack: Stack) -> None:
    with stack.api.client() as client:
        response = client.options(
            "/api/v1/devices",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        simple = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


def test_tokens_never_reach_the_log(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "kdn_wrong-token-that-must-not-be-logged"
    with stack.api.client("operator") as client:
        client.post(f"/api/v1/alerts/{stack.alerts['SitePowerOutage']}/ack")
        client.get("/api/v1/devices", headers={"Authorization": f"Bearer {wrong}"})
        client.get("/api/v1/devices", headers={"Authorization": wrong})
    assert caplog.records, "the API logged nothing at all; the check would prove nothing"
    text = caplog.text
    for token in (*TOKENS.values(), wrong):
        assert token not in text


def test_openapi_document_needs_a_token(stack: Stack) -> None:
    with stack.api.client() as client:
        anonymous = client.get("/openapi.json")
    with stack.api.client("viewer") as client:
        document = client.get("/openapi.json").json()
    _problem(anonymous, 401)
    paths = document["paths"]
    for path in (
        "/api/v1/sites",
        "/api/v1/devices",
        "/api/v1/devices/{device}",
        "/api/v1/devices/{device}/telemetry",
        "/api/v1/alerts",
        "/api/v1/alerts/{fingerprint}/ack",
        "/api/v1/silences",
        "/api/v1/silences/{silence_id}",
        "/api/v1/scenarios",
        "/api/v1/scenarios/{name}/run",
        "/api/v1/scenarios/runs",
        "/api/v1/scenarios/runs/{run_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_a_streamed_site_follows_its_scenario_clock_then_returns_to_the_wall_clock(
    stack: Stack, mosquitto: MosquittoServer
) -> None:
    """Runs last in this module: it adds a site. A stream plays a scenario two days back at
    60x: its site is judged on the stream's clock (device online, "now" two days back), every
    other site on the wall clock; when the stream stops, its site returns to the wall clock."""
    from kordon.streamclock import announce

    site = f"{stack.site}-sim"
    stream = f"test-{stack.site}"
    sim = time.time() - 2 * 86400
    publisher = Publisher(mosquitto.host, mosquitto.port)
    running = announce(stream, [site], sim, 60.0)
    try:
        publisher.publish(running.topic, running.encode())  # live, not retained
        publisher.publish(
            f"kordon/v1/{site}/ups/ups-sim/telemetry", ups_payload(sim, 0, "OB DISCHRG", 70, 900)
        )
        with stack.api.client("viewer") as client:

            def streamed() -> dict | None:
                sites = {s["site"]: s for s in client.get("/api/v1/sites").json()}
                found = sites.get(site)
                return found if found and found["devices"]["online"] == 1 else None

            found = wait_until(streamed, 15, what="the streamed site on its scenario clock")
            clock = found["clock"]
            assert clock["source"] == "stream" and clock["stream"] == stream
            assert clock["speed"] == 60.0
            now = _epoch(clock["now"])
            assert sim <= now < sim + 3600, clock  # two days back, not the wall clock
            assert found["power"] == "ups" and found["ups"]["on_battery"] == 1
            sites = {s["site"]: s for s in client.get("/api/v1/sites").json()}
            wall = sites[stack.site]["clock"]
            assert wall["source"] == "wall" and wall["stream"] is None and wall["speed"] == 1.0
            assert abs(_epoch(wall["now"]) - time.time()) < 60
            devices = client.get("/api/v1/devices", params={"site": site}).json()
            assert [d["state"] for d in devices] == ["online"]
            assert devices[0]["clock"]["source"] == "stream"
            assert devices[0]["clock"]["stream"] == stream
            listed = client.get("/api/v1/clock").json()
            mine = next(s for s in listed["streams"] if s["stream"] == stream)
            assert mine["state"] == "running" and mine["owns"] == [site]
            assert mine["sites"] == [site] and mine["speed"] == 60.0
            # A history query without an end ends at the site's now, two days back.
            history = client.get(
                f"/api/v1/devices/{site}:ups-sim/telemetry", params={"metric": "battery.charge"}
            ).json()
            assert _epoch(history["end"]) < time.time() - 86400, history["end"]

            publisher.publish(running.topic, running.stopped().encode())

            def back_on_wall() -> dict | None:
                sites = {s["site"]: s for s in client.get("/api/v1/sites").json()}
                return sites[site] if sites[site]["clock"]["source"] == "wall" else None

            back = wait_until(back_on_wall, 15, what="the site back on the wall clock")
            assert abs(_epoch(back["clock"]["now"]) - time.time()) < 60
            wait_until(
                lambda: [d["state"] for d in client.get(
                    "/api/v1/devices", params={"site": site}).json()] == ["stale"],
                15,
                what="the device silent two days on the wall clock",
            )  # fmt: skip
            listed = client.get("/api/v1/clock").json()
            mine = next(s for s in listed["streams"] if s["stream"] == stream)
            assert mine["state"] == "stopped" and mine["owns"] == []
    finally:
        publisher.close()


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
