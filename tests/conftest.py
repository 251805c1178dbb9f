"""Fixtures shared by every area: real Mosquitto and InfluxDB processes on free loopback ports,
Kordon's roles as child processes against them, and a webhook receiver.

Each area's own fixtures are in its ``conftest.py`` (``tests/alerts/``, ``tests/bridges/``);
plain helpers that benchmarks use too are in ``testkit/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import InfluxServer, KordonProcess, MakeProcess, MosquittoServer
from testkit.alerts import alerts_process
from testkit.collector import collector_process
from testkit.processes import LIVE
from testkit.receivers import WebhookReceiver
from testkit.verified import VerifiedScenarios, shared_folder


@pytest.fixture(autouse=True)
def _no_stray_kordon_processes() -> Iterator[None]:
    """Kill what a failed test left running; a passing test stops its own processes."""
    yield
    for process in list(LIVE):
        process.kill()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """One broker for the session; tests isolate themselves by site names."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One InfluxDB for the session; tests isolate themselves by database names."""
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def verified(tmp_path_factory: pytest.TempPathFactory) -> VerifiedScenarios:
    """Verify answers of library scenarios, computed once per run (shared by xdist workers)."""
    return VerifiedScenarios(shared_folder(tmp_path_factory.getbasetemp()))


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker of the test's own, for tests that stop or restart it."""
    server = MosquittoServer(tmp_path / "own-mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_influxdb(tmp_path: Path) -> Iterator[InfluxServer]:
    """An InfluxDB of the test's own, for tests that stop or restart it."""
    server = InfluxServer(tmp_path / "own-influxdb")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def site() -> str:
    return f"site-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A webhook receiver, started, for the test's notifications."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def make_collector(request: pytest.FixtureRequest, tmp_path: Path) -> MakeProcess:
    """Make a collector process (not started) with a fast test configuration.

    It uses the session's ``mosquitto`` and ``influxdb`` and the test's ``database`` unless
    given others (``mosquitto=own_mosquitto``...), and keeps its files under ``tmp_path``
    unless given a ``workdir``; other options are those of
    :func:`testkit.collector.collector_process` (``client_id``, ``protocol``,
    ``extra_config``). The autouse fixture above kills what a failed test left running.
    """

    def make(
        *,
        mosquitto: MosquittoServer | None = None,
        influxdb: InfluxServer | None = None,
        database: str | None = None,
        workdir: Path | None = None,
        **options: Any,
    ) -> KordonProcess:
        return collector_process(
            workdir or tmp_path,
            mosquitto or request.getfixturevalue("mosquitto"),
            influxdb or request.getfixturevalue("influxdb"),
            database or request.getfixturevalue("database"),
            **options,
        )

    return make


@pytest.fixture
def make_alerts(request: pytest.FixtureRequest, tmp_path: Path) -> MakeProcess:
    """Make an alerts process (not started) with ``notify`` (a YAML section, see
    :func:`testkit.alerts.webhook_notify`) and the fast test rules.

    It uses the session's ``mosquitto`` unless given another, and keeps its files under
    ``tmp_path``; other options are those of :func:`testkit.alerts.alerts_process`
    (``influx``, ``database``, ``rules``, ``name``).
    """

    def make(
        notify: str,
        *,
        mosquitto: MosquittoServer | None = None,
        workdir: Path | None = None,
        **options: Any,
    ) -> KordonProcess:
        return alerts_process(
            workdir or tmp_path, mosquitto or request.getfixturevalue("mosquitto"), notify,
            **options,
        )

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests (marked ``slow``) start first: parallel workers then finish together
    instead of three idling while the fourth runs a five-minute test it picked up last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
