"""Authorisation matrix (anonymous, viewer, operator, admin × every endpoint) and hostile input:
InfluxQL and SQL metacharacters in every parameter are rejected or stored as plain text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from api.telemetry import HistoryQuery
from kordon.model.alerts import AlertRecord, AlertState, fingerprint
from kordon.model.kinds import DeviceKind
from kordon.storage.alert_store import AlertStore
from kordon.storage.influx import InfluxClient, InfluxTelemetryStore
from testkit import InfluxServer, MosquittoServer, wait_until
from testkit.api import TOKENS, RunningApi, api_settings, write_fleet, write_history

SITE = "sec-site"
LABELS = {"alertname": "MainsPowerLost", "site": SITE, "device": "ups-1", "severity": "warning"}
FP = fingerprint(LABELS)


class Env:
    def __init__(self, api: RunningApi, influx: InfluxClient, store: AlertStore) -> None:
        self.api = api
        self.influx = influx
        self.store = store


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("api-security")
    database = f"sec_{time.time_ns() % 10**9}"
    settings = api_settings(
        workdir, mosquitto, influxdb, database, fleet=write_fleet(workdir / "f.yaml", SITE)
    )
    influx = InfluxClient(settings.influx.target())
    influx.create_database()
    write_history(influx, SITE, "ups-1", hours=1, step=60)
    store = AlertStore.in_data_dir(settings.data_dir)
    now = time.time()
    store.save_alerts(
        [
            AlertRecord(
                FP, LABELS, {"summary": "on battery"}, AlertState.FIRING, now, now, updated_at=now
            )
        ]
    )
    with RunningApi(settings) as api:
        yield Env(api, influx, store)
    store.close()
    influx.close()


# (method, path, json body, weakest role allowed; None = open to anyone)
ENDPOINTS: list[tuple[str, str, dict | None, str | None]] = [
    ("GET", "/healthz", None, None),
    ("GET", "/readyz", None, "viewer"),
    ("GET", "/metrics", None, "viewer"),
    ("GET", "/openapi.json", None, "viewer"),
    ("GET", "/api/v1/whoami", None, "viewer"),
    ("GET", "/api/v1/sites", None, "viewer"),
    ("GET", "/api/v1/devices", None, "viewer"),
    ("GET", f"/api/v1/devices/{SITE}:ups-1", None, "viewer"),
    ("GET", f"/api/v1/devices/{SITE}:ups-1/telemetry?metric=battery.charge", None, "viewer"),
    ("GET", "/api/v1/alerts", None, "viewer"),
    ("POST", f"/api/v1/alerts/{FP}/ack", {"comment": "matrix"}, "operator"),
    ("GET", "/api/v1/silences", None, "viewer"),
    (
        "POST",
        "/api/v1/silences",
        {"matchers": [{"name": "site", "value": "matrix"}], "duration": "1m"},
        "operator",
    ),
    ("DELETE", "/api/v1/silences/no-such-silence", None, "operator"),
    ("GET", "/api/v1/scenarios", None, "viewer"),
    ("POST", "/api/v1/scenarios/no-such-scenario/run", {"speed": 10}, "operator"),
    ("GET", "/api/v1/scenarios/runs", None, "viewer"),
    ("GET", "/api/v1/scenarios/runs/0123456789ab", None, "viewer"),
    ("DELETE", "/api/v1/scenarios/runs/0123456789ab", None, "operator"),
]
RANK = {None: 0, "viewer": 1, "operator": 2, "admin": 3}


@pytest.mark.parametrize("caller", [None, "viewer", "operator", "admin"])
def test_authorisation_matrix(env: Env, caller: str | None) -> None:
    failures = []
    with env.api.client(caller) as client:
        for method, path, body, needed in ENDPOINTS:
            response = client.request(method, path, json=body)
            allowed = RANK[caller] >= RANK[needed]
            if allowed:
                ok = response.status_code not in (401, 403) and response.status_code < 500
            elif caller is None:
                ok = response.status_code == 401 and "Bearer" in response.headers.get(
                    "www-authenticate", ""
                )
            else:
                ok = response.status_code == 403 and needed in response.json()["detail"]
            if not ok:
                failures.append(f"{caller} {method} {path}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "header",
    ["Bearer kdn_not-a-configured-token", "Basic dXNlcjpwYXNz", "Bearer", TOKENS["admin"], ""],
)
def test_wrong_or_malformed_tokens_get_401(env: Env, header: str) -> None:
    with env.api.client() as client:
        response = client.get("/api/v1/devices", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert TOKENS["admin"] not in response.text


HOSTILE = [
    "'; DROP MEASUREMENT ups; --",
    '" OR 1=1 --',
    'battery.charge") FROM ups; DROP DATABASE kordon; --',
    "x' OR '1'='1",
    "1; DELETE FROM alerts; --",
    "/.*/",
    "\\' OR 1=1",
    "a\nDROP DATABASE kordon",
    "*",
    "$(reboot)",
]


def _hostile_requests(value: str) -> list[tuple[str, str, dict | None, dict | None]]:
    q = quote(value, safe="")
    device = f"/api/v1/devices/{SITE}:ups-1"
    return [
        ("GET", "/api/v1/devices", {"site": value}, None),
        ("GET", "/api/v1/devices", {"kind": value}, None),
        ("GET", "/api/v1/devices", {"state": value}, None),
        ("GET", f"/api/v1/devices/{q}", None, None),
        ("GET", f"/api/v1/devices/{q}/telemetry", {"metric": "battery.charge"}, None),
        ("GET", f"{device}/telemetry", {"metric": value}, None),
        ("GET", f"{device}/telemetry", {"metric": "battery.charge", "start": value}, None),
        ("GET", f"{device}/telemetry", {"metric": "battery.charge", "end": value}, None),
        ("GET", f"{device}/telemetry", {"metric": "battery.charge", "step": value}, None),
        ("GET", f"{device}/telemetry", {"metric": "battery.charge", "agg": value}, None),
        ("GET", "/api/v1/alerts", {"state": value}, None),
        ("GET", "/api/v1/alerts", {"site": value}, None),
        ("GET", "/api/v1/alerts", {"severity": value}, None),
        ("GET", "/api/v1/alerts", {"alertname": value}, None),
        ("GET", "/api/v1/alerts", {"limit": value}, None),
        ("POST", f"/api/v1/alerts/{q}/ack", None, {"comment": "x"}),
        ("GET", "/api/v1/silences", {"state": value}, None),
        ("DELETE", f"/api/v1/silences/{q}", None, None),
        (
            "POST",
            "/api/v1/silences",
            None,
            {"matchers": [{"name": value, "value": "x"}], "duration": "1m"},
        ),
        (
            "POST",
            "/api/v1/silences",
            None,
            {"matchers": [{"name": "site", "value": "x"}], "duration": value},
        ),
        (
            "POST",
            "/api/v1/silences",
            None,
            {"matchers": [{"name": "site", "value": "x"}], "ends_at": value},
        ),
        ("POST", f"/api/v1/scenarios/{q}/run", None, {"speed": 1}),
        ("GET", f"/api/v1/scenarios/runs/{q}", None, None),
        ("DELETE", f"/api/v1/scenarios/runs/{q}", None, None),
    ]


def test_hostile_input_is_rejected_never_executed(env: Env) -> None:
    points_before = env.influx.series('SELECT count("battery.charge") FROM "ups"')
    unexpected = []
    with env.api.client("admin") as client:
        for value in HOSTILE:
            for method, path, params, body in _hostile_requests(value):
                try:
                    response = client.request(method, path, params=params, json=body)
                except httpx.InvalidURL:
                    continue  # the client itself refuses it: nothing reached the server
                if response.status_code not in (404, 405, 422):
                    unexpected.append(f"{method} {path} {params} {body}: {response.status_code}")
                assert response.status_code < 500, response.text
    assert not unexpected, "\n".join(unexpected)
    # the stores are intact: same points, database and measurements still there, alert kept
    assert env.influx.series('SELECT count("battery.charge") FROM "ups"') == points_before
    assert env.store.alert(FP) is not None


def test_free_text_is_stored_verbatim(env: Env) -> None:
    """Label values and comments are data: metacharacters in them are kept as typed."""
    with env.api.client("operator") as client:
        for value in HOSTILE[:5]:
            created = client.post(
                "/api/v1/silences",
                json={
                    "matchers": [{"name": "site", "value": value}],
                    "duration": "1m",
                    "comment": value,
                },
            )
            assert created.status_code == 201, created.text
            body = created.json()
            assert body["matchers"][0]["value"] == value and body["comment"] == value
        ack = client.post(f"/api/v1/alerts/{FP}/ack", json={"comment": HOSTILE[4]})
        assert ack.status_code == 200 and ack.json()["comment"] == HOSTILE[4]
    assert env.store.alert(FP) is not None


def test_history_query_quotes_what_it_is_given(env: Env) -> None:
    """Even a site or device name that validation would refuse stays a string literal."""
    wait_until(lambda: env.influx.series('SELECT count("battery.charge") FROM "ups"'), 10)
    for value in HOSTILE:
        query = HistoryQuery(
            DeviceKind.UPS,
            value,
            value,
            ("battery.charge",),
            time.time() - 3600,
            time.time(),
            60,
            "mean",
        )
        store = InfluxTelemetryStore(env.influx.target)
        try:
            assert store.history(query.request()) == {"battery.charge": []}
        finally:
            store.close()
    assert env.influx.series('SELECT count("battery.charge") FROM "ups"')[0]["count"] == 60
