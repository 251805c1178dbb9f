"""The writer with several InfluxDB writes in flight, against the real InfluxDB.

Batches may land out of order, but the spool's cursor must never pass a batch InfluxDB has
not taken: otherwise a crash while an early batch is still in flight would skip it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from collector.spool import Spool
from collector.stats import CollectorStats
from collector.writer import InfluxWriter
from kordon.storage.influx import InfluxTarget, InfluxTelemetryStore
from testkit import InfluxServer
from testkit.waiting import wait_until

LINES_PER_RECORD = 50


class FirstWriteHeldBack(InfluxTelemetryStore):
    """The real InfluxDB store, whose first write waits (a slow link) until released."""

    def __init__(self, target: InfluxTarget) -> None:
        super().__init__(target)
        self.release = threading.Event()
        self.first_started = threading.Event()
        self.completed = 0
        self._first = True
        self._lock = threading.Lock()

    def write(self, body: bytes, precision: str = "ns") -> None:
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.first_started.set()
            self.release.wait(30)
        super().write(body, precision)
        with self._lock:
            self.completed += 1


def spool_with_records(directory: Path, count: int) -> Spool:
    spool = Spool(directory, fsync=False)
    for record in range(count):
        lines = [
            f"ups,device=ups-{record},site=w battery.charge={line}.5,seq={line}i "
            f"{1_790_000_000_000_000_000 + line * 1_000_000_000}"
            for line in range(LINES_PER_RECORD)
        ]
        spool.append([b"L" + "\n".join(lines).encode()])
    spool.commit()
    return spool


def test_cursor_waits_for_the_oldest_write_and_everything_lands_once(
    tmp_path: Path, influxdb: InfluxServer, database: str
) -> None:
    records = 40
    spool = spool_with_records(tmp_path / "spool", records)
    backlog = spool.backlog_bytes()
    store = FirstWriteHeldBack(InfluxTarget(url=influxdb.url, database=database))
    stats = CollectorStats()
    writer = InfluxWriter(
        spool,
        store,
        stats,
        on_rejected=lambda line, reason: True,
        batch_bytes=backlog // 8,  # several batches
        flush_interval=0.05,
        concurrency=3,
    )
    writer.start()
    try:
        assert store.first_started.wait(10)
        # The other writers go on: later batches are taken while the first is held back...
        wait_until(lambda: store.completed >= 2, 10, what="later batches written")
        # ...but the cursor stays before the first batch, so a crash would replay it. A
        # negative property needs a window: three of the writer's longest waits (0.5 s).
        window_ends = time.monotonic() + 1.5
        while time.monotonic() < window_ends:
            assert spool.backlog_bytes() == backlog
            time.sleep(0.05)
        store.release.set()
        wait_until(spool.drained, 10, what="the spool to drain")
    finally:
        store.release.set()
        writer.stop()
    rows = influxdb.query('SELECT count("battery.charge") FROM ups', database)
    assert rows[0]["count"] == records * LINES_PER_RECORD
    assert stats.lines_written == records * LINES_PER_RECORD
    spool.close()


def test_one_write_in_flight_still_drains(
    tmp_path: Path, influxdb: InfluxServer, database: str
) -> None:
    spool = spool_with_records(tmp_path / "spool", 10)
    store = InfluxTelemetryStore(InfluxTarget(url=influxdb.url, database=database))
    stats = CollectorStats()
    writer = InfluxWriter(
        spool, store, stats, lambda line, reason: True, batch_bytes=4096, concurrency=1
    )
    writer.start()
    try:
        wait_until(spool.drained, 10, what="the spool to drain")
    finally:
        writer.stop()
    assert stats.lines_written == 10 * LINES_PER_RECORD
    spool.close()
