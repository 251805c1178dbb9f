"""The durable spool: group commits, ordered reads, a cursor that survives restarts, recovery
from a torn tail, segment rotation and clean-up."""

from __future__ import annotations

import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.spool import MAX_RECORD_BYTES, Position, Spool

HEADER = 8  # <u32 length><u32 crc32>


def records(count: int, start: int = 0, size: int = 20) -> list[bytes]:
    return [f"r{i:06d}".encode().ljust(size, b".") for i in range(start, start + count)]


def framed(body: bytes) -> bytes:
    return struct.pack("<II", len(body), zlib.crc32(body)) + body


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def read_all(spool: Spool, advance: bool = True, chunk: int = 1000) -> list[bytes]:
    out: list[bytes] = []
    while (batch := spool.read_batch(max_records=chunk)) is not None:
        out.extend(batch.records)
        if not advance:
            break
        spool.advance(batch.end, batch.size)
    return out


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool", fsync=False)


def test_append_is_invisible_until_commit(spool: Spool) -> None:
    spool.append(records(3), token="m1")
    assert spool.has_pending()
    assert spool.read_batch(max_records=10) is None
    assert spool.backlog_bytes() == 0
    assert spool.commit() == ["m1"]
    assert not spool.has_pending()
    batch = spool.read_batch(max_records=10)
    assert batch is not None and batch.records == records(3)
    assert batch.size == sum(HEADER + len(r) for r in records(3))


def test_commit_returns_exactly_the_tokens_made_durable(spool: Spool) -> None:
    spool.append(records(1), token="a")
    spool.append(records(2, 1), token="b")
    spool.append(records(1, 3))  # no token: nothing to acknowledge
    assert spool.commit() == ["a", "b"]
    assert spool.commit() == []
    spool.append([], token="empty")  # a message that owes nothing to the spool
    assert spool.commit() == ["empty"]
    spool.append(records(1, 4), token="c")
    assert spool.commit() == ["c"]
    assert read_all(spool) == records(5)


def test_read_does_not_move_the_cursor_until_advance(spool: Spool) -> None:
    spool.append(records(5))
    spool.commit()
    first = spool.read_batch(max_records=2)
    again = spool.read_batch(max_records=2)
    assert first is not None and again is not None
    assert first.records == again.records == records(2)
    spool.advance(first.end, first.size)
    rest = spool.read_batch(max_records=10)
    assert rest is not None and rest.records == records(3, 2)


def test_max_records(spool: Spool) -> None:
    spool.append(records(10))
    spool.commit()
    sizes = []
    while (batch := spool.read_batch(max_records=3)) is not None:
        sizes.append(len(batch.records))
        spool.advance(batch.end, batch.size)
    assert sizes == [3, 3, 3, 1]


def test_max_bytes(spool: Spool) -> None:
    body = records(100, size=100)
    spool.append(body)
    spool.commit()
    got: list[bytes] = []
    while (batch := spool.read_batch(max_records=10_000, max_bytes=1000)) is not None:
        assert batch.size <= 1000, f"a batch of {batch.size} bytes for max_bytes=1000"
        assert batch.size == sum(HEADER + len(r) for r in batch.records)
        got.extend(batch.records)
        spool.advance(batch.end, batch.size)
    assert got == body


def test_a_record_larger_than_max_bytes_still_comes_out(spool: Spool) -> None:
    big = b"x" * 5000
    spool.append([big, b"small"])
    spool.commit()
    batch = spool.read_batch(max_records=10, max_bytes=100)
    assert batch is not None and batch.records == [big]  # alone, as it is over the limit
    spool.advance(batch.end, batch.size)
    assert read_all(spool) == [b"small"]


def test_records_with_newlines_and_binary_bytes(spool: Spool) -> None:
    odd = [b"\n", b"a\nb\r\n", bytes(range(256)), b"\x00" * 9, framed(b"looks like a record")]
    spool.append(odd)
    spool.commit()
    assert read_all(spool) == odd


def test_record_size_limit(spool: Spool) -> None:
    with pytest.raises(ValueError):
        spool.append([b"x" * (MAX_RECORD_BYTES + 1)])
    assert not spool.has_pending()


def test_rotation_across_many_segments_and_cleanup(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, segment_bytes=256, fsync=False)
    written = []
    for i in range(50):
        batch = records(3, start=3 * i, size=40)
        spool.append(batch)
        spool.commit()
        written.extend(batch)
    assert len(segments(directory)) >= 20
    assert spool.backlog_bytes() == sum(HEADER + len(r) for r in written)
    assert read_all(spool, chunk=7) == written
    assert spool.backlog_bytes() == 0
    # Finished segments are deleted; only the one being written (and perhaps the one the
    # cursor sits at the end of) stays.
    assert len(segments(directory)) <= 2


def test_backlog_bytes_and_drained(spool: Spool) -> None:
    assert spool.drained() and spool.backlog_bytes() == 0
    spool.append(records(4))
    assert not spool.drained()  # appended but not yet committed is not drained
    spool.commit()
    assert spool.backlog_bytes() == 4 * (HEADER + 20)
    batch = spool.read_batch(max_records=1)
    assert batch is not None
    spool.advance(batch.end, batch.size)
    assert spool.backlog_bytes() == 3 * (HEADER + 20)
    assert not spool.drained()
    read_all(spool)
    assert spool.backlog_bytes() == 0
    assert spool.drained()


