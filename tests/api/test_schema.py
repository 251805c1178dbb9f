"""schemathesis against /openapi.json with a valid token: no 5xx, answers match the schema.

Bounded (a few examples per operation) so the suite stays fast; the hostile-input and
contract tests cover the cases that matter by hand.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from kordon.model.alerts import AlertRecord, AlertState, fingerprint
from kordon.storage.alert_store import AlertStore
from kordon.storage.influx import InfluxClient
from testkit import InfluxServer, MosquittoServer
from testkit.api import TOKENS, RunningApi, api_settings, write_fleet, write_history

SITE = "schema-site"
AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}
# What the issue asks: no 5xx; status, media type, headers and bodies as documented. Tokens
# are the authorisation matrix's job. Not "schema-valid data must be accepted": a range whose
# step gives too many points, or a silence that would match every alert, is schema-valid and
# still refused with a 422 that says why.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def schema_api(
    tmp_path_factory: pytest.TempPathFactory, mosquitto: MosquittoServer, influxdb: InfluxServer
) -> Iterator[RunningApi]:
    workdir = tmp_path_factory.mktemp("api-schema")
    database = f"schema_{time.time_ns() % 10**9}"
    # max_scenario_runs 0: a generated name that happens to be in the library is refused
    # (409) instead of starting a simulator.
    settings = api_settings(
        workdir,
        mosquitto,
        influxdb,
        database,
        fleet=write_fleet(workdir / "f.yaml", SITE),
        max_scenario_runs=0,
    )
    with InfluxClient(settings.influx.target()) as influx:
        influx.create_database()
        write_history(influx, SITE, "ups-1", hours=1, step=60)
    store = AlertStore.in_data_dir(settings.data_dir)
    labels = {"alertname": "MainsPowerLost", "site": SITE, "device": "ups-1", "severity": "warning"}
    now = time.time()
    store.save_alerts(
        [
            AlertRecord(
                fingerprint(labels),
                labels,
                {"summary": "on battery"},
                AlertState.FIRING,
                now,
                now,
                updated_at=now,
            )
        ]
    )
    store.close()
    with RunningApi(settings) as api:
        yield api


def test_openapi_conformance(schema_api: RunningApi) -> None:
    document = httpx.get(f"{schema_api.url}/openapi.json", headers=AUTH).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    operations = 0
    client = httpx.Client(timeout=30)
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # Sent with httpx: schemathesis' requests transport breaks when urllib3-future
            # (pulled in by grafana-client through niquests) replaces urllib3 in the venv.
            kwargs = case.as_transport_kwargs(base_url=schema_api.url, headers=AUTH)
            response = client.request(
                kwargs["method"],
                kwargs["url"],
                params=kwargs.get("params"),
                headers=kwargs.get("headers"),
                json=kwargs.get("json"),
                content=kwargs.get("data"),
            )
            case.validate_response(response, headers=AUTH, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    client.close()
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
