"""Fixtures of the bridge tests: real UPS sources (NUT's upsd, snmpsim) and bridge processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.bridges import (
    BridgeProcess,
    MakeBridge,
    MakeNutServer,
    MakeSnmpAgent,
    NutServer,
    SnmpAgent,
)


@pytest.fixture
def make_nut_server(tmp_path: Path) -> Iterator[MakeNutServer]:
    """Make upsd with one dummy-ups driver per UPS of ``sequences`` (not started; call
    ``.start()``), in ``folder`` or ``tmp_path``; stopped at the end of the test."""
    made: list[NutServer] = []

    def make(sequences: dict[str, str], *, folder: Path | None = None,
             **options: Any) -> NutServer:
        server = NutServer.from_sequences(folder or tmp_path, sequences, **options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def make_snmp_agent(tmp_path: Path) -> Iterator[MakeSnmpAgent]:
    """Make an snmpsim agent serving ``recordings`` (not started), in ``workdir`` or
    ``tmp_path/agent``; stopped at the end of the test."""
    made: list[SnmpAgent] = []

    def make(recordings: dict[str, str], *, workdir: Path | None = None,
             **options: Any) -> SnmpAgent:
        agent = SnmpAgent(workdir or tmp_path / "agent", recordings, **options)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()


@pytest.fixture
def make_bridge(request: pytest.FixtureRequest) -> MakeBridge:
    """Make a bridge process (not started) running ``args``, its files in ``workdir``, on the
    session's ``mosquitto`` unless given another broker URL."""

    def make(args: list[str], workdir: Path, *, mqtt_url: str | None = None) -> BridgeProcess:
        return BridgeProcess(args, mqtt_url or request.getfixturevalue("mosquitto").url, workdir)

    return make