def test_drained_after_the_last_commit_rotated(tmp_path: Path) -> None:
    """Everything read and advanced is drained, even when the last commit filled a segment."""
    spool = Spool(tmp_path / "spool", segment_bytes=4096, fsync=False)
    spool.append([b"x" * 5000])
    spool.commit()  # fills the segment: the spool rotates to a new, empty one
    batch = spool.read_batch(max_records=1)  # exactly the records of the full segment
    assert batch is not None
    spool.advance(batch.end, batch.size)
    assert spool.backlog_bytes() == 0
    assert spool.drained()


def test_cursor_persists_and_resumes_exactly(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, segment_bytes=300, fsync=False)
    spool.append(records(30))
    spool.commit()
    done = spool.read_batch(max_records=12)
    assert done is not None
    spool.advance(done.end, done.size)  # 0..11 are in InfluxDB
    in_flight = spool.read_batch(max_records=5)  # 12..16 were being written when we "crash"
    assert in_flight is not None and in_flight.records == records(5, 12)
    spool.append(records(3, 30))  # appended but never committed: never acknowledged either
    # Crash: no close(), a new process opens the same folder.
    reopened = Spool(directory, segment_bytes=300, fsync=False)
    assert read_all(reopened) == records(18, 12)  # the uncommitted batch again, nothing else
    reopened.append(records(2, 100))
    reopened.commit()
    reopened.close()
    third = Spool(directory, segment_bytes=300, fsync=False)
    assert read_all(third) == records(2, 100)
    third.close()


def test_reopen_after_clean_close_keeps_the_unread_backlog(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, fsync=False)
    spool.append(records(5))
    spool.close()  # close commits what was appended
    reopened = Spool(directory, fsync=False)
    assert reopened.backlog_bytes() == 5 * (HEADER + 20)
    assert not reopened.drained()
    assert read_all(reopened) == records(5)
    assert reopened.drained()
    reopened.close()


def test_many_reopens_without_writes_lose_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, fsync=False)
    spool.append(records(3))
    spool.close()
    for _ in range(5):
        Spool(directory, fsync=False).close()
    final = Spool(directory, fsync=False)
    assert read_all(final) == records(3)
    final.close()
    assert len(segments(directory)) <= 2


@pytest.mark.parametrize(
    "tail",
    [
        b"\x07",  # less than a header
        struct.pack("<II", 50, 0),  # a header whose body never arrived
        framed(b"half a record")[:-4],  # body cut short
        struct.pack("<II", 5, 12345) + b"abcde",  # whole, but the CRC does not match
        b"\x00" * 64,  # zeros, as a crashed file system may leave
    ],
)
def test_torn_tail_is_truncated_on_reopen(tmp_path: Path, tail: bytes) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, fsync=False)
    spool.append(records(4))
    spool.close()
    last = segments(directory)[-1]
    good_size = last.stat().st_size
    assert good_size == 4 * (HEADER + 20)
    with last.open("ab") as handle:
        handle.write(tail)
    reopened = Spool(directory, fsync=False)
    assert last.stat().st_size == good_size
    reopened.append(records(2, 4))
    reopened.commit()
    assert read_all(reopened) == records(6)
    reopened.close()


def test_torn_tail_after_a_partly_read_segment(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, fsync=False)
    spool.append(records(6))
    spool.commit()
    batch = spool.read_batch(max_records=2)
    assert batch is not None
    spool.advance(batch.end, batch.size)
    last = segments(directory)[-1]
    with last.open("ab") as handle:
        handle.write(framed(b"torn record")[:7])
    reopened = Spool(directory, fsync=False)
    assert read_all(reopened) == records(4, 2)


def test_position_order() -> None:
    assert Position(1, 500) < Position(2, 0) < Position(2, 1)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.integers(1, 12), st.integers(1, 90)),
        st.tuples(st.just("read"), st.integers(1, 9), st.integers(1, 400), st.booleans()),
        st.tuples(st.just("reopen")),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=operations, tail_bytes=st.sampled_from([0, 150, 1000, 8 << 20]))
def test_reading_from_the_tail_or_the_disk_gives_the_same_stream(
    ops: list[tuple], tail_bytes: int
) -> None:
    # The in-memory tail is a shortcut only: whatever the tail holds or has evicted, across
    # segment rotations, failed writes (read without advance) and restarts, the writer must
    # see every committed record once, in order, as a disk-only spool (tail 0) would.
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        spool = Spool(directory, segment_bytes=256, fsync=False, tail_bytes=tail_bytes)
        committed: list[bytes] = []
        written: list[bytes] = []
        number = 0
        for op in ops:
            if op[0] == "commit":
                batch = records(op[1], number, op[2])
                number += op[1]
                spool.append(batch)
                spool.commit()
                committed.extend(batch)
            elif op[0] == "read":
                batch = spool.read_batch(max_records=op[1], max_bytes=op[2])
                if batch is None:
                    assert written == committed
                    continue
                assert batch.records == committed[len(written) : len(written) + len(batch.records)]
                assert batch.size == sum(HEADER + len(r) for r in batch.records)
                if op[3]:
                    spool.advance(batch.end, batch.size)
                    written.extend(batch.records)
            else:
                spool.close()
                spool = Spool(directory, segment_bytes=256, fsync=False, tail_bytes=tail_bytes)
        written.extend(read_all(spool))
        assert written == committed
        assert spool.drained()
        spool.close()
