"""Fixtures that run real Mosquitto and InfluxDB processes on free loopback ports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import InfluxServer, MosquittoServer
from tests.harness.processes import LIVE


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
