"""Durations written with units (``90s``, ``10m``, ``3h``, ``1h30m``, ``250ms``).

Configuration, fleet and scenario files all use this one syntax, so operators learn it once.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: str | int | float) -> float:
    """Return seconds. Plain numbers are seconds; strings need a unit on every part."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string such as '90s'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration; write e.g. '30s', '10m' or '3h'")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(
            f"invalid duration {value!r}; write a number with a unit (ms, s, m, h, d), "
            "e.g. '90s', '10m', '1h30m'"
        )
    return total


def format_duration(seconds: float) -> str:
    """Short human form, e.g. ``1h05m`` or ``42s``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds, written in files as ``90s``, ``10m`` or a plain number."""
