"""NUT variables: their types, Kordon's names for them, and values that mean "unknown".

NUT serves every variable as text, and drivers disagree about the same variable: across the
677 real units of the NUT Devices Dumps Library, ``ups.start.auto`` is ``yes`` on one driver and
``128.00`` on another, ``input.quality`` is ``FF`` or ``0.00``, ``battery.runtime`` is ``1080``
or ``"64:41"``. A store that lets the first writer fix a field's type (InfluxDB does) then
refuses every other unit's readings. So wherever NUT's own variable documentation
(``docs/nut-names.txt`` in networkupstools/nut, read at commit f694c019) fixes a type, that
type wins over what a value looks like:

- :attr:`NutType.NUMBER`: documented with a unit or as a count. A value that reads as a number
  is a float; one that does not (``"64:41"``, ``"LoadTooLow"``) is kept, as the text the
  device sent, never dropped and never guessed at.
- :attr:`NutType.WORD`: one word out of a documented set (``yes``/``no``,
  ``enabled``/``disabled``, ``on``/``off``, threshold states). Always text: Eaton's
  ``ups.start.auto`` ``128.00`` stays the string ``"128.00"``.
- :attr:`NutType.TEXT`: identities and opaque strings (serials, models, dates, clock times).
  Always text, so serial ``0042`` on one unit and ``A17`` on the next are the same type.
- :attr:`NutType.FLAGS`: space-separated flags (``ups.status``, ``ups.alarm``). Text.

Variables NUT does not document (vendor extensions such as ``ups.debug.T`` or ``ups.mfg``) are
numbers when they read as one, except identity-like names (:func:`is_identity_like`).

Kordon metric names match ``^[a-z][a-z0-9_.]{0,63}$``; NUT's three-phase names do not
(``input.L1-N.voltage``), so :func:`metric_name` lowers them and turns ``-`` into ``_``
(``input.l1_n.voltage``). No two names in the library meet under that mapping.

:func:`unknown_reason` says when a value the device sent cannot be a real measurement
(65535 minutes or seconds of runtime, a negative runtime, a charge outside 0-100, ...). The
stored reading keeps what the device said; pages and "time to empty" skip such values by
taking every number they compute with through :func:`figure`.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class NutType(StrEnum):
    NUMBER = "number"
    WORD = "word"
    TEXT = "text"
    FLAGS = "flags"


class Quantity(StrEnum):
    """What a number measures, which decides its plausible range (see :func:`unknown_reason`)."""

    PERCENT = "%"  # a share that cannot leave 0-100: charge, humidity, efficiency
    LOAD = "% load"  # a load share: above 100 on overload, never negative
    RUNTIME = "s runtime"  # an estimate of time left on battery
    SECONDS = "s"  # delays, timers, intervals, uptime (timers use -1 for "not running")
    MINUTES = "min"
    VOLTS = "V"
    AMPS = "A"  # signed: a battery current is negative while discharging on some units
    HERTZ = "Hz"
    CELSIUS = "°C"
    WATTS = "W"
    VOLTAMPS = "VA"
    AMPHOURS = "Ah"
    RATIO = "ratio"  # power factor, 0-1
    CREST = "crest"  # crest factor, 1 or more
    DEGREES = "degrees"  # phase shift
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class NutVariable:
    name: str  # NUT's name; an index is written ``n``, a three-phase context ``CTX``
    type: NutType
    quantity: Quantity | None = None


N, W, T, FL = NutType.NUMBER, NutType.WORD, NutType.TEXT, NutType.FLAGS
Q = Quantity


def _table(*rows: tuple[str, NutType, Quantity | None]) -> dict[str, NutVariable]:
    return {name: NutVariable(name, kind, quantity) for name, kind, quantity in rows}


# Three-phase SPECs (nut-names "Valid SPECs"): per phase (DOMAIN.CTX.SPEC) or aggregated
# (DOMAIN.SPEC); the last four only aggregated.
_PHASE_SPECS: tuple[tuple[str, NutType, Quantity | None], ...] = (
    ("alarm", T, None),
    ("current", N, Q.AMPS), ("current.maximum", N, Q.AMPS), ("current.minimum", N, Q.AMPS),
    ("current.status", W, None),
    ("current.low.warning", N, Q.AMPS), ("current.low.critical", N, Q.AMPS),
    ("current.high.warning", N, Q.AMPS), ("current.high.critical", N, Q.AMPS),
    ("current.peak", N, Q.AMPS), ("current.nominal", N, Q.AMPS),
    ("voltage", N, Q.VOLTS), ("voltage.nominal", N, Q.VOLTS), ("voltage.maximum", N, Q.VOLTS),
    ("voltage.minimum", N, Q.VOLTS), ("voltage.status", W, None),
    ("voltage.low.warning", N, Q.VOLTS), ("voltage.low.critical", N, Q.VOLTS),
    ("voltage.high.warning", N, Q.VOLTS), ("voltage.high.critical", N, Q.VOLTS),
    ("power", N, Q.VOLTAMPS), ("power.maximum", N, Q.VOLTAMPS), ("power.minimum", N, Q.VOLTAMPS),
    ("power.percent", N, Q.LOAD), ("power.maximum.percent", N, Q.LOAD),
    ("power.minimum.percent", N, Q.LOAD),
    ("realpower", N, Q.WATTS), ("powerfactor", N, Q.RATIO), ("crestfactor", N, Q.CREST),
    ("load", N, Q.LOAD),
)
_AGGREGATE_SPECS: tuple[tuple[str, NutType, Quantity | None], ...] = (
    ("frequency", N, Q.HERTZ), ("frequency.nominal", N, Q.HERTZ), ("phases", N, Q.COUNT),
)
_DOMAINS = ("input", "input.bypass", "input.servicebypass", "output", "output.bypass",
            "output.inverter", "output.servicebypass")

# Outlets and outlet groups ("outlet.n.*"; "outlet.group.n.*" has the same plus a few).
_OUTLET_SPECS: tuple[tuple[str, NutType, Quantity | None], ...] = (
    ("id", T, None), ("name", T, None), ("desc", T, None), ("groupid", T, None),
    ("switch", W, None), ("status", W, None), ("alarm", T, None), ("switchable", W, None),
    ("autoswitch.charge.low", N, Q.PERCENT), ("battery.charge.low", N, Q.PERCENT),
    ("delay.shutdown", N, Q.SECONDS), ("delay.start", N, Q.SECONDS),
    ("timer.shutdown", N, Q.SECONDS), ("timer.start", N, Q.SECONDS),
    ("current", N, Q.AMPS), ("current.maximum", N, Q.AMPS), ("current.status", W, None),
    ("current.low.warning", N, Q.AMPS), ("current.low.critical", N, Q.AMPS),
    ("current.high.warning", N, Q.AMPS), ("current.high.critical", N, Q.AMPS),
    ("current.nominal", N, Q.AMPS),
    ("realpower", N, Q.WATTS), ("voltage", N, Q.VOLTS), ("voltage.status", W, None),
    ("voltage.low.warning", N, Q.VOLTS), ("voltage.low.critical", N, Q.VOLTS),
    ("voltage.high.warning", N, Q.VOLTS), ("voltage.high.critical", N, Q.VOLTS),
    ("powerfactor", N, Q.RATIO), ("crestfactor", N, Q.CREST), ("power", N, Q.VOLTAMPS),
    ("type", T, None),
)
_GROUP_SPECS: tuple[tuple[str, NutType, Quantity | None], ...] = (
    ("count", N, Q.COUNT), ("phase", T, None), ("input", T, None), ("color", T, None),
)

_AMBIENT_LIMITS = ("high", "high.warning", "high.critical", "low", "low.warning",
                   "low.critical", "maximum", "minimum")

VARIABLES: dict[str, NutVariable] = _table(
    # device
    ("device.model", T, None), ("device.mfr", T, None), ("device.serial", T, None),
    ("device.type", W, None), ("device.description", T, None), ("device.contact", T, None),
    ("device.location", T, None), ("device.part", T, None), ("device.macaddr", T, None),
    ("device.uptime", N, Q.SECONDS), ("device.count", N, Q.COUNT),
    # ups
    ("ups.status", FL, None), ("ups.alarm", FL, None), ("ups.time", T, None),
    ("ups.date", T, None), ("ups.model", T, None), ("ups.mfr", T, None),
    ("ups.mfr.date", T, None), ("ups.serial", T, None), ("ups.vendorid", T, None),
    ("ups.productid", T, None), ("ups.firmware", T, None), ("ups.firmware.aux", T, None),
    ("ups.temperature", N, Q.CELSIUS), ("ups.load", N, Q.LOAD), ("ups.load.high", N, Q.LOAD),
    ("ups.id", T, None), ("ups.delay.start", N, Q.SECONDS), ("ups.delay.reboot", N, Q.SECONDS),
    ("ups.delay.shutdown", N, Q.SECONDS), ("ups.timer.start", N, Q.SECONDS),
    ("ups.timer.reboot", N, Q.SECONDS), ("ups.timer.shutdown", N, Q.SECONDS),
    ("ups.test.interval", N, Q.SECONDS), ("ups.test.result", T, None),
    ("ups.test.date", T, None), ("ups.display.language", T, None), ("ups.contacts", T, None),
    ("ups.efficiency", N, Q.PERCENT), ("ups.power", N, Q.VOLTAMPS),
    ("ups.power.nominal", N, Q.VOLTAMPS), ("ups.realpower", N, Q.WATTS),
    ("ups.realpower.nominal", N, Q.WATTS), ("ups.beeper.status", W, None),
    ("ups.type", T, None), ("ups.watchdog.status", W, None), ("ups.start.auto", W, None),
    ("ups.start.battery", W, None), ("ups.start.reboot", W, None), ("ups.shutdown", W, None),
    # input (single-phase names; the three-phase SPECs are added below)
    ("input.voltage.extended", W, None), ("input.transfer.delay", N, Q.SECONDS),
    ("input.transfer.reason", T, None), ("input.transfer.low", N, Q.VOLTS),
    ("input.transfer.high", N, Q.VOLTS), ("input.transfer.low.min", N, Q.VOLTS),
    ("input.transfer.low.max", N, Q.VOLTS), ("input.transfer.high.min", N, Q.VOLTS),
    ("input.transfer.high.max", N, Q.VOLTS), ("input.sensitivity", W, None),
    ("input.quality", T, None), ("input.feed.color", T, None), ("input.feed.desc", T, None),
    ("input.frequency.status", W, None), ("input.frequency.low", N, Q.HERTZ),
    ("input.frequency.high", N, Q.HERTZ), ("input.frequency.extended", W, None),
    ("input.transfer.boost.low", N, Q.VOLTS), ("input.transfer.boost.high", N, Q.VOLTS),
    ("input.transfer.trim.low", N, Q.VOLTS), ("input.transfer.trim.high", N, Q.VOLTS),
    ("input.realpower.nominal", N, Q.WATTS), ("input.phase.shift", N, Q.DEGREES),
    ("input.voltage.fault", N, Q.VOLTS),
    # battery
    ("battery.charge", N, Q.PERCENT), ("battery.charge.approx", T, None),
    ("battery.charge.low", N, Q.PERCENT), ("battery.charge.restart", N, Q.PERCENT),
    ("battery.charge.warning", N, Q.PERCENT), ("battery.charger.status", W, None),
    ("battery.voltage", N, Q.VOLTS), ("battery.voltage.nominal", N, Q.VOLTS),
    ("battery.voltage.low", N, Q.VOLTS), ("battery.voltage.high", N, Q.VOLTS),
    ("battery.capacity", N, Q.AMPHOURS), ("battery.current", N, Q.AMPS),
    ("battery.current.total", N, Q.AMPS), ("battery.temperature", N, Q.CELSIUS),
    ("battery.runtime", N, Q.RUNTIME), ("battery.runtime.low", N, Q.RUNTIME),
    ("battery.runtime.restart", N, Q.RUNTIME), ("battery.date", T, None),
    ("battery.mfr.date", T, None), ("battery.packs", N, Q.COUNT),
    ("battery.packs.bad", N, Q.COUNT), ("battery.type", T, None),
    ("battery.protection", W, None), ("battery.energysave", W, None),
    ("battery.energysave.load", N, Q.LOAD), ("battery.energysave.delay", N, Q.MINUTES),
    ("battery.energysave.realpower", N, Q.WATTS),
    # ambient ("ambient.*" without an index is sensor 0)
    ("ambient.count", N, Q.COUNT), ("ambient.n.name", T, None), ("ambient.n.mfr", T, None),
    ("ambient.n.model", T, None), ("ambient.n.firmware", T, None),
    ("ambient.n.present", W, None),
    ("ambient.n.temperature", N, Q.CELSIUS), ("ambient.n.temperature.alarm", W, None),
    ("ambient.n.temperature.status", W, None),
    *((f"ambient.n.temperature.{limit}", N, Q.CELSIUS) for limit in _AMBIENT_LIMITS),
    ("ambient.n.humidity", N, Q.PERCENT), ("ambient.n.humidity.alarm", W, None),
    ("ambient.n.humidity.status", W, None),
    *((f"ambient.n.humidity.{limit}", N, Q.PERCENT) for limit in _AMBIENT_LIMITS),
    ("ambient.n.contacts.n.status", W, None), ("ambient.n.contacts.n.config", W, None),
    ("ambient.n.contacts.n.name", T, None),
    # outlets ("outlet.*" without an index is outlet 0, the whole set)
    ("outlet.count", N, Q.COUNT), ("outlet.group.count", N, Q.COUNT),
    *((f"outlet.n.{spec}", kind, quantity) for spec, kind, quantity in _OUTLET_SPECS),
    *((f"outlet.group.n.{spec}", kind, quantity)
      for spec, kind, quantity in _OUTLET_SPECS + _GROUP_SPECS),
    # driver and server
    ("driver.name", T, None), ("driver.version", T, None), ("driver.version.internal", T, None),
    ("driver.version.data", T, None), ("server.info", T, None), ("server.version", T, None),
)
for _domain in _DOMAINS:
    for _spec, _kind, _quantity in _PHASE_SPECS:
        VARIABLES.setdefault(f"{_domain}.{_spec}", NutVariable(f"{_domain}.{_spec}", _kind,
                                                               _quantity))
        VARIABLES.setdefault(f"{_domain}.CTX.{_spec}",
                             NutVariable(f"{_domain}.CTX.{_spec}", _kind, _quantity))
    for _spec, _kind, _quantity in _AGGREGATE_SPECS:
        VARIABLES.setdefault(f"{_domain}.{_spec}", NutVariable(f"{_domain}.{_spec}", _kind,
                                                               _quantity))

_CONTEXT = re.compile(r"^(l[123][-_](l[123]|n)|l[123]|n)$", re.IGNORECASE)
_INDEXED = ("ambient", "outlet", "outlet.group")


def _pattern(name: str) -> str:
    """``name`` with indexes as ``n`` and three-phase contexts as ``CTX``."""
    parts = name.split(".")
    out: list[str] = []
    for i, part in enumerate(parts):
        domain = ".".join(parts[:i])
        if part.isdigit():
            out.append("n")
        elif i in (1, 2) and domain in _DOMAINS and _CONTEXT.match(part):
            out.append("CTX")
        else:
            out.append(part)
    return ".".join(out)


def nut_variable(name: str) -> NutVariable | None:
    """NUT's documented variable for ``name`` (a NUT name or its Kordon metric name)."""
    found = VARIABLES.get(name)
    if found is not None:
        return found
    pattern = _pattern(name)
    found = VARIABLES.get(pattern)
    if found is not None:
        return found
    # "ambient.temperature" is sensor 0, "outlet.switchable" outlet 0: the unindexed form.
    for prefix in sorted(_INDEXED, key=len, reverse=True):
        if pattern.startswith(prefix + ".") and not pattern.startswith(prefix + ".n."):
            found = VARIABLES.get(f"{prefix}.n.{pattern[len(prefix) + 1:]}")
            if found is not None:
                return found
    return None


