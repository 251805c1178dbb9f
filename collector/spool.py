"""The durable on-disk spool between MQTT and InfluxDB.

Records are opaque bytes to the spool; the collector puts all the line-protocol lines of one
MQTT message in one record (``collector.records``). They are appended to segment files in
group commits: the committer thread writes everything appended since the last commit,
fsyncs, and only then are the messages behind those records acknowledged to the broker. The
writer reads committed records in order and moves the cursor, in order, past what InfluxDB
has taken. The backlog lives on disk, so memory stays bounded however long InfluxDB is away.

While the writer keeps up, it reads the records it needs from a bounded in-memory copy of
the latest commits (the tail) instead of reading the segment back and checking every CRC:
the same bytes, already durable, at a fraction of the CPU. A writer that falls behind the
tail reads from disk until it catches up.

Framing: ``<u32 length><u32 crc32><bytes>``. A crash can leave a torn record at the end of
the last segment; recovery truncates it (it was never acknowledged). Line-protocol string
fields may hold newlines, which is why records are length-prefixed, not newline-separated.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 4 << 20  # a line is at most a few times the largest accepted payload
_SUFFIX = ".seg"
# Each remembered record costs about 200 bytes beyond its body: bound the count as well.
_TAIL_MAX_RECORDS = 8192


@dataclass(frozen=True, slots=True, order=True)
class Position:
    segment: int
    offset: int


@dataclass(slots=True)
class Batch:
    records: list[bytes]
    end: Position
    size: int


def _segment_name(number: int) -> str:
    return f"{number:020d}{_SUFFIX}"


def _scan(data: bytes, start: int = 0) -> tuple[list[bytes], int]:
    """Parse whole, intact records from ``data[start:]``; return them and where they end."""
    records: list[bytes] = []
    pos = start
    end = len(data)
    header_size = _HEADER.size
    while pos + header_size <= end:
        length, crc = _HEADER.unpack_from(data, pos)
        if length == 0:
            break  # never written (append refuses empty records): zeros left by a crash
        body_end = pos + header_size + length
        if body_end > end:
            break
        body = data[pos + header_size : body_end]
        if zlib.crc32(body) != crc:
            break
        records.append(body)
        pos = body_end
    return records, pos


class Spool:
    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 16 << 20,
        fsync: bool = True,
        tail_bytes: int = 8 << 20,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.tail_bytes = tail_bytes
        # (position the record follows, its end, its body) of the latest committed records.
        self._tail: deque[tuple[Position, Position, bytes]] = deque()
        self._tail_size = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._cursor_path = directory / "cursor"
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._committed_cond = threading.Condition(self._lock)
        self._pending: list[bytes] = []
        self._pending_tokens: list[object] = []
        self._segments: list[int] = []
        # Byte counts since this process opened the spool; a backlog recovered from disk is
        # not counted, so until the reader first catches up it is "plenty".
        self._committed_bytes = 0
        self._read_bytes = 0
        self._recovered_backlog = False
        self._recover()

    # --- recovery -------------------------------------------------------------------------
    def _recover(self) -> None:
        numbers = sorted(
            int(path.stem) for path in self.directory.glob(f"*{_SUFFIX}") if path.stem.isdigit()
        )
        cursor = self._read_cursor()
        if numbers:
            last = numbers[-1]
            path = self.directory / _segment_name(last)
            data = path.read_bytes()
            _, valid_end = _scan(data)
            if valid_end != len(data):
                log.warning(
                    "spool: truncating %d bytes of a torn record at the end of %s "
                    "(never acknowledged)",
                    len(data) - valid_end,
                    path.name,
                )
                with path.open("r+b") as handle:
                    handle.truncate(valid_end)
                    os.fsync(handle.fileno())
        if cursor is None or (numbers and cursor.segment < numbers[0]):
            cursor = Position(numbers[0] if numbers else 1, 0)
        for number in numbers:
            if number < cursor.segment:
                (self.directory / _segment_name(number)).unlink(missing_ok=True)
        self._segments = [n for n in numbers if n >= cursor.segment]
        # Appends always go to a fresh segment after a restart, so a segment is written by
        # one process lifetime only and its size is final once a newer one exists.
        self._write_number = (self._segments[-1] + 1) if self._segments else cursor.segment
        self._segments.append(self._write_number)
        self._write_fd = os.open(
            self.directory / _segment_name(self._write_number),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o640,
        )
        self._write_offset = os.fstat(self._write_fd).st_size
        self._committed = Position(self._write_number, self._write_offset)
        self._read_pos = cursor
        self._recovered_backlog = cursor < Position(self._write_number, 0) and any(
            n < self._write_number for n in self._segments
        )
        self._dir_fsync()

    def _read_cursor(self) -> Position | None:
        try:
            segment, offset = self._cursor_path.read_text().split()
            return Position(int(segment), int(offset))
        except (OSError, ValueError):
            return None

    def _dir_fsync(self) -> None:
        if not self.fsync:
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- appending (any thread) -----------------------------------------------------------
    def append(self, records: list[bytes], token: object = None) -> None:
        """Queue records for the next commit; ``token`` is returned by that commit."""
        for body in records:
            if not body:
                raise ValueError("empty spool record")
            if len(body) > MAX_RECORD_BYTES:
                raise ValueError(f"spool record of {len(body)} bytes exceeds {MAX_RECORD_BYTES}")
        with self._lock:
            self._pending.extend(records)
            if token is not None:
                self._pending_tokens.append(token)

    def commit(self) -> list[object]:
        """Write and fsync everything appended so far; return the tokens made durable."""
        with self._commit_lock:
            with self._lock:
                records, self._pending = self._pending, []
                tokens, self._pending_tokens = self._pending_tokens, []
            if not records:
                return tokens
            chunks = []
            entries = []
            segment, offset = self._write_number, self._write_offset
            for body in records:
                chunks.append(_HEADER.pack(len(body), zlib.crc32(body)))
                chunks.append(body)
                end = offset + _HEADER.size + len(body)
                entries.append((Position(segment, offset), Position(segment, end), body))
                offset = end
            data = b"".join(chunks)
            view = memoryview(data)
            while view:
                written = os.write(self._write_fd, view)
                view = view[written:]
            if self.fsync:
                os.fdatasync(self._write_fd)
            with self._lock:
                self._write_offset += len(data)
                self._committed = Position(self._write_number, self._write_offset)
                self._committed_bytes += len(data)
                self._remember(entries, len(data))
                self._committed_cond.notify_all()
            if self._write_offset >= self.segment_bytes:
                self._rotate()
            return tokens

    def _remember(self, entries: list[tuple[Position, Position, bytes]], size: int) -> None:
        """Keep just-committed records in the tail (lock held)."""
        self._tail.extend(entries)
        self._tail_size += size
        while self._tail and (
            self._tail_size > self.tail_bytes or len(self._tail) > _TAIL_MAX_RECORDS
        ):
            follows, end, _ = self._tail.popleft()
            self._tail_size -= end.offset - follows.offset

    def _rotate(self) -> None:
        os.close(self._write_fd)
        number = self._write_number + 1
        fd = os.open(
            self.directory / _segment_name(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640
        )
        self._dir_fsync()
        with self._lock:
            self._write_fd = fd
            self._write_number = number
            self._write_offset = 0
            self._segments.append(number)
            self._committed = Position(number, 0)

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending or self._pending_tokens)

    # --- reading (the writer thread) ------------------------------------------------------
    def available_bytes(self) -> int:
        """Committed bytes not yet read (a large number while a recovered backlog lasts)."""
        with self._lock:
            return self._available_locked()

    def _available_locked(self) -> int:
        if self._read_pos >= self._committed:
            return 0
        if self._recovered_backlog:
            return 1 << 62
        return max(self._committed_bytes - self._read_bytes, 1)

    def wait_for_bytes(self, count: int, timeout: float) -> int:
        """Wait until ``count`` bytes are committed and unread, or ``timeout`` passes."""
        with self._lock:
            self._committed_cond.wait_for(lambda: self._available_locked() >= count, timeout)
            return self._available_locked()

    def wait_for_data(self, timeout: float, after: Position | None = None) -> bool:
        """Wait until records are committed past ``after`` (default: the cursor)."""
        with self._lock:
            start = self._read_pos if after is None else after
            if start < self._committed:
                return True
            self._committed_cond.wait(timeout)
            return start < self._committed

    def read_batch(
        self, max_records: int, max_bytes: int = 8 << 20, start: Position | None = None
    ) -> Batch | None:
        """Committed records from ``start`` (default: the cursor) on, without moving the
        cursor (see :meth:`advance`). A writer with batches in flight reads ahead of it."""
        with self._lock:
            committed = self._committed
            pos = self._read_pos if start is None else start
            from_tail = self._read_tail(pos, max_records, max_bytes)
        if from_tail is not None:
            return from_tail
        records: list[bytes] = []
        size = 0
        while len(records) < max_records and size < max_bytes and pos < committed:
            path = self.directory / _segment_name(pos.segment)
            if pos.segment == committed.segment:
                limit = committed.offset
            else:
                try:
                    limit = path.stat().st_size
                except FileNotFoundError:
                    limit = 0
            if pos.offset >= limit:
                if pos.segment == committed.segment:
                    break
                pos = Position(self._next_segment(pos.segment), 0)
                continue
            want = min(limit - pos.offset, max(max_bytes - size, MAX_RECORD_BYTES + _HEADER.size))
            with path.open("rb") as handle:
                handle.seek(pos.offset)
                data = handle.read(want)
            found, _ = _scan(data)
            if not found:
                log.error(
                    "spool: unreadable data in %s at offset %d; skipping the rest of the segment",
                    path.name,
                    pos.offset,
                )
                pos = Position(pos.segment, limit)
                continue
            keep = used = 0
            for body in found[: max_records - len(records)]:
                step = _HEADER.size + len(body)
                if (records or keep) and size + used + step > max_bytes:
                    break  # the batch is full; a record over max_bytes on its own goes alone
                keep += 1
                used += step
            if not keep:
                break
            records.extend(found[:keep])
            size += used
            pos = Position(pos.segment, pos.offset + used)
        if not records:
            if start is None and pos != self._read_pos:
                self.advance(pos)  # skipped over finished segments
            return None
        return Batch(records, pos, size)

    def _read_tail(self, pos: Position, max_records: int, max_bytes: int) -> Batch | None:
        """The batch from ``pos`` out of the tail, or None if the tail does not hold it."""
        tail = self._tail
        while tail and tail[0][0] < pos:  # already written to InfluxDB
            follows, end, _ = tail.popleft()
            self._tail_size -= end.offset - follows.offset
        if not tail or tail[0][0] != pos:
            return None
        records: list[bytes] = []
        size = 0
        for follows, end, body in tail:
            step = end.offset - follows.offset
            if len(records) >= max_records:
                break
            if records and size + step > max_bytes:
                break
            records.append(body)
            size += step
            pos = end
        return Batch(records, pos, size)

    def _next_segment(self, number: int) -> int:
        with self._lock:
            later = [n for n in self._segments if n > number]
        return later[0] if later else number + 1

    def advance(self, pos: Position, consumed_bytes: int = 0) -> None:
        """Everything before ``pos`` is in InfluxDB: move the cursor, drop finished segments."""
        tmp = self._cursor_path.with_suffix(".tmp")
        tmp.write_text(f"{pos.segment} {pos.offset}\n")
        os.replace(tmp, self._cursor_path)
        with self._lock:
            self._read_pos = pos
            self._read_bytes += consumed_bytes
            if self._recovered_backlog and pos.segment >= self._write_number:
                self._recovered_backlog = False
                self._read_bytes = 0
                self._committed_bytes = max(self._committed.offset - pos.offset, 0)
            finished = [n for n in self._segments if n < pos.segment]
            self._segments = [n for n in self._segments if n >= pos.segment]
        for number in finished:
            (self.directory / _segment_name(number)).unlink(missing_ok=True)

    # --- state ----------------------------------------------------------------------------
    def backlog_bytes(self) -> int:
        """Bytes committed but not yet written to InfluxDB."""
        with self._lock:
            segments = list(self._segments)
            read = self._read_pos
            committed = self._committed
        total = 0
        for number in segments:
            if number == committed.segment:
                size = committed.offset
            else:
                try:
                    size = (self.directory / _segment_name(number)).stat().st_size
                except FileNotFoundError:
                    continue
            if number == read.segment:
                size -= read.offset
            total += max(size, 0)
        return total

    def drained(self) -> bool:
        with self._lock:
            if self._pending:
                return False
        return self.backlog_bytes() == 0

    def close(self) -> None:
        self.commit()
        os.close(self._write_fd)
