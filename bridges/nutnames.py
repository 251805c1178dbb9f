"""NUT variables -> metrics that pass the MQTT contract's validation.

Kordon's UPS metrics *are* NUT names, so most variables map one to one. Three things still
need care, because the collector dead-letters a whole reading over one bad metric:

- ``ups.status`` accepts only the flags in :data:`UPS_STATUS_FLAGS`. NUT drivers report more
  (``TRIM``, ``BOOST``, ``FSD``, ``CAL``, ``ALARM``, ``HB``, ``TEST``, ``COMM``/``NOCOMM``, ...);
  those go to ``ups.status.extra`` (a string) instead of being lost or poisoning the reading.
- Known float metrics (``battery.charge``, ...) must be numbers: NUT sends every value as text.
- Other variables pass through when their name is acceptable. A value that parses as a number
  is sent as a float, *except* for identity-like names (``*.serial``, ``*.firmware``,
  ``*.date``, ...): a serial number "12345" on one UPS and "A1B2" on the next would otherwise
  give the InfluxDB field two types, and InfluxDB refuses the second for good.

``driver.parameter.*`` and ``driver.flag.*`` echo the driver's configuration (ports, paths,
poll intervals); they are not measurements and are dropped. The contract caps a reading at
128 metrics: known metrics come first, the rest in name order until the cap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, UPS_STATUS_FLAGS, MetricType
from kordon.model.payload import UNKNOWN_METRIC_NAME, DecodeLimits, FieldValue

STATUS = "ups.status"
STATUS_EXTRA = "ups.status.extra"

_UPS_METRICS = METRICS[DeviceKind.UPS]
_FLOAT_METRICS = frozenset(
    name for name, spec in _UPS_METRICS.items() if spec.type is MetricType.FLOAT
)
_LIMITS = DecodeLimits()
_DROPPED_PREFIXES = ("driver.parameter.", "driver.flag.")
# A dotted component that names an identity, never a measurement.
_TEXTUAL = re.compile(
    r"(^|\.)(mfr|model|serial|firmware|version|date|name|type|id|desc|description|contact|"
    r"location|macaddr|vendorid|productid|product|vendor|release|status|mode|alarm|port|bus|"
    r"result|reason|beeper|sensitivity)(\.|$)"
)


def split_status(flags: Iterable[str]) -> tuple[str | None, str | None]:
    """(contract flags, extra flags), each space-separated, or ``None`` when there are none.

    Order is kept and repeats are dropped, so ``OB DISCHRG LB`` stays readable in Grafana.
    """
    known: list[str] = []
    extra: list[str] = []
    for flag in flags:
        target = known if flag in UPS_STATUS_FLAGS else extra
        if flag not in target:
            target.append(flag)
    return (" ".join(known) or None, " ".join(extra) or None)


def parse_number(text: str) -> float | None:
    """NUT's text value as a finite float, or ``None``."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_textual(name: str) -> bool:
    """Whether ``name`` is an identity-like variable that stays a string even if numeric."""
    return _TEXTUAL.search(name) is not None


def metrics_from_nut(variables: Mapping[str, str]) -> dict[str, FieldValue]:
    """A reading's metrics from one ``LIST VAR`` answer (names to text values)."""
    known: dict[str, FieldValue] = {}
    others: dict[str, FieldValue] = {}
    for name, text in variables.items():
        if name == STATUS:
            flags, extra = split_status(text.split())
            if flags is not None:
                known[STATUS] = flags
            if extra is not None:
                others[STATUS_EXTRA] = extra
        elif name in _FLOAT_METRICS:
            number = parse_number(text)
            if number is not None:
                known[name] = number
        elif name in _UPS_METRICS:
            continue  # a known metric of another type; none exists for UPS today
        elif _passes_through(name, text):
            number = None if is_textual(name) else parse_number(text)
            others[name] = number if number is not None else text
    return cap(known, others)


def _passes_through(name: str, text: str) -> bool:
    return (
        UNKNOWN_METRIC_NAME.match(name) is not None
        and not name.startswith(_DROPPED_PREFIXES)
        and name != STATUS_EXTRA  # ours: a driver must not be able to fake it
        and len(text) <= _LIMITS.max_string
    )


def cap(known: dict[str, FieldValue], others: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """Known metrics first, then the others in name order, up to the contract's limit."""
    metrics = dict(known)
    for name in sorted(others):
        if len(metrics) >= _LIMITS.max_metrics:
            break
        metrics[name] = others[name]
    return metrics
