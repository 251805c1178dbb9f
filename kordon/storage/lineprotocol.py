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
    if "\n" in name or not name or name.startswith("#"):
        # A line that starts with '#' is a comment to InfluxDB.
        raise LineProtocolError(f"measurement {name!r} is empty, starts with #, or holds a newline")
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


# --- parsing ------------------------------------------------------------------------------
# Kordon's own SQLite store (the embedded demo) takes the same line protocol the collector
# sends InfluxDB, so the collector does not care which store is behind it.

FieldValue = float | int | bool | str

_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}


def _read_escaped(text: str, pos: int, stops: str) -> tuple[str, int]:
    """Read up to an unescaped character of ``stops``; return (unescaped text, stop index)."""
    out: list[str] = []
    end = len(text)
    while pos < end:
        char = text[pos]
        # Keys and tag values escape only commas, equals signs and spaces; any other
        # backslash is literal, as InfluxDB reads it.
        if char == "\\" and pos + 1 < end and text[pos + 1] in ",= ":
            out.append(text[pos + 1])
            pos += 2
            continue
        if char in stops:
            break
        out.append(char)
        pos += 1
    return "".join(out), pos


def _parse_field_value(text: str, pos: int) -> tuple[FieldValue, int]:
    if pos >= len(text):
        raise LineProtocolError("a field has no value")
    if text[pos] == '"':
        out: list[str] = []
        pos += 1
        while pos < len(text):
            char = text[pos]
            if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\':
                out.append(text[pos + 1])
                pos += 2
                continue
            if char == '"':
                return "".join(out), pos + 1
            out.append(char)
            pos += 1
        raise LineProtocolError("unterminated string field value")
    end = pos
    while end < len(text) and text[end] not in ", \n":
        end += 1
    raw = text[pos:end]
    if raw in _TRUE:
        return True, end
    if raw in _FALSE:
        return False, end
    try:
        if raw.endswith("i"):
            return int(raw[:-1]), end
        value = float(raw)
    except ValueError:
        raise LineProtocolError(f"bad field value {raw!r}") from None
    if not math.isfinite(value):
        raise LineProtocolError(f"bad field value {raw!r}")
    return value, end


def parse_lines(
    body: str,
) -> list[tuple[str, dict[str, str], dict[str, FieldValue], int | None]]:
    """Parse newline-separated line protocol into (measurement, tags, fields, ts_ns)."""
    points = []
    pos, end = 0, len(body)
    while pos < end:
        if body[pos] in "\n\r ":
            pos += 1
            continue
        if body[pos] == "#":
            nl = body.find("\n", pos)
            pos = end if nl < 0 else nl + 1
            continue
        measurement, pos = _read_escaped(body, pos, ", \n")
        tags: dict[str, str] = {}
        while pos < end and body[pos] == ",":
            key, pos = _read_escaped(body, pos + 1, "=, \n")
            if pos >= end or body[pos] != "=":
                raise LineProtocolError(f"tag {key!r} has no value")
            value, pos = _read_escaped(body, pos + 1, ", \n")
            tags[key] = value
        if pos >= end or body[pos] != " ":
            raise LineProtocolError(f"measurement {measurement!r} has no fields")
        fields: dict[str, FieldValue] = {}
        pos += 1
        while True:
            key, pos = _read_escaped(body, pos, "=, \n")
            if pos >= end or body[pos] != "=":
                raise LineProtocolError(f"field {key!r} has no value")
            fields[key], pos = _parse_field_value(body, pos + 1)
            if pos < end and body[pos] == ",":
                pos += 1
                continue
            break
        ts: int | None = None
        if pos < end and body[pos] == " ":
            nl = body.find("\n", pos)
            raw = body[pos + 1 : end if nl < 0 else nl].strip()
            if raw:
                try:
                    ts = int(raw)
                except ValueError:
                    raise LineProtocolError(f"bad timestamp {raw!r}") from None
            pos = end if nl < 0 else nl
        if not measurement or not fields:
            raise LineProtocolError("a line needs a measurement and at least one field")
        points.append((measurement, tags, fields, ts))
        if pos < end and body[pos] not in "\n":
            raise LineProtocolError(f"unexpected {body[pos]!r} after the fields")
    return points