def nut_type(name: str) -> NutType | None:
    variable = nut_variable(name)
    return variable.type if variable is not None else None


# A dotted component that names an identity, never a measurement: for variables NUT does not
# document, so that vendor serials, dates and versions stay text.
_IDENTITY = re.compile(
    r"(^|\.)(mfr|mfg|model|serial|firmware|version|date|name|type|id|desc|description|contact|"
    r"location|macaddr|vendorid|productid|product|vendor|release|status|mode|alarm|port|bus|"
    r"result|reason|beeper|sensitivity|debug|revision|part)(\.|$)"
)


def is_identity_like(name: str) -> bool:
    return _IDENTITY.search(name) is not None


def parse_number(text: str) -> float | None:
    """NUT's text as a finite float, or ``None`` ("64:41", "LoadTooLow", "1e400", "nan")."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def typed_value(name: str, text: str) -> float | str:
    """The value of NUT variable ``name`` as Kordon stores it: the type rule (module doc)."""
    variable = nut_variable(name)
    if variable is not None:
        if variable.type is not NutType.NUMBER:
            return text
        number = parse_number(text)
        return text if number is None else number
    if is_identity_like(name):
        return text
    number = parse_number(text)
    return text if number is None else number


_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
TEXT_SUFFIX = ".text"


def metric_name(name: str) -> str | None:
    """Kordon's metric name for NUT variable ``name``, or ``None`` when it has none.

    Lower case, ``-`` as ``_``: ``input.L1-N.voltage`` is ``input.l1_n.voltage``.
    """
    mapped = name.lower().replace("-", "_")
    return mapped if _METRIC_NAME.match(mapped) else None


def text_metric(name: str) -> str:
    """Where the text of a number Kordon types itself goes when it is not a number.

    ``battery.runtime`` is a float in the MQTT contract, so a unit's ``"64:41"`` cannot be sent
    under that name (the whole reading would be dead-lettered); it is sent as
    ``battery.runtime.text`` instead, kept rather than dropped.
    """
    return name + TEXT_SUFFIX


# Registers read as all ones: the "no value" of many UPS firmwares, raw or scaled by 10/100.
_ALL_ONES_16 = (65535.0, 6553.5, 655.35)
_ALL_ONES_12 = (4095.0, 409.5)
_OVERFLOW = 1e12  # beyond any UPS quantity: a driver that read garbage (the library has 4.6e255)
_RANGES: dict[Quantity, tuple[float, float]] = {
    Q.PERCENT: (0.0, 100.0),
    Q.LOAD: (0.0, 1000.0),
    Q.RUNTIME: (0.0, math.inf),
    Q.VOLTS: (0.0, 1500.0),  # low voltage ends at 1,000 V AC / 1,500 V DC
    Q.HERTZ: (0.0, 1000.0),
    Q.CELSIUS: (-50.0, 150.0),  # beyond it a unit has burnt or is reporting Kelvin
    Q.WATTS: (0.0, math.inf),
    Q.VOLTAMPS: (0.0, math.inf),
    Q.AMPHOURS: (0.0, math.inf),
    Q.RATIO: (-1.0, 1.0),
    Q.CREST: (1.0, math.inf),
    Q.COUNT: (0.0, math.inf),
    Q.MINUTES: (0.0, math.inf),
}


_SIXTEEN_BIT = frozenset({Q.RUNTIME, Q.PERCENT, Q.LOAD, Q.VOLTS, Q.HERTZ, Q.AMPS, Q.CELSIUS,
                          Q.WATTS, Q.VOLTAMPS})


@functools.lru_cache(maxsize=4096)
def _documented_number(name: str) -> tuple[bool, Quantity | None]:
    """(whether NUT documents ``name`` as a number, its quantity): judged on every reading of
    every UPS, so looked up once per name."""
    variable = nut_variable(name)
    if variable is None or variable.type is not NutType.NUMBER:
        return False, None
    return True, variable.quantity


def unknown_reason(name: str, value: object) -> str | None:
    """Why ``value`` of NUT variable ``name`` is not a real measurement, or ``None``.

    Only documented numbers are judged; text, words and undocumented variables give ``None``.
    A documented number sent as text ("64:41") is unknown: it cannot be computed with.
    """
    documented, quantity = _documented_number(name)
    if not documented:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not a number"
    number = float(value)
    if not math.isfinite(number) or abs(number) >= _OVERFLOW:
        return "overflow"
    if quantity in _SIXTEEN_BIT and number in _ALL_ONES_16:
        return "all-ones sentinel (65535)"
    if quantity in (Q.VOLTS, Q.HERTZ) and number in _ALL_ONES_12:
        return "all-ones sentinel (4095)"
    bounds = _RANGES.get(quantity) if quantity is not None else None
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        return f"outside {bounds[0]:g}..{bounds[1]:g} {quantity.value}"
    return None


def is_unknown(name: str, value: object) -> bool:
    """Whether pages and "time to empty" must ignore ``value`` (the store keeps it)."""
    return unknown_reason(name, value) is not None


def figure(name: str, value: object) -> float | None:
    """``value`` of metric ``name`` as a number a figure may be computed from, or ``None``.

    ``None`` when the value is absent, not a number (text, a bool) or unknown by the sentinel
    rule (:func:`unknown_reason`): an APC unit's ``battery.runtime`` of 65535 gives ``None``,
    so a page shows no time to empty rather than "about 18.2 h left". The stored reading keeps
    what the device said; this is the one place where figures leave it out. Every reader
    that computes with a UPS value calls it: the API's device view (``time_to_empty`` and
    ``battery_charge`` in ``api/state.py``), the alert engine's tracker (``battery.runtime``,
    ``battery.charge``, ``input.voltage`` in ``alerts/tracker.py``, which feed
    ``BatteryDepletionImminent`` and the depletion fit) and battery learning
    (``Reading.from_metrics`` in ``alerts/battery/readings.py``).
    """
    kind = type(value)
    if kind is not float and kind is not int and (  # the common case without isinstance
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return None
    number = float(value)
    accepts = _accepts(name)
    return number if accepts is None or accepts(number) else None


@functools.lru_cache(maxsize=4096)
def _accepts(name: str) -> Callable[[float], bool] | None:
    """:func:`unknown_reason`'s verdict on a number of ``name`` as one compiled test (``None``:
    every number; ``name`` is not a documented number): :func:`figure` runs on every field of
    every reading the engine and learning read, so it must not walk the rules each time.
    A property test keeps the two in agreement."""
    documented, quantity = _documented_number(name)
    if not documented:
        return None
    low, high = _RANGES.get(quantity, (-math.inf, math.inf)) if quantity else (-math.inf, math.inf)
    low, high = max(low, math.nextafter(-_OVERFLOW, 0.0)), min(high, math.nextafter(_OVERFLOW, 0.0))
    sentinels = frozenset(
        (_ALL_ONES_16 if quantity in _SIXTEEN_BIT else ())
        + (_ALL_ONES_12 if quantity in (Q.VOLTS, Q.HERTZ) else ())
    )

    def accepts(number: float) -> bool:
        return low <= number <= high and number not in sentinels  # False for NaN

    return accepts
