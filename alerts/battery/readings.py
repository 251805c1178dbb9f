"""One UPS reading as the battery model needs it: NUT names, missing fields allowed.

Readings come from live telemetry, from InfluxDB history or from a recording; any metric may be
absent (a NUT bridge for a unit that does not report ``ups.realpower``), not a number (a word
from odd firmware) or not finite, so every field is optional and a bad value becomes ``None``
rather than an error: one odd reading must not cost a whole discharge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kordon.model.nut import figure

# NUT's "unknown" on some units (see the NUT devices dumps library).
_UNKNOWN = 65535.0
# A stream time at or beyond this (the year 5138) is no epoch second: a clock in ms, garbage.
MAX_TIME_S = 1e11


def plausible_time(time: float) -> bool:
    """Whether ``time`` can be a reading's epoch seconds: finite, 0 <= time < ``MAX_TIME_S``.
    Readings at any other time are dropped (NaN would not even sort)."""
    return 0.0 <= time < MAX_TIME_S  # False for NaN


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number other than NUT's "unknown"; else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number == _UNKNOWN:
        return None
    return number


def parse_flags(status: Any) -> frozenset[str]:
    """``ups.status`` words (``"OB DISCHRG LB"``) as a set; anything else as no flags."""
    if not isinstance(status, str):
        return frozenset()
    return frozenset(word for word in status.upper().split() if word)


@dataclass(frozen=True, slots=True)
class Reading:
    """A UPS reading at ``time`` (epoch seconds of the stream, never the wall clock)."""

    time: float
    flags: frozenset[str] = frozenset()
    charge: float | None = None  # battery.charge, % (the UPS's own count)
    runtime: float | None = None  # battery.runtime, s (the UPS's own estimate)
    voltage: float | None = None  # battery.voltage, V
    load: float | None = None  # ups.load, % of rated
    realpower: float | None = None  # ups.realpower, W
    temperature: float | None = None  # ups.temperature, °C

    @classmethod
    def from_metrics(cls, time: float, metrics: Mapping[str, Any]) -> Reading:
        # figure() refuses what finite_number() does for these six documented NUT numbers
        # (not finite, 65535; tests/bridges/test_nut_model.py), and runs on every UPS reading.
        get = metrics.get
        return cls(
            time=float(time),
            flags=parse_flags(get("ups.status")),
            charge=figure("battery.charge", get("battery.charge")),
            runtime=figure("battery.runtime", get("battery.runtime")),
            voltage=figure("battery.voltage", get("battery.voltage")),
            load=figure("ups.load", get("ups.load")),
            realpower=figure("ups.realpower", get("ups.realpower")),
            temperature=figure("ups.temperature", get("ups.temperature")),
        )

    @property
    def on_battery(self) -> bool:
        return "OB" in self.flags

    @property
    def on_line(self) -> bool:
        return "OL" in self.flags and "OB" not in self.flags

    @property
    def low_battery(self) -> bool:
        return "LB" in self.flags

    @property
    def output_off(self) -> bool:
        return "OFF" in self.flags

    def sort_key(self) -> tuple[Any, ...]:
        """A total order on content, so duplicates of one timestamp resolve the same way
        whatever order they arrived in."""

        def opt(value: float | None) -> tuple[int, float]:
            return (0, 0.0) if value is None else (1, value)

        return (
            self.time,
            tuple(sorted(self.flags)),
            opt(self.charge),
            opt(self.runtime),
            opt(self.voltage),
            opt(self.load),
            opt(self.realpower),
            opt(self.temperature),
        )
