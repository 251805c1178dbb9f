"""InfluxDB line protocol encoding with full escaping.

Rules (InfluxDB line protocol reference): measurement names escape commas and spaces; tag
keys, tag values and field keys escape commas, equals signs and spaces; string field values
escape double quotes and backslashes and are otherwise kept byte for byte, newlines included.
Floats use Python's shortest round-trip repr, integers the ``i`` suffix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})


class LineProtocolError(ValueError):
    pass


def escape_measurement(name: str) -> str:
    if "\n" in name or not name:
        raise LineProtocolError(f"measurement {name!r} is empty or holds a newline")
    return name.translate(_MEASUREMENT)


def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key."""
    if "\n" in key:
        raise LineProtocolError(f"tag or field key {key!r} holds a newline")
    if key.endswith("\\"):
        # A trailing backslash would escape the separator that follows it.
        raise LineProtocolError(f"tag or field key {key!r} ends with a backslash")
    return key.translate(_KEY)


def escape_string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_field_value(value: float | int | bool | str) -> str:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise LineProtocolError("InfluxDB cannot store NaN or infinity")
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return f"{value}i"
    if kind is str:
        return escape_string_field(value)  # type: ignore[arg-type]
    raise LineProtocolError(f"unsupported field value type {kind.__name__}")


def encode_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, float | int | bool | str],
    ts_ns: int | None = None,
) -> str:
    """One line, without the trailing newline. Tags are sorted, as InfluxDB prefers."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value == "":
            continue  # InfluxDB drops empty tags anyway; an empty one would be a syntax error
        parts.append(f",{escape_key(key)}={escape_key(value)}")
    parts.append(" ")
    parts.append(
        ",".join(f"{escape_key(key)}={format_field_value(val)}" for key, val in fields.items())
    )
    if ts_ns is not None:
        parts.append(f" {ts_ns}")
    return "".join(parts)
