"""Recorded streams: JSON lines written by ``--record`` and read back by ``kordon replay``.

One line per event::

    {"t":1734156001.226,"topic":"kordon/v1/...","payload":"{\"ts\":..."}

``qos`` (default 1) and ``retain`` (default false) appear when they differ from the default.
``payload`` holds the exact bytes as a JSON string when they are UTF-8, otherwise
``payload_b64``; connection events carry ``"action"`` (``will``, ``connect``, ``crash``...)
and publishes leave it out. Replay also reads a capture taken from real devices with
``mosquitto_sub -v -t 'kordon/v1/#'`` (``topic payload`` per line), taking the time of each
line from the payload's ``ts`` where there is one.
"""

from __future__ import annotations

import base64
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from simulators.events import Action, SimEvent


def encode_line(event: SimEvent) -> bytes:
    record: dict[str, object] = {"t": event.time, "topic": event.topic}
    if event.qos != 1:
        record["qos"] = event.qos
    if event.retain:
        record["retain"] = True
    if event.action is not Action.PUBLISH:
        record["action"] = event.action.value
        record["client_id"] = event.client_id
    try:
        record["payload"] = event.payload.decode()
    except UnicodeDecodeError:
        record["payload_b64"] = base64.b64encode(event.payload).decode()
    return orjson.dumps(record) + b"\n"


# bytes that may go into a JSON string as they are (no quote: that one is escaped in bulk)
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')
_FAST_LINE = '{"t":%r,"topic":"%s","payload":"%s"}\n'


class Recorder:
    """Write events to a JSON-lines file, tick by tick.

    Most ticks hold only telemetry publishes with plain-ASCII payloads, where escaping means
    putting a backslash before each quote. Those ticks are escaped and formatted in bulk, which
    is most of the recorder's speed; any other tick goes line by line through orjson.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.lines = 0
        # The file writes run on a thread: they release the GIL, so disk time overlaps with
        # the simulation instead of adding to it. The queue is bounded to keep memory flat.
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._drain, name="recorder", daemon=True)
        self._writer.start()

    def _drain(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    self.stream.write(chunk)
                except BaseException as exc:  # reported on the simulation's thread
                    self._error = exc

    def _put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._chunks.put(chunk)

    def write_chunk(self, chunk: bytes) -> None:
        """Lines already encoded (see ``ScenarioRun.record_chunks``)."""
        self._put(chunk)
        self.lines += chunk.count(b"\n")

    def close(self) -> None:
        """Wait for every chunk to reach the stream (the caller closes the stream)."""
        if self._writer.is_alive():
            self._chunks.put(None)
            self._writer.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def write(self, events: list[SimEvent]) -> None:
        if not events:
            return
        plain = all(e.action is Action.PUBLISH and not e.retain and e.qos == 1 for e in events)
        if plain:
            blob = b"\x00".join([e.payload for e in events])
            if len(blob.translate(None, _PLAIN).replace(b'"', b"")) == len(events) - 1:
                escaped = blob.decode("ascii").replace('"', '\\"').split("\x00")
                text = "".join(
                    [
                        _FAST_LINE % (e.time, e.topic, p)
                        for e, p in zip(events, escaped, strict=True)
                    ]
                )
                self._put(text.encode())
                self.lines += len(events)
                return
        self._put(b"".join([encode_line(e) for e in events]))
        self.lines += len(events)


@dataclass(frozen=True, slots=True)
class ReplayItem:
    time: float | None  # None: no timestamp known (sent right after the one before)
    topic: str
    payload: bytes
    retain: bool
    qos: int
    action: Action


class ReplayFormatError(ValueError):
    pass


def read_stream(path: str | Path) -> Iterator[ReplayItem]:
    """Items of a recorded file or a ``mosquitto_sub -v`` capture, in file order."""
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            if line.startswith(b"{"):
                yield _recorded(line, path, number)
            else:
                yield _captured(line, path, number)


def _recorded(line: bytes, path: str | Path, number: int) -> ReplayItem:
    try:
        record = orjson.loads(line)
        if "payload_b64" in record:
            payload = base64.b64decode(record["payload_b64"])
        else:
            payload = record.get("payload", "").encode()
        return ReplayItem(
            time=float(record["t"]),
            topic=str(record["topic"]),
            payload=payload,
            retain=bool(record.get("retain", False)),
            qos=int(record.get("qos", 1)),
            action=Action(record.get("action", "publish")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ReplayFormatError(f"{path}:{number}: not a recorded event: {exc}") from None


def _captured(line: bytes, path: str | Path, number: int) -> ReplayItem:
    topic, sep, payload = line.partition(b" ")
    if not sep or not topic.startswith(b"kordon/"):
        raise ReplayFormatError(
            f"{path}:{number}: expected 'topic payload' as printed by mosquitto_sub -v"
        )
    name = topic.decode("utf-8", "replace")
    return ReplayItem(
        time=_payload_time(payload),
        topic=name,
        payload=payload,
        retain=name.endswith("/status"),  # the contract: status is retained
        qos=1,
        action=Action.PUBLISH,
    )


def _payload_time(payload: bytes) -> float | None:
    if not payload.startswith((b"{", b"[")):
        return None
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    first = document[0] if isinstance(document, list) and document else document
    ts = first.get("ts") if isinstance(first, dict) else None
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(ts).timestamp()
        except ValueError:
            return None
    return None
