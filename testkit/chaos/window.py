"""How long may a collector stay away before Mosquitto drops its queue?

Mosquitto 2.0.11 stops delivering a persistent session's queue at 65,535 QoS 1 messages and
loses the rest silently (design brief; Mosquitto issue 2431). The limit is a count, so the
window in seconds is that count divided by the rate the collector's share of the stream
arrives at. :func:`measure` SIGKILLs one collector, keeps a numbered stream running until
``away_messages`` were published, restarts it, and counts what InfluxDB holds of everything
the broker acknowledged to the publisher.

With two collectors in one MQTT 5 shared-subscription group, the crashed member's persistent
session keeps receiving its round-robin share (design brief), so its queue fills at half
the rate: the window doubles, but it is not unlimited.
"""

from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from testkit import InfluxServer, KordonProcess, MosquittoServer, free_port, wait_until
from testkit.collector import collector_process
from testkit.mqtt import StreamPublisher, clear_session


@dataclass
class WindowResult:
    collectors: int
    protocol: str
    rate: float
    away_seconds: float
    away_messages: int
    acked: int
    stored: int
    lost: int
    seq_gaps: float

    def text(self) -> str:
        return (
            f"{self.collectors} collector(s), MQTT {self.protocol}, {self.rate:.0f} msg/s, "
            f"one away for {self.away_seconds:.1f} s ({self.away_messages} messages published "
            "meanwhile): "
            f"acked {self.acked}, stored {self.stored}, lost {self.lost}, "
            f"seq gaps counted by the collectors {self.seq_gaps:.0f}"
        )


def _count(influx: InfluxServer, database: str, site: str) -> int:
    rows = influx.query(f"SELECT count(seq) FROM ups WHERE site='{site}'", database)
    return int(rows[0]["count"]) if rows else 0


def _seq_gaps(port: int) -> float:
    import httpx

    total = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith("kordon_collector_seq_gaps_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure(
    tmp_path: Path,
    broker: MosquittoServer,
    influx: InfluxServer,
    *,
    collectors: int,
    rate: float,
    away_messages: int,
    devices: int = 100,
    protocol: str | None = None,
) -> WindowResult:
    site = f"win-{uuid.uuid4().hex[:6]}"
    database = f"win_{uuid.uuid4().hex[:8]}"
    protocol = protocol or ("5" if collectors > 1 else "3.1.1")
    ports = [free_port() for _ in range(collectors)]
    (tmp_path / site).mkdir(parents=True, exist_ok=True)
    processes: list[KordonProcess] = [
        collector_process(
            tmp_path / site,
            broker,
            influx,
            database,
            client_id=f"{site}-c{index}",
            protocol=protocol,
            # A group of its own: a member left by an earlier run on this broker would take
            # its round-robin share of this run's stream into a queue nobody reads.
            shared_group=site,
            extra_config=f'  metrics_addr: "127.0.0.1:{ports[index]}"\n',
        )
        for index in range(collectors)
    ]
    stream: StreamPublisher | None = None
    try:
        for process in processes:
            process.start(ready_line="collector ready")
        stream = StreamPublisher(broker.host, broker.port, site, devices, rate).start()
        wait_until(lambda: _count(influx, database, site) > 0, 30, what="readings flowing")
        victim = processes[0]
        victim.stop(signal.SIGKILL)
        sent_at_kill, killed = stream.sent, time.monotonic()
        wait_until(
            lambda: stream.sent - sent_at_kill >= away_messages,
            away_messages / rate * 3 + 30,
            interval=0.01,
            what=f"{away_messages} messages while the collector is away",
        )
        away_seconds = time.monotonic() - killed
        sent_while_away = stream.sent - sent_at_kill
        victim.start(ready_line="collector ready")
        settle_until = time.monotonic() + 2
        wait_until(lambda: time.monotonic() >= settle_until, 5, interval=0.1)
        stream.stop(settle=60)
        acked = set(stream.acked)
        stream = None
        history: list[int] = []

        def settled() -> bool:
            history.append(_count(influx, database, site))
            return history[-1] >= len(acked) or (len(history) >= 4 and len(set(history[-4:])) == 1)

        wait_until(settled, 120, interval=1.0, what="InfluxDB to stop growing for 15 s")
        stored = history[-1]
        gaps = sum(_seq_gaps(port) for port in ports)
        return WindowResult(
            collectors=collectors,
            protocol=protocol,
            rate=rate,
            away_seconds=away_seconds,
            away_messages=sent_while_away,
            acked=len(acked),
            stored=stored,
            lost=len(acked) - stored,
            seq_gaps=gaps,
        )
    finally:
        if stream is not None:
            stream.stop(settle=5)
        for process in processes:
            process.stop()
        for index in range(collectors):
            clear_session(broker.host, broker.port, f"{site}-c{index}")
