"""Issue 28 end to end: six NUT library dumps at one site through a real upsd, the real
bridge and ``kordon run --roles collector,alerts`` with default timing; the APC's power page
within 45 s of the bridge's start, the MGE's ReplaceBattery once (one run of
``python -m bench.power_first``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import InfluxServer, MosquittoServer
from testkit.nut_library import MISSING, library_root
from testkit.power_first import BOUND, run_once
from testkit.receivers import WebhookReceiver

LIBRARY = library_root()
pytestmark = [
    pytest.mark.skipif(not Path("/lib/nut/upsd").exists(),
                       reason="needs Debian's nut-server (scripts/test.sh)"),
    pytest.mark.skipif(LIBRARY is None, reason=MISSING),
]


@pytest.mark.timeout(240)
def test_power_page_is_not_held_behind_replace_battery(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, hook: WebhookReceiver,
) -> None:
    assert LIBRARY is not None
    result = run_once(tmp_path / "run", mosquitto, influxdb, hook, LIBRARY, window=60.0)
    assert result.power_page is not None and result.power_page <= BOUND, result
    assert result.replace_count == 1, result
    # One mqtt.client_id for the process: the two roles must not take each other's session.
    assert result.reconnects == 0, result
