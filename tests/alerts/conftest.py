"""Fixtures of the alert tests: simulated devices that publish their state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from testkit import MosquittoServer
from testkit.alerts import Devices, MakeDevices


@pytest.fixture
def make_devices(request: pytest.FixtureRequest) -> Iterator[MakeDevices]:
    """Make a :class:`~testkit.alerts.Devices` publisher (not started) for the test's
    ``site`` on the session's ``mosquitto`` unless given others; whatever still publishes at
    the end of the test is stopped, and the retained statuses it left on a broker still up
    are cleared, so the next test's engine does not page its devices as gone silent."""
    made: list[Devices] = []

    def make(
        broker: MosquittoServer | None = None, site: str | None = None, period: float = 0.25
    ) -> Devices:
        devices = Devices(
            broker or request.getfixturevalue("mosquitto"),
            site or request.getfixturevalue("site"),
            period,
        )
        made.append(devices)
        return devices

    yield make
    for devices in made:
        if devices.running:
            devices.stop()
        # The test's own broker may be stopped already: nothing of it outlives the test.
        with contextlib.suppress(OSError, TimeoutError, ValueError, RuntimeError):
            devices.forget()
