"""The collector's table of field types: which type each field of each measurement holds.

It applies the rule of :mod:`kordon.storage.fieldtypes` (the type the database holds wins; a
value of another type goes to ``<name>.text`` / ``.num`` / ``.int`` / ``.bool``) to the
metrics Kordon does not type itself, before a line reaches the spool, so that the database
never has to refuse one. Where a type comes from, strongest first:

1. the database: every field type of the device measurements is read at start
   (:meth:`FieldTypes.load`, ``SHOW FIELD KEYS`` or the SQLite store's ``fields`` table), and a
   write the database refuses for a conflict (another collector wrote the field first)
   teaches the type it holds (:meth:`FieldTypes.learn`; the writer then rewrites the line);
2. for ``ups``, NUT's documentation (:mod:`kordon.model.nut`): a documented number is a float,
   a documented word, identity or flag list a string, whichever driver reports first;
3. the first value this collector sees for the name.

The table is read on the MQTT thread for every field of every message (one dict lookup), and
written rarely under a lock: a name never seen, a conflict, a load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from collector.stats import CollectorStats
from kordon.model.kinds import DeviceKind
from kordon.model.nut import NutType, nut_type
from kordon.model.payload import DecodeErrorCode, InvalidTelemetry
from kordon.storage.fieldtypes import (
    PYTHON_TYPES,
    SUFFIXES,
    TYPE_NAMES,
    derived_name,
)
from kordon.storage.telemetry import STATUS_MEASUREMENT, TelemetryStore

log = logging.getLogger(__name__)

# What the collector writes: the device kinds and availability changes.
MEASUREMENTS = (*(kind.value for kind in DeviceKind), STATUS_MEASUREMENT)
_MAX_DERIVATIONS = 4  # x -> x.text -> x.text.num ...: only a hostile writer goes deeper


class FieldTypes:
    def __init__(self, stats: CollectorStats | None = None) -> None:
        self.stats = stats if stats is not None else CollectorStats()
        # measurement -> field -> Python type of the values it holds (float, int, str, bool)
        self.tables: dict[str, dict[str, type]] = {m: {} for m in MEASUREMENTS}
        self.loaded = False
        self._lock = threading.Lock()
        self._told: set[tuple[str, str, type]] = set()

    def table(self, measurement: str) -> dict[str, type]:
        table = self.tables.get(measurement)
        if table is None:
            with self._lock:
                table = self.tables.setdefault(measurement, {})
        return table

    # --- from the database ------------------------------------------------------------------
    def load(self, store: TelemetryStore, measurements: Iterable[str] = MEASUREMENTS) -> None:
        """Read the types the database holds (it wins over anything seen or seeded).

        Raises the store's :class:`~kordon.storage.telemetry.StoreError`."""
        found = {measurement: store.field_types(measurement) for measurement in measurements}
        with self._lock:
            for measurement, types in found.items():
                table = self.tables.setdefault(measurement, {})
                for name, type_name in types.items():
                    kind = PYTHON_TYPES.get(type_name)
                    if kind is not None:
                        table[name] = kind
            self.loaded = True
        log.info(
            "field types read from the store: %s",
            ", ".join(f"{m} {len(types)}" for m, types in found.items()),
        )

    def learn(self, measurement: str, name: str, type_name: str) -> None:
        """The database holds ``name`` as ``type_name`` (it said so refusing a write)."""
        kind = PYTHON_TYPES.get(type_name)
        if kind is None:
            return
        with self._lock:
            table = self.tables.setdefault(measurement, {})
            if table.get(name) is not kind:
                log.info("%s field %r is held as %s (learnt from a refused write)",
                         measurement, name, type_name)
                table[name] = kind

    # --- the rule ---------------------------------------------------------------------------
    def claim(self, measurement: str, name: str, kind: type) -> type:
        """The type of ``name``, which the table did not hold: NUT's for ``ups`` where NUT
        documents it, else ``kind``, the type of the first value seen."""
        seeded = _seed(measurement, name)
        with self._lock:
            table = self.tables.setdefault(measurement, {})
            return table.setdefault(name, seeded or kind)

    def stored_name(self, measurement: str, name: str, kind: type) -> str:
        """Where a value of type ``kind`` of field ``name`` goes when ``name`` holds another
        type: its derived name (counted, and logged once per name and type)."""
        table = self.table(measurement)
        derived = name
        for _ in range(_MAX_DERIVATIONS):
            derived = derived_name(derived, TYPE_NAMES[kind])
            held = table.get(derived)
            if held is None:
                held = self.claim(measurement, derived, kind)
            if held is kind:
                break
        else:
            raise InvalidTelemetry(
                DecodeErrorCode.TYPE,
                f"{name}: no storable name for a {TYPE_NAMES[kind]} value after "
                f"{_MAX_DERIVATIONS} derived names (each held with another type)",
            )
        self.stats.count_retyped(measurement, SUFFIXES[TYPE_NAMES[kind]][1:])
        told = (measurement, name, kind)
        if told not in self._told:
            self._told.add(told)
            log.info(
                "%s field %r holds %s values; %s values are stored as %r (logged once)",
                measurement, name, TYPE_NAMES[table[name]], TYPE_NAMES[kind], derived,
            )
        return derived

    def retype(self, measurement: str, fields: dict[str, object]) -> dict[str, object] | None:
        """``fields`` with every value whose type differs from its field's under its derived
        name, or ``None`` when none does (the writer's path, after a refused write)."""
        table = self.table(measurement)
        out: dict[str, object] = {}
        changed = False
        for name, value in fields.items():
            held = table.get(name)
            if held is not None and held is not type(value):
                name = self.stored_name(measurement, name, type(value))
                changed = True
            out[name] = value
        return out if changed else None


def _seed(measurement: str, name: str) -> type | None:
    if measurement != DeviceKind.UPS.value:
        return None
    documented = nut_type(name)
    if documented is None:
        return None
    return float if documented is NutType.NUMBER else str
