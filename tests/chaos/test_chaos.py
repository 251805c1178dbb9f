"""The chaos suite, CI size: every fault of issue 7 in one run of about a minute.

``bench/chaos.py`` runs the same scenario with a minute of InfluxDB outage; the measured
safe window of the broker's queue is in ``tests/chaos/test_queue_window.py`` and
``bench/chaos.py --window``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import InfluxServer, MosquittoServer
from testkit.chaos.scenario import Durations, run_chaos

pytestmark = pytest.mark.slow  # long fault injections: started first


def test_chaos_loses_nothing_acknowledged_and_pages_once(
    tmp_path: Path, own_mosquitto: MosquittoServer, own_influxdb: InfluxServer
) -> None:
    report = run_chaos(tmp_path, own_mosquitto, own_influxdb, Durations())
    print(report.text())
    assert report.acked >= 200 * 15, report.text()  # 200 devices at 1 Hz for 20 s and more
    assert report.missing == 0, report.text()
    assert report.duplicates == 0, report.text()
    assert len(report.expected_pages) == 4, report.text()  # 2 alerts, firing and resolved
    assert report.pages_lost == [], report.text()  # every expected alert notified
    # A repeat with the same Idempotency-Key is one the receiver drops; none with a new key.
    assert report.pages_duplicated == 0 and report.repeated == [], report.text()
    assert report.outbox_pending == 0, report.text()
    assert report.spool_backlog == 0, report.text()
    assert report.leftover == [], report.text()
