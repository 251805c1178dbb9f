"""One run of issue 28's end-to-end check: six real UPS dumps of the NUT Devices Dumps Library
at one site behind a real upsd, bridged by ``kordon nut-bridge`` into ``kordon run --roles
collector,alerts`` with a webhook: the APC on battery must page ``MainsPowerLost`` within
``BOUND`` seconds of the bridge's start while the MGE's ``ReplaceBattery`` (``RB``) pages once.
Used by ``tests/bridges/test_power_first.py`` (one run) and ``bench/power_first.py`` (ten).
"""


from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from testkit import InfluxServer, KordonProcess, MosquittoServer, wait_until
from testkit.bridges import BridgeProcess, NutServer
from testkit.mqtt import Publisher
from testkit.nut_library import Dump
from testkit.receivers import WebhookReceiver

BOUND = 45.0  # seconds from the bridge's start to the power page (issue 28)
POWER = ("apc", "MainsPowerLost")
MAINTENANCE = ("mge", "ReplaceBattery")
# NUT name (also the Kordon device name) -> (dump, ups.status override or None).
DUMPS: dict[str, tuple[str, str | None]] = {
    "apc": ("APC/APC__Smart-UPS_2200__apcsmart__2.2.0__01.dev", "OB DISCHRG"),
    "mge": ("MGE_UPS_SYSTEMS/MGE_UPS_SYSTEMS__Pulsar_1500__usbhid-ups__2.4.3__01.dev",
            "OL CHRG RB"),
    "eaton": ("Eaton/Eaton__5P_650__usbhid-ups__2.7.4__01.dev", None),
    "backups": ("APC/APC__Back-UPS_RS_1500__usbhid-ups__2.2.1__01.dev", None),
    "cyber": ("Cyber_Power_Systems/Cyber_Power_Systems__BL1250U__usbhid-ups__2.7.4__01.dev",
              None),
    "riello": ("Riello/Riello__MPT60__riello_ser__2.6.5__01.dev", None),
}


@dataclass(frozen=True, slots=True)
class RunResult:
    power_page: float | None  # seconds from the bridge's start; None: not within the window
    replace_first: float | None
    replace_count: int  # webhook requests carrying the MGE's ReplaceBattery firing
    notifications: int
    told: tuple[str, ...] = ()  # per notification: its firing alerts (name/device), in order
    reconnects: int = 0  # "MQTT connection lost" in the stack's log: lost messages, if any

    @property
    def ok(self) -> bool:
        return (self.power_page is not None and self.power_page <= BOUND
                and self.replace_count == 1)


def library_dumps(library: Path, folder: Path) -> list[Dump]:
    """The six dumps, the overridden ones copied with their new ``ups.status``."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for name, (relative, status) in DUMPS.items():
        path = library / relative
        if status is not None:
            text = path.read_text(encoding="utf-8", errors="replace")
            text, found = re.subn(r"(?m)^ups\.status: .*$", f"ups.status: {status}", text)
            assert found == 1, relative
            path = folder / f"{name}.dev"
            path.write_text(text, encoding="utf-8")
        items.append(Dump(name, path))
    return items


def _carrying(body: dict, device: str, name: str) -> bool:  # type: ignore[type-arg]
    return any(a["status"] == "firing" and a["labels"].get("alertname") == name
               and a["labels"].get("device") == device for a in body["alerts"])


def run_once(workdir: Path, broker: MosquittoServer, influx: InfluxServer,
             hook: WebhookReceiver, library: Path, *, window: float = 90.0,
             severity_only: bool = False) -> RunResult:
    """One run in ``workdir`` (its own site, data folder and webhook path). ``severity_only``:
    both alert classes empty, the dispatcher's behaviour before issue 28."""
    site = f"pf-{uuid.uuid4().hex[:8]}"
    path = f"/{site}"
    nut = NutServer.from_dumps(workdir / "nut", library_dumps(library, workdir / "dumps")).start()
    config = workdir / "kordon.yaml"
    # An explicit client id for a process of two roles: each role appends its name
    # (composition/roles.py), so the collector and the alerts role keep one session each.
    config.write_text(f"""log_level: INFO
mqtt:
  protocol: "3.1.1"
  client_id: "{site}"
collector:
  flush_interval: 0.05
""" + ("notify: {route: {urgent_alerts: [], maintenance_alerts: []}}\n" if severity_only else ""))
    env = {
        "KORDON_CONFIG": str(config),
        "KORDON_MQTT_URL": broker.url,
        "KORDON_INFLUX_URL": influx.url,
        "KORDON_INFLUX_DB": site.replace("-", "_"),
        "KORDON_DATA_DIR": str(workdir / "data"),
        "KORDON_WEBHOOK_URL": hook.url(path),
    }
    stack = KordonProcess(["run", "--roles", "collector,alerts"], env, workdir / "kordon")
    bridge = BridgeProcess(["nut-bridge", "--nut", f"127.0.0.1:{nut.port}", "--site", site],
                           broker.url, workdir / "bridge")
    try:
        stack.start("alerts ready", timeout=60)
        wait_until(lambda: "collector ready" in stack.log_text(), 60, what="collector ready")
        started = time.monotonic()
        bridge.start()

        def arrived(device: str, name: str) -> list[float]:
            return [r.at - started for r in list(hook.requests)
                    if r.path == path and _carrying(r.body, device, name)]

        deadline = started + window
        while time.monotonic() < deadline:
            time.sleep(0.2)
        power = arrived(*POWER)
        replaced = arrived(*MAINTENANCE)
        bodies = hook.bodies(path)
        told = tuple(
            "+".join(sorted(f"{a['labels']['alertname']}/{a['labels'].get('device', '')}"
                            for a in body["alerts"] if a["status"] == "firing"))
            for body in bodies
        )
        return RunResult(power[0] if power else None, replaced[0] if replaced else None,
                         len(replaced), len(bodies), told,
                         stack.log_text().count("MQTT connection lost"))
    finally:
        bridge.stop()
        stack.stop()
        nut.stop()
        _forget_statuses(broker, site)


def _forget_statuses(broker: MosquittoServer, site: str) -> None:
    """Clear the run's retained statuses (the bridge's goodbye ``offline``): an engine that
    subscribes later on the same broker would page the old site as unreachable."""
    publisher = Publisher(broker.host, broker.port)
    try:
        for name in DUMPS:
            publisher.publish(f"kordon/v1/{site}/ups/{name}/status", b"", retain=True)
    finally:
        publisher.close()


