"""What a chaos run found: one report for :mod:`testkit.chaos.scenario` and
:mod:`testkit.chaos.allinone` (the CI tests assert its fields, ``bench/chaos.py`` prints it).

Three parts, each filled by the run: the readings the broker acknowledged and how they ended
up in InfluxDB, the pages the receiver got against those expected, and what is left once the
run is over (spools, outboxes, processes). A field a run does not count is ``None``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

CollectorMode = Literal["shared", "mirrored"]
COLLECTOR_MODES: dict[str, str] = {
    "mirrored": "a mirrored pair (MQTT 3.1.1, each its own client id and the whole stream)",
    "shared": "one MQTT 5 shared group (each a round-robin share)",
}
# Mirrored: each collector received at least this share of what the broker acknowledged (its
# messages also carry the incident devices and statuses, so the whole stream is above 1).
WHOLE_STREAM = 0.95


@dataclass(frozen=True)
class Stored:
    """How the acknowledged (device, seq) readings of a site ended up in InfluxDB."""

    acked: int
    stored: int
    missing: int
    duplicates: int
    lost: frozenset[tuple[str, int]] = frozenset()  # the missing (device, seq) themselves


@dataclass
class Report:
    title: str = "chaos run"
    # None: one collector; else the pair's mode (testkit.chaos.allinone).
    collectors: CollectorMode | None = None
    log: Callable[[str], None] = field(default=print, repr=False, compare=False)
    started: float = field(default_factory=time.monotonic, repr=False, compare=False)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # The readings.
    acked: int = 0
    stored: int = 0
    missing: int = 0
    duplicates: int = 0
    # Of the missing, those published from the Mosquitto restart until both collectors were
    # ready again: a shared group has no subscription then (testkit.chaos.allinone); a
    # mirrored pair's plain subscriptions persist, so it must be 0 there too.
    missing_in_restart_window: int = 0
    restart_window: float = 0.0  # seconds
    shares: list[int] = field(default_factory=list)  # messages per collector, last lives
    received: list[int] = field(default_factory=list)  # messages per collector, all lives

    # The pages: each expected one is "<alert> firing" or "<alert> resolved".
    expected_pages: list[str] = field(default_factory=list)
    pages_lost: list[str] = field(default_factory=list)
    pages_duplicated: int = 0  # pages the on-call got twice
    # Alertmanager's own conflicting notifications across its cluster (not counted above):
    # testkit.alertmanager.conflicting. None where no cluster ran.
    conflicting: int | None = None
    reopened: list[str] = field(default_factory=list)  # alerts a sender re-opened in AM
    repeated: list[str] = field(default_factory=list)  # each duplicated page, with its count
    # Repeats a receiver drops by their Idempotency-Key (the engine's own webhook).
    repeats_same_key: int | None = None
    unexpected_pages: list[str] | None = None  # pages of any other alert
    notifications: list[str] = field(default_factory=list)  # every request, as received

    # What is left.
    outbox_pending: int = -1
    spool_backlog: float = -1
    leftover: list[str] = field(default_factory=list)

    def event(self, text: str) -> None:
        """Note ``text`` at the run's time (seconds since the report was made) and log it."""
        self.events.append(f"t={time.monotonic() - self.started:5.1f}s {text}")
        self.log(self.events[-1])

    def count_stored(self, found: Stored) -> None:
        self.acked, self.stored = found.acked, found.stored
        self.missing, self.duplicates = found.missing, found.duplicates

    def finish(self) -> None:
        self.seconds = time.monotonic() - self.started

    @property
    def whole_stream(self) -> bool:
        """Mirrored: whether each collector received (almost) the whole stream."""
        return bool(self.received) and all(
            count >= WHOLE_STREAM * self.acked for count in self.received
        )

    @property
    def ok(self) -> bool:
        if self.collectors == "shared":
            readings_ok = self.missing == self.missing_in_restart_window
        else:
            readings_ok = not self.missing
        if self.collectors == "mirrored":
            readings_ok = readings_ok and self.whole_stream
        return (
            self.acked > 0
            and readings_ok
            and not self.duplicates
            and bool(self.expected_pages)
            and not self.pages_lost
            and not self.pages_duplicated
            and not self.reopened
            and not self.unexpected_pages
            and self.outbox_pending == 0
            and self.spool_backlog == 0
            and not self.leftover
        )

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "FAIL"
        if self.missing:  # shared mode only: otherwise none may be lost
            return (f"PASS but for the broker restart: {self.missing} acknowledged readings "
                    "lost while the shared group had no subscription")
        return "PASS"

    def text(self) -> str:
        mode = f", collectors: {COLLECTOR_MODES[self.collectors]}" if self.collectors else ""
        lines = [f"{self.title} of {self.seconds:.0f} s{mode}:"]
        lines += [f"  {event}" for event in self.events]
        lines += [f"  page {page}" for page in self.notifications]
        lines += [
            f"  readings acknowledged by the broker: {self.acked}; in InfluxDB: {self.stored}",
            f"  acknowledged readings lost: {self.missing}; stored twice: {self.duplicates}",
        ]
        if self.collectors is not None:
            if self.collectors == "shared":
                restart_note = " (Mosquitto 2.0.11 does not persist shared subscriptions)"
                whole_note = ""
            else:
                restart_note = " (plain subscriptions, persisted by Mosquitto)"
                whole_note = (f" (each at least {WHOLE_STREAM:.0%} of the {self.acked} "
                              "acknowledged readings: "
                              f"{'yes' if self.whole_stream else 'NO'})")
            lines += [
                f"    of the lost, published in the {self.restart_window:.1f} s from the "
                f"Mosquitto restart until both collectors were ready again{restart_note}: "
                f"{self.missing_in_restart_window}; at any other time: "
                f"{self.missing - self.missing_in_restart_window}",
                f"  messages per collector, last lives: {self.shares}; all lives: "
                f"{self.received}{whole_note}",
            ]
        same_key = ("" if self.repeats_same_key is None else
                    f"; repeats with the same idempotency key: {self.repeats_same_key}")
        unexpected = ("not counted" if self.unexpected_pages is None
                      else self.unexpected_pages or "none")
        lines += [
            f"  pages expected: {len(self.expected_pages)}; lost: {len(self.pages_lost)}"
            f"{f' {self.pages_lost}' if self.pages_lost else ''}; duplicated: "
            f"{self.pages_duplicated}{f' {self.repeated}' if self.repeated else ''}{same_key}",
            f"  notifications: {len(self.notifications)}; unexpected pages: {unexpected}",
        ]
        if self.conflicting is not None:
            lines += [
                f"  re-opened in Alertmanager by an engine: {self.reopened or 'none'}; "
                f"Alertmanager's own conflicting notifications (a follower's held flush sent "
                f"after its leader's newer one, prometheus/alertmanager#2447): "
                f"{self.conflicting}",
            ]
        lines += [
            f"  spool backlog bytes: {self.spool_backlog:.0f}; outbox pending: "
            f"{self.outbox_pending}; processes left: {self.leftover or 'none'}",
            f"  verdict: {self.verdict}",
        ]
        return "\n".join(lines)
