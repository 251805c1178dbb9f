"""The dead man's switch and readiness of a real ``kordon run --roles alerts`` process.

The Watchdog goes to a real HTTP receiver: while the engine runs it arrives every interval,
and once the engine stops it stops arriving, so an external monitor sees it within two
intervals. ``/readyz`` and ``kordon_alerts_ready`` on the role's own endpoint fail when the
stream stalls (devices silent, connection up) and when the broker stops, and recover; the
Watchdog pauses while the engine is not ready.
"""

from __future__ import annotations

import itertools
import signal
import time
from typing import Any

import httpx
import pytest

from testkit import MakeProcess, MosquittoServer, free_port, wait_until
from testkit.alerts import FAST_RULES, UPS_ON_MAINS, MakeDevices
from testkit.receivers import WebhookReceiver

INTERVAL = 1.0


def watchdog_notify(url: str, interval: float = INTERVAL) -> str:
    return f"""notify:
  receivers:
    - name: deadman
      webhook: {{url: "{url}"}}
  watchdog: {{receiver: deadman, interval: {interval}s}}
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_watchdog_stops_arriving_within_two_intervals_of_the_engine_stopping(
    hook: WebhookReceiver, make_alerts: MakeProcess, make_devices: MakeDevices, sig: int
) -> None:
    engine = make_alerts(watchdog_notify(hook.url("/deadman")))
    engine.start("alerts ready")
    devices = make_devices()
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.start()
    wait_until(lambda: len(hook.arrivals("/deadman")) >= 4, timeout=30,
               what="four Watchdog notifications")
    arrivals = hook.arrivals("/deadman")
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) < 2 * INTERVAL, gaps  # the monitor's rule: one per interval
    body = hook.bodies("/deadman")[-1]
    alert = body["alerts"][0]
    assert (body["status"], alert["status"]) == ("firing", "firing")
    assert alert["labels"] == {"alertname": "Watchdog", "severity": "none"}
    assert alert["annotations"]["summary"]

    stopped = time.monotonic()
    engine.stop(sig)
    # Absence can only be seen by waiting: two intervals, as the external monitor would.
    time.sleep(2 * INTERVAL)
    late = [at for at in hook.arrivals("/deadman") if at > stopped + 0.5]
    assert not late, f"Watchdog still arrived {[round(t - stopped, 2) for t in late]} s after stop"
    devices.stop()


def _ready(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{url}/readyz", timeout=2.0)
    return response.status_code, response.json()


def _gauge(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=2.0).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def test_readyz_fails_while_the_stream_stalls_or_the_broker_is_down_and_recovers(
    own_mosquitto: MosquittoServer,
    hook: WebhookReceiver,
    make_alerts: MakeProcess,
    make_devices: MakeDevices,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rules = FAST_RULES + f"  metrics_addr: 127.0.0.1:{port}\n  stream_stall: 2s\n"
    engine = make_alerts(watchdog_notify(hook.url("/deadman"), 0.5), mosquitto=own_mosquitto,
                         rules=rules)
    engine.start("alerts ready")
    devices = make_devices(own_mosquitto)
    devices.add("ups", "ups-1", **UPS_ON_MAINS)
    devices.start()
    assert httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
    wait_until(lambda: _ready(url)[0] == 200, timeout=30, what="ready")
    assert _gauge(url, "kordon_alerts_ready") == 1.0
    wait_until(lambda: hook.arrivals("/deadman"), timeout=30, what="the first Watchdog")

    # The stream stalls (connection up, nothing arrives): not ready, no Watchdog.
    started = time.monotonic()
    devices.paused.add("ups-1")
    _code, body = wait_until(lambda: (r := _ready(url))[0] == 503 and r, timeout=30,
                            what="not ready on a stalled stream")
    stalled_after = time.monotonic() - started
    assert body["status"] == "not ready"
    assert body["checks"]["stream"]["ok"] is False and body["checks"]["mqtt"]["ok"] is True
    assert body["checks"]["evaluation"]["ok"] is True
    assert _gauge(url, "kordon_alerts_ready") == 0.0
    unready = time.monotonic()
    devices.paused.discard("ups-1")
    wait_until(lambda: _ready(url)[0] == 200, timeout=30, what="ready once data flows")
    recovered = time.monotonic()
    # At most one Watchdog may have been on its way when readiness was last checked.
    paused = [at for at in hook.arrivals("/deadman") if unready + 0.3 < at < recovered]
    assert not paused, "the Watchdog kept coming while the engine was not ready"
    wait_until(lambda: any(at > recovered for at in hook.arrivals("/deadman")), timeout=30,
               what="the Watchdog again once ready")

    # The broker stops: not ready at once; back when it is.
    own_mosquitto.stop()
    _code, body = wait_until(lambda: (r := _ready(url))[0] == 503 and r, timeout=30,
                            what="not ready with the broker down")
    assert body["checks"]["mqtt"]["ok"] is False
    assert _gauge(url, "kordon_alerts_mqtt_connected") == 0.0
    own_mosquitto.start()
    wait_until(lambda: _ready(url)[0] == 200, timeout=60, what="ready after the broker returns")
    assert _gauge(url, "kordon_alerts_ready") == 1.0
    devices.stop()
    engine.stop()
    print(f"\nnot ready {stalled_after:.1f} s after the stream stalled (stream_stall 2 s)")
