"""A UPS's reading stream cut into discharges: on battery until mains, output off, or silence.

The stream may arrive out of order, with duplicates (at-least-once delivery), with gaps (lost
messages, a network cut) and with fields missing; the cut must not depend on any of that
beyond what the data says. Readings are put in time order first (duplicates of one timestamp
resolved by content, so arrival order never matters), then:

* an ``OB`` reading opens a discharge (or continues the open one);
* an ``OL`` reading closes it: ``mains``;
* an ``OB ... OFF`` reading closes it: ``off`` (the output stopped on battery: the battery ran
  flat, or a shutdown was commanded; the learner tells them apart by the voltage knee);
* silence longer than ``max_gap`` closes it at the last reading: ``dark`` (the card died with
  the battery, or the network went; again the learner decides what it proves);
* the end of the stream leaves it ``open``.

A reading without ``ups.status`` neither opens nor closes a discharge; inside one, its
numbers are used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from alerts.battery.readings import Reading, plausible_time

DEFAULT_MAX_GAP_S = 120.0


@dataclass(frozen=True, slots=True)
class Discharge:
    """One stretch on battery. ``before`` is the last reading before it (``OL``), when the
    stream has one within ``max_gap``: it says whether the battery started full and where the
    discharge began."""

    readings: tuple[Reading, ...]
    end_reason: str  # mains | off | dark | open
    before: Reading | None = None
    after: Reading | None = None  # the reading that closed it (OL), if any

    @property
    def start(self) -> float:
        return self.before.time if self.before is not None else self.readings[0].time

    @property
    def end(self) -> float:
        return self.readings[-1].time

    @property
    def started_full(self) -> bool:
        """On line, not charging: the charger had finished, the battery was full."""
        b = self.before
        if b is None or not b.on_line or "CHRG" in b.flags:
            return False
        return b.charge is None or b.charge >= 95.0

    @property
    def low_battery(self) -> bool:
        return any(r.low_battery for r in self.readings)


def ordered(readings: Iterable[Reading]) -> list[Reading]:
    """Time order, one reading per timestamp (the greatest by content: order-independent).
    Readings at an implausible time (NaN, infinite, negative, ms clocks) are dropped."""
    by_key = sorted((r for r in readings if plausible_time(r.time)), key=Reading.sort_key)
    out: list[Reading] = []
    for r in by_key:
        if out and out[-1].time == r.time:
            out[-1] = r
        else:
            out.append(r)
    return out


def segment(readings: Iterable[Reading], max_gap: float = DEFAULT_MAX_GAP_S) -> list[Discharge]:
    stream = ordered(readings)
    discharges: list[Discharge] = []
    current: list[Reading] = []
    before: Reading | None = None
    last: Reading | None = None

    def close(reason: str, after: Reading | None = None) -> None:
        nonlocal current
        if any(r.on_battery for r in current):
            discharges.append(Discharge(tuple(current), reason, before, after))
        current = []

    for r in stream:
        gap = last is not None and r.time - last.time > max_gap
        if current and gap:
            close("dark")
        if r.on_battery:
            if not current and r.output_off:
                last = r  # output already off: nothing was discharged in this reading
                continue
            if not current:
                before = last if (last is not None and not gap and last.on_line) else None
            current.append(r)
            if r.output_off:
                close("off")
        elif r.on_line:
            if current:
                close("mains", r)
        elif current:
            current.append(r)  # no status word: keep its numbers
        last = r
    if current:
        close("open")
    return discharges
