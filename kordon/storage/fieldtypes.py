"""Field types as the stores hold them, and the rule that keeps every value storable.

InfluxDB fixes a field's type (float, integer, string, boolean) at its first write to a
measurement and refuses every later point that sends another type for it, the whole point.
Kordon types its own metrics (:mod:`kordon.model.metrics`), but not the ones devices and
bridges add (a NUT unit's ``input.source`` is ``2.00`` on one driver, ``normal`` on another).

The rule, for every field:

- **The type the database holds wins.** The first type written for a name in a measurement
  is its type, for every writer, for good.
- **A value of another type is stored under a derived name**: the name plus the suffix of the
  value's own type, :data:`SUFFIXES` (``.text`` for a string, ``.num`` for a float, ``.int``
  for an integer, ``.bool`` for a boolean). ``input.source`` held as a float and a unit that
  says ``normal`` gives ``input.source.text = "normal"``; held as a string, a unit that says
  ``2.00`` gives ``input.source.num = 2.0``. The suffix ``.text`` is the one the NUT bridge
  already uses for the contract's floats (``battery.runtime.text = "64:41"``).
- The derived name follows the same rule (in the unlikely case it is held with yet another
  type, its own suffix is added again).

Both stores refuse a conflicting point the same way, with InfluxDB's message
(:func:`conflict_message`, read back by :func:`parse_conflict`), and report the types they
hold with the same names (:data:`FLOAT` ...), so the collector treats them alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FLOAT = "float"
INTEGER = "integer"
STRING = "string"
BOOLEAN = "boolean"
FIELD_TYPES = (FLOAT, INTEGER, STRING, BOOLEAN)

# type(value) -> the store's type name; bool before int matters nowhere: type() is exact.
TYPE_NAMES: dict[type, str] = {float: FLOAT, int: INTEGER, str: STRING, bool: BOOLEAN}
PYTHON_TYPES: dict[str, type] = {name: kind for kind, name in TYPE_NAMES.items()}
SUFFIXES: dict[str, str] = {STRING: ".text", FLOAT: ".num", INTEGER: ".int", BOOLEAN: ".bool"}

CONFLICT = "field type conflict"
_CONFLICT = re.compile(
    r'input field "(?P<field>(?:[^"\\]|\\.)*)" on measurement "(?P<measurement>(?:[^"\\]|\\.)*)"'
    r" is type (?P<got>\w+), already exists as type (?P<held>\w+)"
)


def type_name(value: object) -> str:
    """The store's type for ``value`` (a float, int, str or bool)."""
    return TYPE_NAMES[type(value)]


def derived_name(name: str, value_type: str) -> str:
    """Where a ``value_type`` value of field ``name`` goes when ``name`` holds another type."""
    return name + SUFFIXES[value_type]


@dataclass(frozen=True, slots=True)
class FieldConflict:
    measurement: str
    field: str
    got: str  # the type of the refused value
    held: str  # the type the store holds


def conflict_message(conflict: FieldConflict, dropped: int) -> str:
    """InfluxDB 1.x's answer to a write that holds points of a conflicting type (HTTP 400);
    the other points of the write are stored."""
    return (
        f'partial write: {CONFLICT}: input field "{conflict.field}" on measurement '
        f'"{conflict.measurement}" is type {conflict.got}, already exists as type '
        f"{conflict.held} dropped={dropped}"
    )


def is_conflict(message: str) -> bool:
    return CONFLICT in message


def parse_conflict(message: str) -> FieldConflict | None:
    """The conflict a store named, or ``None`` when it named none (InfluxDB answers a bare
    ``field type conflict`` when a write's own points disagree about a new field)."""
    found = _CONFLICT.search(message)
    if found is None or found["held"] not in SUFFIXES or found["got"] not in SUFFIXES:
        return None
    unescape = re.compile(r"\\(.)")
    return FieldConflict(
        unescape.sub(r"\1", found["measurement"]),
        unescape.sub(r"\1", found["field"]),
        found["got"],
        found["held"],
    )
