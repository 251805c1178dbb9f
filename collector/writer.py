"""Drains the spool into the telemetry store (InfluxDB, or SQLite in the demo) in batches.

It speaks to the store through :class:`~kordon.storage.telemetry.TelemetryStore` and its
neutral errors only; "InfluxDB" below stands for whichever store is configured.

- Batches are bounded by line count and bytes; a partial batch waits at most
  ``flush_interval`` for company, so quiet fleets still reach the dashboards quickly.
- While InfluxDB is down, answers 5xx, or refuses our credentials, the writer backs off
  exponentially with jitter; the backlog waits on disk.
- A batch InfluxDB refuses for a field type conflict (another collector, or an older
  version, wrote the field first with another type) is never dead-lettered for it: the type
  InfluxDB names is learnt (or, when it names none, the types are read again), every line of
  the batch is rewritten by the type rule (:mod:`collector.fieldtypes`) and the batch sent
  again. Writes are idempotent (timestamps come from the devices), so sending again the
  points a partial write already stored is harmless.
- A batch that InfluxDB rejects for good otherwise (4xx: a parse error) is split in halves
  until the offending lines are isolated; they go to the dead-letter topic and the rest is
  written.
- The cursor moves only after InfluxDB has taken a batch, so a crash replays, never skips.
- Up to ``concurrency`` batches are in flight at once: a single writer spends most of its
  time waiting for InfluxDB's answer, and InfluxDB takes writes from several clients on
  several cores. Batches may land out of order (points carry the device's timestamp, so
  order does not matter to InfluxDB), but the cursor only moves past a batch once it and
  every batch before it were taken.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures

from collector import records
from collector.fieldtypes import FieldTypes
from collector.spool import Batch, Spool
from collector.stats import CollectorStats
from kordon.model.payload import InvalidTelemetry
from kordon.storage.fieldtypes import is_conflict, parse_conflict
from kordon.storage.lineprotocol import LineProtocolError, encode_line, parse_lines
from kordon.storage.telemetry import (
    StoreAuthError,
    StoreDatabaseMissing,
    StoreError,
    StoreRejected,
    TelemetryStore,
)

log = logging.getLogger(__name__)

RejectHandler = Callable[[bytes, str], bool]  # (line, reason) -> dead letter accepted
_MAX_RETYPES = 8  # rewrites of one batch before it is split (types that keep changing)


class InfluxWriter:
    def __init__(
        self,
        spool: Spool,
        client: TelemetryStore,
        stats: CollectorStats,
        on_rejected: RejectHandler,
        batch_bytes: int = 1 << 20,
        flush_interval: float = 0.2,
        retry_max: float = 30.0,
        create_database: bool = True,
        concurrency: int = 3,
        types: FieldTypes | None = None,
    ) -> None:
        self.spool = spool
        self.client = client
        self.stats = stats
        self.on_rejected = on_rejected
        self.batch_bytes = batch_bytes
        self.flush_interval = flush_interval
        self.retry_max = retry_max
        self.create_database = create_database
        self.concurrency = concurrency
        self.types = types
        self._stop = threading.Event()
        self._failure_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._failures = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self.create_database:
            self.client.create_database()
        self._load_types()
        self._thread.start()

    def _load_types(self) -> None:
        """Read the field types the store holds; retried before each write until it works."""
        if self.types is None or self.types.loaded:
            return
        try:
            self.types.load(self.client)
        except StoreError as exc:
            log.warning("could not read field types from the store yet: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current attempt; unwritten records stay in the spool."""
        self._stop.set()
        self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until everything committed so far is written (used at shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spool.drained():
                return True
            time.sleep(0.02)
        return self.spool.drained()

    def _run(self) -> None:
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="influx-write")
        in_flight: deque[tuple[Batch, Future[bool]]] = deque()
        try:
            while not self._stop.is_set():
                self._retire(in_flight)
                if len(in_flight) >= self.concurrency:
                    wait_for_futures([in_flight[0][1]], timeout=0.5)
                    continue
                start = in_flight[-1][0].end if in_flight else None
                # With writes in flight, look again soon: the oldest may finish first.
                if not self.spool.wait_for_data(0.005 if in_flight else 0.5, after=start):
                    continue
                # A full batch goes at once; a partial one waits up to flush_interval for
                # company, unless writes are in flight (it then goes when they are done).
                pending = sum(batch.size for batch, _ in in_flight)
                if not in_flight:
                    self.spool.wait_for_bytes(self.batch_bytes, self.flush_interval)
                elif self.spool.available_bytes() - pending < self.batch_bytes:
                    wait_for_futures([in_flight[0][1]], timeout=self.flush_interval)
                    continue
                batch = self.spool.read_batch(1 << 20, self.batch_bytes, start=start)
                if batch is not None:
                    in_flight.append((batch, pool.submit(self._write, batch.records)))
        finally:
            pool.shutdown(wait=True)
            self._retire(in_flight)

    def _retire(self, in_flight: deque[tuple[Batch, Future[bool]]]) -> None:
        """Move the cursor past the leading batches InfluxDB has taken."""
        while in_flight and in_flight[0][1].done():
            batch, future = in_flight[0]
            if not future.result():
                return  # stopped before it was written: it stays in the spool
            in_flight.popleft()
            self.spool.advance(batch.end, batch.size)

    def _write(self, records: list[bytes]) -> bool:
        """Write until it succeeds, every bad line is dead-lettered, or we are stopping."""
        while not self._stop.is_set():
            self._load_types()
            try:
                self._write_splitting(records)
            except StoreRejected:
                raise AssertionError("unreachable: rejections are split") from None
            except StoreDatabaseMissing as exc:
                self._note_failure(exc)
                if not self.client.create_database():
                    self._backoff()
                continue
            except StoreError as exc:
                self._note_failure(exc)
                self._backoff()
                continue
            with self._failure_lock:
                if self._failures:
                    log.info(
                        "InfluxDB writes work again after %d failed attempts", self._failures
                    )
                self._failures = 0
                self.last_error = None
            return True
        return False

    def _write_splitting(self, batch: list[bytes], retypes: int = 0) -> None:
        started = time.perf_counter()
        try:
            self.client.write(b"\n".join([records.body(record) for record in batch]))
        except StoreRejected as exc:
            if retypes < _MAX_RETYPES and is_conflict(exc.message):
                rewritten = self._retype(batch, exc.message)
                if rewritten is not None:
                    self.stats.type_conflicts += 1
                    self._write_splitting(rewritten, retypes + 1)
                    return
            if len(batch) == 1:
                lines = records.split(batch[0])
                if len(lines) > 1:
                    self._write_splitting(lines)
                    return
                self.stats.lines_rejected += 1
                log.warning("InfluxDB rejected a line for good: %s", exc.message)
                if not self.on_rejected(records.body(batch[0]), exc.message):
                    raise _DeadLetterUnavailable() from exc
                return
            middle = len(batch) // 2
            self._write_splitting(batch[:middle])
            self._write_splitting(batch[middle:])
            return
        lines = sum(records.line_count(record) for record in batch)
        self.stats.observe_write(time.perf_counter() - started, lines)

    def _retype(self, batch: list[bytes], message: str) -> list[bytes] | None:
        """``batch`` rewritten by the type rule after the store refused it for a field's
        type, or ``None`` when no line changes (then the batch is split as for any refusal).
        Only this rare path parses line protocol."""
        if self.types is None:
            return None
        conflict = parse_conflict(message)
        parsed = []
        try:
            for record in batch:
                parsed.append(parse_lines(records.body(record).decode("utf-8")))
        except (LineProtocolError, UnicodeDecodeError):
            return None
        if conflict is not None:
            self.types.learn(conflict.measurement, conflict.field, conflict.held)
        else:  # the store named no field: ask it what it holds now
            try:
                self.types.load(self.client, {point[0] for points in parsed for point in points})
            except StoreError as exc:
                log.warning("could not read field types after a conflict: %s", exc)
                return None
        out: list[bytes] = []
        changed = False
        try:
            for record, points in zip(batch, parsed, strict=True):
                lines = []
                record_changed = False
                for measurement, tags, fields, ts in points:
                    retyped = self.types.retype(measurement, fields)
                    if retyped is not None:
                        record_changed = True
                        fields = retyped  # type: ignore[assignment]
                    lines.append(encode_line(measurement, tags, fields, ts).encode())
                if record_changed:
                    changed = True
                    out.extend(records.pack(lines))
                else:
                    out.append(record)
        except (InvalidTelemetry, LineProtocolError):
            return None
        return out if changed else None

    def _note_failure(self, exc: Exception) -> None:
        with self._failure_lock:
            self._failures += 1
            failures = self._failures
            self.stats.write_errors += 1
            self.last_error = str(exc)
        level = logging.ERROR if isinstance(exc, StoreAuthError) else logging.WARNING
        if failures == 1 or failures % 10 == 0:
            log.log(level, "InfluxDB write failed (attempt %d): %s", failures, exc)

    def _backoff(self) -> None:
        # The failure count is shared by the writes in flight, so all of them back off.
        delay = min(self.retry_max, 0.1 * 2 ** min(self._failures, 16))
        self._stop.wait(delay * random.uniform(0.5, 1.0))

    @property
    def failing(self) -> bool:
        return self._failures > 0


class _DeadLetterUnavailable(StoreError):
    """The broker did not take the dead letter: keep the batch and try again later."""
