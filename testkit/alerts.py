"""Helpers for the alert tests: an alerts process, and devices that publish their state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from testkit import InfluxServer, KordonProcess, MosquittoServer
from testkit.mqtt import Publisher

FAST_RULES = """rules:
  evaluation_interval: 200ms
  restore_grace: 4s
  MainsPowerLost: {for: 1s}
  SitePowerOutage: {for: 1s, min_devices: 3}
  BatteryDepletionImminent: {for: 1s, min_span: 1s, min_points: 3, window: 30s}
  DeviceOffline: {default_interval: 1s, min_silence: 3s}
"""


def webhook_notify(
    url: str, group_wait: str = "0s", extra: str = "", group_interval: str = "1s"
) -> str:
    """A ``notify`` section paging one webhook per (site, alertname, device)."""
    return f"""notify:
  receivers:
    - name: oncall
      webhook: {{url: "{url}"}}
  route:
    receiver: oncall
    group_by: [site, alertname, device]
    group_wait: {group_wait}
    group_interval: {group_interval}
    repeat_interval: 1h
{extra}"""


def alerts_process(
    tmp_path: Path,
    broker: MosquittoServer,
    notify: str,
    *,
    influx: InfluxServer | None = None,
    database: str = "kordon",
    rules: str = FAST_RULES,
    name: str = "alerts",
) -> KordonProcess:
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"log_level: INFO\n{rules}{notify}")
    env = {
        "KORDON_CONFIG": str(config),
        "KORDON_MQTT_URL": broker.url,
        "KORDON_DATA_DIR": str(tmp_path / "data"),
        "KORDON_MQTT_CLIENT_ID": f"{name}-test",
        "KORDON_INFLUX_URL": influx.url if influx else "http://127.0.0.1:9",
        "KORDON_INFLUX_DB": database,
    }
    return KordonProcess(["run", "--roles", "alerts"], env, tmp_path / name)


class Devices:
    """Devices that publish their current metrics every ``period`` seconds (wall clock)."""

    def __init__(self, broker: MosquittoServer, site: str, period: float = 0.25) -> None:
        self.site = site
        self.period = period
        self.broker = broker
        self.publisher = Publisher(broker.host, broker.port)
        self.metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.paused: set[str] = set()
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, kind: str, device: str, **metrics: Any) -> None:
        with self._lock:
            self.metrics[(kind, device)] = dict(metrics)
        self.status(kind, device, "online")

    def set(self, device: str, **metrics: Any) -> None:
        with self._lock:
            for (_kind, name), values in self.metrics.items():
                if name == device:
                    values.update(metrics)

    def status(self, kind: str, device: str, text: str) -> None:
        self.publisher.publish(
            f"kordon/v1/{self.site}/{kind}/{device}/status", text, retain=True
        )

    def start(self) -> Devices:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                items = [(k, dict(v)) for k, v in self.metrics.items() if k[1] not in self.paused]
                self._seq += 1
                seq = self._seq
            for (kind, device), values in items:
                battery = values.pop("_drain", None)
                if battery is not None:  # a falling charge, per publication
                    self.set(device, **{"battery.charge": max(values["battery.charge"] - battery,
                                                              0.0)})
                payload = orjson.dumps({"ts": time.time(), "seq": seq, "metrics": values})
                self.publisher.publish(
                    f"kordon/v1/{self.site}/{kind}/{device}/telemetry", payload, wait=False
                )
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.publisher.close()

    def forget(self) -> None:
        """Clear the retained statuses these devices left on the broker: a later engine on
        it would take them for devices gone silent and page them (a test's receiver gets
        every site's pages)."""
        publisher = Publisher(self.broker.host, self.broker.port)
        try:
            for kind, device in list(self.metrics):
                publisher.publish(
                    f"kordon/v1/{self.site}/{kind}/{device}/status", b"", retain=True
                )
        finally:
            publisher.close()


MakeDevices = Callable[..., Devices]
"""The type of the ``make_devices`` fixture (tests/alerts/conftest.py)."""


UPS_ON_MAINS = {"ups.status": "OL", "battery.charge": 100.0, "battery.runtime": 1800.0,
                "input.voltage": 230.0}


def ups_on_battery(charge: float, drain: float = 1.0) -> dict[str, Any]:
    return {"ups.status": "OB DISCHRG", "battery.charge": charge, "battery.runtime": 400.0,
            "input.voltage": 0.0, "_drain": drain}
