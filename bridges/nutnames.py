"""NUT variables -> readings that pass the MQTT contract's validation, every variable kept.

Kordon's UPS metrics *are* NUT names, so most variables map one to one. What needs care, because
the collector dead-letters a whole reading over one bad metric:

- ``ups.status`` accepts only the flags in :data:`UPS_STATUS_FLAGS`. NUT drivers report more
  (``TRIM``, ``BOOST``, ``FSD``, ``CAL``, ``ALARM``, ``HB``, ``TEST``, ``COMM``/``NOCOMM``, ...);
  those go to ``ups.status.extra`` (a string) instead of being lost or poisoning the reading.
- Types follow :mod:`kordon.model.nut` (NUT's own variable documentation): documented numbers
  are floats when they read as numbers, documented words and identities are always text.
  A documented number that does not read as one (``battery.runtime`` ``"64:41"``,
  ``ups.efficiency`` ``"LoadTooLow"``) is published as the text the unit sent, and the bridge
  logs it once per variable. For the metrics the contract itself types as floats
  (``battery.runtime``, ...) the text goes to ``<name>.text``: under the float's own name it
  would dead-letter the whole reading.
- Names: NUT's three-phase names (``input.L1-N.voltage``) become ``input.l1_n.voltage``
  (:func:`kordon.model.nut.metric_name`).
- Size: the contract caps a reading at 128 metrics; a poll with more (ePDUs serve up to 581
  variables) is split into several readings with the same timestamp, each with its own
  ``seq``, known metrics first. Nothing is cut.

Dropped on purpose: ``driver.parameter.*`` and ``driver.flag.*`` (the driver's configuration
echoed back: ports, paths, poll intervals), and strings longer than the contract's 4,096
characters (logged once per variable).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, UPS_STATUS_FLAGS, MetricType
from kordon.model.nut import (
    NutType,
    metric_name,
    nut_type,
    parse_number,
    text_metric,
    typed_value,
)
from kordon.model.payload import DecodeLimits, FieldValue

log = logging.getLogger("bridges.nut")

STATUS = "ups.status"
STATUS_EXTRA = "ups.status.extra"

_UPS_METRICS = METRICS[DeviceKind.UPS]
_FLOAT_METRICS = frozenset(
    name for name, spec in _UPS_METRICS.items() if spec.type is MetricType.FLOAT
)
_LIMITS = DecodeLimits()
DROPPED_PREFIXES = ("driver.parameter.", "driver.flag.")


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


class NutReadings:
    """Turns ``LIST VAR`` answers into readings; says once per variable what it could not use.

    One per bridge: the "once" is per variable name for the bridge's lifetime, however many
    UPSes send the same oddity.
    """

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self._noted: set[tuple[str, str]] = set()

    def _once(self, what: str, name: str, message: str, *args: object) -> None:
        if (what, name) not in self._noted:
            self._noted.add((what, name))
            self._log.warning(message, *args)

    def metrics(self, variables: Mapping[str, str], ups: str = "") -> tuple[
        dict[str, FieldValue], dict[str, FieldValue]
    ]:
        """(Kordon's own metrics, every other variable), typed, named, checked."""
        known: dict[str, FieldValue] = {}
        others: dict[str, FieldValue] = {}
        for name, text in variables.items():
            if name == STATUS:
                flags, extra = split_status(text.split())
                if flags is not None:
                    known[STATUS] = flags
                if extra is not None:
                    others[STATUS_EXTRA] = extra
                continue
            if name.startswith(DROPPED_PREFIXES):
                continue
            metric = metric_name(name)
            if metric is not None and metric != name and metric in variables:
                self._once("clash", name, "NUT variable %r (from %s) and %r are both %s; the "
                           "latter is published", name, ups, metric, metric)
                continue
            if metric is None or metric == STATUS_EXTRA:  # ours: a driver must not fake it
                self._once("name", name, "NUT variable %r (from %s) has no Kordon metric name "
                           "(^[a-z][a-z0-9_.]{0,63}$ after lower-casing); not published",
                           name, ups)
                continue
            if len(text) > _LIMITS.max_string:
                self._once("long", name, "NUT variable %s (from %s) is %d characters long, over "
                           "the contract's %d; not published", name, ups, len(text),
                           _LIMITS.max_string)
                continue
            if metric in _FLOAT_METRICS:
                number = parse_number(text)
                if number is not None:
                    known[metric] = number
                else:
                    self._not_a_number(name, text, ups, text_metric(metric))
                    others[text_metric(metric)] = text
                continue
            value = typed_value(name, text)
            if isinstance(value, str) and nut_type(name) is NutType.NUMBER:
                self._not_a_number(name, text, ups, metric)
            others[metric] = value
        return known, others

    def _not_a_number(self, name: str, text: str, ups: str, published_as: str) -> None:
        self._once("nan", name, "NUT variable %s is a number in NUT's documentation, but %s sent "
                   "%r; published as text under %s (reported once per variable)",
                   name, ups or "a UPS", text, published_as)

    def readings(self, variables: Mapping[str, str], ups: str = "") -> list[dict[str, FieldValue]]:
        """Every variable of one ``LIST VAR`` answer, as readings of at most 128 metrics."""
        known, others = self.metrics(variables, ups)
        return split(known, others)


def split(
    known: dict[str, FieldValue], others: dict[str, FieldValue], size: int = _LIMITS.max_metrics
) -> list[dict[str, FieldValue]]:
    """Known metrics first, then the others in name order, in readings of at most ``size``."""
    ordered = list(known.items()) + sorted(others.items())
    return [dict(ordered[start:start + size]) for start in range(0, len(ordered), size)]


def readings_from_nut(variables: Mapping[str, str]) -> list[dict[str, FieldValue]]:
    """:meth:`NutReadings.readings` without the once-per-variable memory (tests, one-offs)."""
    return NutReadings().readings(variables)


def cap(known: dict[str, FieldValue], others: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """Known metrics first, then the others in name order, up to the contract's limit.

    For the SNMP bridge, whose readings are a fixed handful of UPS-MIB objects.
    """
    parts = split(known, others)
    return parts[0] if parts else {}
