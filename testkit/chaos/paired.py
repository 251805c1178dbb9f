"""Paired collectors: two members of one MQTT 5 shared group, each SIGKILLed in turn.

A numbered stream (QoS 1, :class:`~testkit.mqtt.StreamPublisher`) runs while two
``kordon run --roles collector`` processes share it. The schedule kills them at different
moments: one under steady load, the other the instant its partner came back (while the
partner drains its backlog), one again the instant it reconnected (its redelivered in-flight
window arriving), and both at once after hanging (SIGSTOP) long enough for the broker to fill
their in-flight windows with messages they could not acknowledge, which must come back.
Every wait is on the stream's progress, not on time.

Then every (device, seq) the broker acknowledged to the publisher must be in InfluxDB once.
A reading processed twice (the killed member had spooled or even written it but not yet
acknowledged it, so the broker sends it again) lands on the same InfluxDB point: the
measurement, the tags (site, device) and the timestamp (the device's ``ts``) are the same,
and InfluxDB keys a point by exactly those. The report counts the redeliveries the members
saw (MQTT DUP flag) so a run shows that the merge was exercised, not assumed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from testkit import InfluxServer, KordonProcess, MosquittoServer, free_port, wait_until
from testkit.chaos.scenario import check_stored
from testkit.collector import collector_process
from testkit.mqtt import StreamPublisher, clear_session


@dataclass
class PairedReport:
    acked: int = 0
    stored: int = 0
    missing: int = 0
    duplicates: int = 0
    redelivered: int = 0  # DUP-flagged messages seen by the members' last lives
    shares: list[float] = field(default_factory=list)  # messages per member, last lives
    events: list[str] = field(default_factory=list)

    def text(self) -> str:
        summary = (
            f"acked {self.acked}, stored {self.stored}, missing {self.missing}, "
            f"stored twice {self.duplicates}; redelivered after kills (counted by the "
            f"members' last lives) {self.redelivered}; shares of the last lives "
            f"{[int(s) for s in self.shares]}"
        )
        return "\n".join([*self.events, summary])


def _counter(port: int, name: str) -> float:
    import httpx

    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0  # not listening (yet): a member that is down has received nothing
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


class Member:
    """One collector of the pair, with its own metrics port (counters reset on restart)."""

    def __init__(self, process: KordonProcess, port: int, client_id: str) -> None:
        self.process = process
        self.port = port
        self.client_id = client_id

    def received(self) -> float:
        return _counter(self.port, "kordon_collector_messages_received_total")

    def redelivered(self) -> float:
        return _counter(self.port, "kordon_collector_messages_redelivered_total")

    def start(self) -> None:
        self.process.start(ready_line="collector ready")

    def kill(self) -> None:
        self.process.stop(signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: a hung collector. The broker fills its in-flight window (receive
        maximum) with messages it can no longer acknowledge, so they must come back."""
        assert self.process.process is not None
        os.kill(self.process.process.pid, signal.SIGSTOP)


def run_paired(
    tmp_path: Path,
    broker: MosquittoServer,
    influx: InfluxServer,
    *,
    rate: float = 2000,
    devices: int = 100,
    away_messages: int = 3000,
    log: Callable[[str], None] = print,
) -> PairedReport:
    report = PairedReport()
    started = time.monotonic()
    site = f"pair-{uuid.uuid4().hex[:6]}"
    database = f"pair_{uuid.uuid4().hex[:8]}"
    # A group of its own: members of other runs on the same broker must not take a share.
    group = site
    members: list[Member] = []
    for name in ("a", "b"):
        port = free_port()
        process = collector_process(
            tmp_path,
            broker,
            influx,
            database,
            client_id=f"{site}-{name}",
            protocol="5",
            shared_group=group,
            extra_config=f'  metrics_addr: "127.0.0.1:{port}"\n',
        )
        members.append(Member(process, port, f"{site}-{name}"))
    a, b = members

    def event(text: str) -> None:
        report.events.append(f"t={time.monotonic() - started:5.1f}s {text}")
        log(report.events[-1])

    stream: StreamPublisher | None = None

    def published(count: int) -> None:
        assert stream is not None
        mark = stream.sent
        wait_until(
            lambda: stream.sent - mark >= count,
            count / rate * 5 + 30,
            interval=0.01,
            what=f"{count} more messages published",
        )

    try:
        a.start()
        b.start()
        stream = StreamPublisher(broker.host, broker.port, site, devices, rate).start()
        wait_until(lambda: a.received() > 0 and b.received() > 0, 30, what="both members fed")
        event(f"{devices} devices at {rate:.0f} msg/s; both members receive")

        a.kill()
        event("a SIGKILLed under steady load")
        published(away_messages)
        a.start()
        event(f"a restarted after {away_messages} messages; b SIGKILLed at once")
        b.kill()  # while a drains the backlog its session kept
        published(away_messages)
        b.start()
        b.kill()  # the instant it reconnected: its in-flight window is being redelivered
        event("b restarted and SIGKILLed again as soon as it was ready")
        published(away_messages // 3)
        b.start()
        event("b restarted")
        published(away_messages)
        a.freeze()
        b.freeze()
        published(away_messages)
        a.kill()
        b.kill()
        event("a and b hung (SIGSTOP), then SIGKILLed together")
        published(away_messages)
        a.start()
        b.start()
        event("a and b restarted")
        published(away_messages)
        stream.stop(settle=60)
        acked = stream.acked
        stream = None
        event("stream stopped")
        _check(influx, database, site, acked, report)
        report.redelivered = int(sum(member.redelivered() for member in members))
        report.shares = [member.received() for member in members]
        event("every acknowledged reading checked in InfluxDB")
    finally:
        if stream is not None:
            stream.stop(settle=5)
        for member in members:
            member.process.stop()
        for member in members:
            # Leave no session behind to take a share of a later run on this broker.
            with contextlib.suppress(TimeoutError, OSError):
                clear_session(broker.host, broker.port, member.client_id)
    return report


def _check(
    influx: InfluxServer,
    database: str,
    site: str,
    acked: set[tuple[str, int]],
    report: PairedReport,
) -> None:
    found = check_stored(influx, database, site, acked, interval=0.5)
    report.acked, report.stored = found.acked, found.stored
    report.missing, report.duplicates = found.missing, found.duplicates
