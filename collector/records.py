"""How line protocol is grouped into spool records.

All lines of one MQTT message go into one record, so the spool's per-record cost is paid
once per message, not once per reading. Lines are joined with newlines, which is also the
InfluxDB request format. A string field may itself hold a newline, though, and such a line
cannot be told apart from two lines once joined: it gets a record of its own, marked raw, so
the writer never splits it when it isolates a line that InfluxDB rejected.
"""

from __future__ import annotations

LINES = b"L"  # one or more lines joined by "\n"; no line holds a newline
RAW = b"R"  # exactly one line, which may hold newlines inside string fields


def pack(lines: list[bytes]) -> list[bytes]:
    plain = [line for line in lines if b"\n" not in line]
    records = [LINES + b"\n".join(plain)] if plain else []
    if len(plain) != len(lines):
        records.extend(RAW + line for line in lines if b"\n" in line)
    return records


def body(record: bytes) -> bytes:
    return record[1:]


def line_count(record: bytes) -> int:
    if record[:1] == RAW:
        return 1
    return record.count(b"\n") + 1


def split(record: bytes) -> list[bytes]:
    """One record per line (a raw record is already one line)."""
    if record[:1] == RAW:
        return [record]
    return [LINES + line for line in record[1:].split(b"\n")]
