"""Turns one MQTT message into spool records and dead letters. Pure logic, no I/O.

Runs on the MQTT network thread for every message, so the common path avoids allocations
it does not need: the line prefix (measurement and tags) is cached per topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collector import deadletter, records
from collector.fieldtypes import FieldTypes
from collector.guard import CardinalityGuard
from collector.lines import decode_telemetry_lines
from collector.stats import CollectorStats
from kordon.model.payload import DecodeError, DecodeLimits
from kordon.model.topics import Channel, TopicError, TopicRef, parse_topic
from kordon.storage.lineprotocol import escape_key
from kordon.storage.telemetry import STATUS_MEASUREMENT

_PREFIX_CACHE_LIMIT = 200_000


@dataclass(slots=True)
class IngestResult:
    records: list[bytes] = field(default_factory=list)  # spool records, see collector.records
    deadletter: bytes | None = None


class Ingest:
    def __init__(
        self,
        stats: CollectorStats,
        limits: DecodeLimits,
        deadletter_payload_bytes: int = 4096,
        source: str = "collector",
        guard: CardinalityGuard | None = None,
        types: FieldTypes | None = None,
    ) -> None:
        self.stats = stats
        self.types = types if types is not None else FieldTypes(stats)
        self.limits = limits
        self.deadletter_payload_bytes = deadletter_payload_bytes
        self.source = source
        self.guard = guard
        self._refs: dict[str, tuple[TopicRef, str]] = {}
        self._last_seq: dict[tuple[str, str, str], int] = {}

    def handle(self, topic: str, payload: bytes, now: float) -> IngestResult:
        self.stats.messages_received += 1
        cached = self._refs.get(topic)
        if cached is None:
            try:
                ref = parse_topic(topic)
            except TopicError as exc:
                return self._reject(topic, payload, deadletter.TOPIC, [str(exc)], now)
            if self.guard is not None:
                # Checked once per topic: admitted topics are cached below, refused ones not.
                key = (ref.site, ref.kind.value, ref.device)
                refused = self.guard.check(key, now)
                if refused is not None:
                    return self._reject(
                        topic, payload, refused, [self.guard.explain(refused, key)], now
                    )
            prefix = (
                f"{ref.kind.value},device={escape_key(ref.device)},site={escape_key(ref.site)} "
            )
            if len(self._refs) >= _PREFIX_CACHE_LIMIT:
                self._refs.clear()
            self._refs[topic] = cached = (ref, prefix)
        ref, prefix = cached
        if ref.channel is Channel.STATUS:
            return self._status(ref, topic, payload, now)
        decoded = decode_telemetry_lines(
            payload, ref.kind, now, prefix, self.limits, self.types
        )
        result = IngestResult()
        if decoded.lines:
            self.stats.readings_accepted += len(decoded.lines)
            result.records = records.pack(decoded.lines)
            self._track_seq(ref, decoded.seqs)
        if decoded.errors:
            code = decoded.errors[0].code
            result.deadletter = self._reject(topic, payload, code, decoded.errors, now).deadletter
        return result

    def _status(self, ref: TopicRef, topic: str, payload: bytes, now: float) -> IngestResult:
        state = payload.strip().decode("utf-8", errors="replace")
        if state not in ("online", "offline"):
            return self._reject(
                topic,
                payload,
                deadletter.STATUS,
                [f"status must be 'online' or 'offline', got {state!r}"],
                now,
            )
        self.stats.status_received += 1
        line = (
            f"{STATUS_MEASUREMENT},device={escape_key(ref.device)},kind={ref.kind.value},"
            f'site={escape_key(ref.site)} state="{state}",online={str(state == "online").lower()}'
            f" {int(now * 1_000_000) * 1000}"
        )
        return IngestResult(records=records.pack([line.encode()]))

    def _track_seq(self, ref: TopicRef, seqs: list[int | None]) -> None:
        key = (ref.site, ref.kind.value, ref.device)
        last = self._last_seq.get(key)
        for seq in seqs:
            if seq is None:
                continue
            if last is not None:
                if seq > last + 1:
                    self.stats.seq_gaps[key] = self.stats.seq_gaps.get(key, 0) + (seq - last - 1)
                elif seq == 0 and last > 0:
                    self.stats.seq_restarts += 1
                elif seq <= last:
                    continue  # a redelivery or reordering: not a gap, keep the high mark
            last = seq
        if last is not None:
            self._last_seq[key] = last

    def _reject(
        self,
        topic: str,
        payload: bytes,
        code: str,
        errors: Sequence[str | DecodeError],
        now: float,
    ) -> IngestResult:
        self.stats.count_deadletter(code)
        return IngestResult(
            deadletter=deadletter.encode(
                topic, payload, code, errors, now, self.source, self.deadletter_payload_bytes
            )
        )
