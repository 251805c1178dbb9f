"""Two collectors in one MQTT 5 shared group, SIGKILLed one after the other and together.

The scenario is ``tests/chaos/paired.py`` (``bench/paired.py`` measures the pair's rate).
"""

from __future__ import annotations

from pathlib import Path

from tests.chaos.paired import run_paired
from tests.harness import InfluxServer, MosquittoServer


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
    # The kills left unacknowledged messages that came back: the merge was exercised.
    assert report.redelivered > 0, report.text()
