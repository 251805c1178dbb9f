"""Delivery tracking: acknowledge a message to the broker only when its work is durable.

Each received QoS 1 message may owe several things (spool lines, a dead letter); the PUBACK
goes out when the last one is done, as Telegraf's delivery tracking does.

Packet ids belong to an MQTT session. A redelivery after a reconnect with the session kept
reuses the id, so it simply adds obligations to the same entry and one PUBACK settles both
(storage is idempotent, so processing it twice is harmless). When the broker has lost the
session, ids start over: :meth:`AckTracker.new_session` moves to a new generation, so work
that finishes later can never acknowledge a different, newer message with a recycled id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Token = tuple[int, int, int]  # (generation, packet id, qos)


class AckTracker:
    def __init__(self, send_ack: Callable[[int, int], object]) -> None:
        self._send_ack = send_ack
        self._outstanding: dict[tuple[int, int], int] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def hold(self, mid: int, qos: int, parts: int) -> Token | None:
        """Register ``parts`` obligations; None when nothing needs acknowledging."""
        if qos == 0:
            return None
        with self._lock:
            key = (self._generation, mid)
            self._outstanding[key] = self._outstanding.get(key, 0) + parts
            token = (self._generation, mid, qos)
        if parts <= 0:
            self.release([token])
        return token

    def release(self, tokens: list[Token]) -> None:
        ready: list[tuple[int, int]] = []
        with self._lock:
            for generation, mid, qos in tokens:
                key = (generation, mid)
                left = self._outstanding.get(key)
                if left is None:
                    continue
                if left > 1:
                    self._outstanding[key] = left - 1
                    continue
                del self._outstanding[key]
                if generation == self._generation:
                    ready.append((mid, qos))
        for mid, qos in ready:
            self._send_ack(mid, qos)

    def new_session(self) -> None:
        with self._lock:
            self._generation += 1
            self._outstanding = {
                key: left for key, left in self._outstanding.items() if key[0] == self._generation
            }

    def pending(self) -> int:
        with self._lock:
            return len(self._outstanding)
