"""The chaos scenario, shared by the CI test (short) and ``bench/chaos.py`` (long).

200 UPS devices publish a numbered stream at 1 Hz each while a 3-UPS site (one
SitePowerOutage page, its UPS pages inhibited) and a UPS of another site (MainsPowerLost) go
on battery and come back. On a schedule the scenario SIGKILLs the collector, stops
InfluxDB, takes the webhook receiver down, SIGKILLs the alert engine and restarts
Mosquitto. Afterwards it checks:

- every (device, seq) the broker acknowledged to the publisher is in InfluxDB exactly once;
- every expected alert was notified at least once, and every repeat of a notification
  carries the same ``Idempotency-Key`` (a receiver can drop it);
- the collector's spool and the engine's outbox drained;
- no process of the run is left behind (none mentions its folder, broker and database aside).

Everything is real: Mosquitto, InfluxDB, ``kordon run`` child processes, an HTTP receiver.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit import InfluxServer, KordonProcess, MosquittoServer, free_port, wait_until
from testkit.alerts import (
    UPS_ON_MAINS,
    Devices,
    alerts_process,
    ups_on_battery,
    webhook_notify,
)
from testkit.chaos.report import Report, Stored
from testkit.collector import collector_process
from testkit.mqtt import StreamPublisher
from testkit.receivers import WebhookReceiver

RADIO_MAINS = {"power.source": "mains", "battery.charge": 100.0, "supply.voltage": 54.0}
RULES = """rules:
  evaluation_interval: 200ms
  restore_grace: 4s
  MainsPowerLost: {for: 1s}
  SitePowerOutage: {for: 1s, min_devices: 3}
  DeviceOffline: {default_interval: 30s, min_silence: 120s}
