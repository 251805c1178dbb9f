"""Two collectors in one MQTT 5 shared group, SIGKILLed one after the other and together.

The scenario is ``testkit/chaos/paired.py`` (``bench/paired.py`` measures the pair's rate).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import InfluxServer, MosquittoServer
from testkit.chaos.paired import run_paired

pytestmark = pytest.mark.slow  # long fault injections: started first

RECEIVE_MAXIMUM = 1000  # mqtt.receive_maximum's default, the collectors' in-flight window


def test_paired_collectors_lose_nothing_acknowledged_and_store_nothing_twice(
    tmp_path: Path, own_mosquitto: MosquittoServer, influxdb: InfluxServer
) -> None:
    report = run_paired(tmp_path, own_mosquitto, influxdb)
    print(report.text())
    assert report.acked >= 15_000, report.text()  # the schedule publishes at least this much
    assert report.missing == 0, report.text()
    assert report.duplicates == 0, report.text()
    # Both members took a share after the last restart: the group really split the stream.
    assert all(share > 0 for share in report.shares), report.text()
    # Both members hung with full in-flight windows (receive_maximum, 1,000 each) before the
    # last kill; all of it came back to the same member (DUP), was processed again and
    # merged: the duplicate check above was exercised, not vacuous.
    assert report.redelivered >= 2 * RECEIVE_MAXIMUM, report.text()
