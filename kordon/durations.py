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


def approx_duration(seconds: float) -> str:
    """A duration as a person says it, approximation included: ``under a minute``,
    ``about 1 minute``, ``about 8 minutes``, ``about 2 h 10 min``, ``about 3 days``.

    It carries its own "about" (or "under"), so texts write ``will be empty in {...}`` or
    ``{...} left`` and never "about under a minute".
    """
    seconds = max(0.0, float(seconds))
    if seconds < 60.0:
        return "under a minute"
    minutes = round(seconds / 60.0)
    if minutes < 120:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    if seconds < 2 * 86400.0:
        hours, rest = divmod(minutes, 60)
        return f"about {hours} h {rest} min" if rest else f"about {hours} h"
    days = round(seconds / 86400.0)
    return f"about {days} days"


def time_left(seconds: float) -> str:
    """``under a minute left``, ``about 8 minutes left``."""
    return f"{approx_duration(seconds)} left"


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds, written in files as ``90s``, ``10m`` or a plain number."""