"""
INCIDENT_UPS = ("ups-1", "ups-2", "ups-3")
LONE_UPS = "ups-9"


class Incident:
    """The incident of both chaos runs: a 3-UPS site (one SitePowerOutage page, its UPS
    pages inhibited) and a lone UPS of another site whose radio keeps grid power
    (MainsPowerLost), publishing every 0.5 s; they go on battery and come back together."""

    def __init__(self, broker: MosquittoServer, site: str, lone_site: str) -> None:
        self.site = Devices(broker, site, period=0.5)
        for name in INCIDENT_UPS:
            self.site.add("ups", name, **UPS_ON_MAINS)
        self.lone = Devices(broker, lone_site, period=0.5)
        self.lone.add("ups", LONE_UPS, **UPS_ON_MAINS)
        self.lone.add("radio", "radio-9", **RADIO_MAINS)  # the site keeps grid power

    def start(self) -> Incident:
        self.site.start()
        self.lone.start()
        return self

    def on_battery(self) -> None:
        for name in INCIDENT_UPS:
            self.site.set(name, **ups_on_battery(90.0, drain=0.01))
        self.lone.set(LONE_UPS, **ups_on_battery(90.0, drain=0.01))

    def mains_back(self) -> None:
        for name in INCIDENT_UPS:
            self.site.set(name, **UPS_ON_MAINS, _drain=None)
        self.lone.set(LONE_UPS, **UPS_ON_MAINS, _drain=None)

    def stop(self) -> None:
        for devices in (self.site, self.lone):
            if devices.running:
                devices.stop()


@dataclass
class Durations:
    """Seconds. CI keeps them short; bench/chaos.py stretches them."""

    warmup: float = 3.0
    collector_down: float = 1.0
    influx_down: float = 15.0
    receiver_down: float = 15.0
    engine_down: float = 1.0
    tail: float = 3.0


def _processes_of(folder: Path) -> list[str]:
    """Live processes whose command line or environment mentions ``folder`` (from /proc)."""
    needle, found = str(folder).encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if state != "Z" and (needle in cmdline or needle in environ):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")[:80]
            found.append(f"{entry.name}: {command}")
    return found


def run_chaos(
    tmp_path: Path,
    broker: MosquittoServer,
    influx: InfluxServer,
    durations: Durations,
    devices: int = 200,
    log: Callable[[str], None] = print,
) -> Report:
    report = Report(repeats_same_key=0, log=log)
    event = report.event
    tmp_path.mkdir(parents=True, exist_ok=True)
    site, incident_site = f"chaos-{uuid.uuid4().hex[:6]}", f"inc-{uuid.uuid4().hex[:6]}"
    database = f"chaos_{uuid.uuid4().hex[:8]}"

    metrics_port = free_port()
    hook = WebhookReceiver().start()
    notify = webhook_notify(
        hook.url("/oncall"), "500ms", "  outbox: {retry_min: 200ms, retry_max: 1s}\n"
    )
    collector = collector_process(
        tmp_path,
        broker,
        influx,
        database,
        client_id="chaos-collector",
        extra_config=f'  metrics_addr: "127.0.0.1:{metrics_port}"\n',
    )
    engine = alerts_process(
        tmp_path, broker, notify, influx=influx, database=database, rules=RULES, name="chaos-alerts"
    )
    processes: list[KordonProcess] = [collector, engine]
    stream: StreamPublisher | None = None
    incident: Incident | None = None
    try:
        collector.start(ready_line="collector ready")
        engine.start(ready_line="alerts ready")
        stream = StreamPublisher(
            broker.host,
            broker.port,
            site,
            devices=devices,
            rate=devices,
            start_ts=int(time.time()),
        ).start()
        incident = Incident(broker, incident_site, f"one-{incident_site}").start()
        expected = [("SitePowerOutage", incident_site), ("MainsPowerLost", LONE_UPS)]
        event(f"{devices} devices at 1 Hz and a 3-UPS site running")
        pause(durations.warmup)

        collector.stop(signal.SIGKILL)
        event("collector SIGKILLed")
        pause(durations.collector_down)
        collector.start(ready_line="collector ready")
        event("collector restarted")

        influx.stop()
        influx_down = time.monotonic()
        event("InfluxDB stopped")
        hook.stop()
        receiver_down = time.monotonic()
        event("webhook receiver down")
        incident.on_battery()
        event("incident: a 3-UPS site and the UPS of another site on battery")
        pause(2.0)
        engine.stop(signal.SIGKILL)
        event("alert engine SIGKILLed")
        pause(durations.engine_down)
        engine.start(ready_line="alerts ready")
        event("alert engine restarted")
        pause(durations.influx_down - (time.monotonic() - influx_down))
        influx.start()
        event("InfluxDB back")
        broker.restart()
        event("Mosquitto restarted")
        pause(durations.receiver_down - (time.monotonic() - receiver_down))
        hook.start()
        event("webhook receiver back")
        wait_until(
            lambda: all((name, key, "firing") in hook.alerts() for name, key in expected),
            60,
            what="the incident's pages",
        )
        event("pages delivered")
        incident.mains_back()
        event("incident over: mains back")
        pause(durations.tail)
        stream.stop(settle=60)
        stream_acked = stream.acked
        stream = None
        event("stream stopped")
        report.count_stored(check_stored(influx, database, site, stream_acked))
        event("every acknowledged reading checked in InfluxDB")
        wait_until(
            lambda: all((name, key, "resolved") in hook.alerts() for name, key in expected),
            60,
            what="the resolutions",
        )
        event("resolutions delivered")
        _check_notifications(hook, expected, report)
        outbox = tmp_path / "data" / "alerts.sqlite"
        try:
            wait_until(lambda: outbox_pending(outbox) == 0, 30, what="the outbox to drain")
        finally:
            report.outbox_pending = outbox_pending(outbox)
        report.spool_backlog = spool_backlog(metrics_port)
    finally:
        if stream is not None:
            stream.stop(settle=5)
        if incident is not None:
            incident.stop()
        for process in processes:
            code = process.stop()
            if code not in (0, None):
                report.leftover.append(f"{process.args} exited {code}")
        hook.stop()
        report.leftover += left_behind(tmp_path, broker, influx)
        report.finish()
    return report


def left_behind(folder: Path, broker: MosquittoServer, influx: InfluxServer) -> list[str]:
    """Processes of this run still alive, other than the broker and database it was given."""
    servers = {str(p.process.pid) for p in (broker, influx) if p.process is not None}
    return [line for line in _processes_of(folder) if line.split(":")[0] not in servers]


def pause(seconds: float) -> None:
    if seconds > 0:
        deadline = time.monotonic() + seconds
        wait_until(lambda: time.monotonic() >= deadline, seconds + 5, interval=0.1)


def check_stored(
    influx: InfluxServer, database: str, site: str, acked: set[tuple[str, int]],
    interval: float = 1.0, wait_for: set[tuple[str, int]] | None = None,
) -> Stored:
    """Waits (90 s at most) for every acknowledged reading (or those of ``wait_for``), then
    counts missing and twice."""

    def rows() -> list[tuple[str, int]]:
        return [
            (row["device"], row["seq"])
            for row in influx.query(f"SELECT seq, device FROM ups WHERE site='{site}'", database)
        ]

    with contextlib.suppress(TimeoutError):
        wait_until(lambda: (acked if wait_for is None else wait_for) <= set(rows()), 90,
                   interval=interval, what="every acked reading")
    points = rows()
    lost = frozenset(acked - set(points))
    return Stored(len(acked), len(points), len(lost), len(points) - len(set(points)), lost)


def _check_notifications(
    hook: WebhookReceiver, expected: list[tuple[str, str]], report: Report
) -> None:
    """The engine's own webhook: a repeat with the same ``Idempotency-Key`` is one the
    receiver drops; one with a new key is a page the on-call gets twice."""
    keys: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    sends: dict[tuple[str, str, str], int] = defaultdict(int)
    texts: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for request in hook.received():
        key = request.headers.get("Idempotency-Key", "")
        states = []
        for alert in request.body["alerts"]:
            labels = alert["labels"]
            ident = (
                labels["alertname"],
                labels.get("device", labels.get("site", "")),
                alert["status"],
            )
            keys[ident].add(key)
            sends[ident] += 1
            texts[ident].append(f"{alert.get('startsAt')} {alert.get('endsAt')} "
                                + alert.get("annotations", {}).get("summary", ""))
            states.append(_page(*ident))
        report.notifications.append(f"t={request.at - report.started:5.1f}s {', '.join(states)}")
    report.repeats_same_key = 0
    for ident, seen in keys.items():
        if len(seen) > 1:
            report.pages_duplicated += len(seen) - 1
            report.repeated.append(f"{_page(*ident)} x{len(seen)} {texts[ident]!r}")
        else:
            report.repeats_same_key += sends[ident] - 1
    report.expected_pages = [_page(name, key, status) for name, key in expected
                             for status in ("firing", "resolved")]
    report.pages_lost = [_page(name, key, status) for name, key in expected
                         for status in ("firing", "resolved") if (name, key, status) not in keys]


def _page(alertname: str, key: str, status: str) -> str:
    return f"{alertname}/{key} {status}"


def outbox_pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]
        )


def spool_backlog(port: int) -> float:
    def read() -> float | None:
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
            if line.startswith("kordon_collector_spool_backlog_bytes "):
                value = float(line.split()[1])
                return value if value == 0 else None
        return None

    try:
        return wait_until(lambda: read() is not None, 30, what="an empty spool") and 0.0
    except TimeoutError:
        return -1.0
