"""The UPS-MIB (RFC 1628) objects the bridge polls, and how they map onto NUT names.

The mapping follows what NUT's own ``snmp-ups`` driver does with this MIB (its ``ietf``
mapping), so a UPS reads the same whether a site runs NUT or lets Kordon poll the card:

==============================  ==========================  =======================================
UPS-MIB object                  NUT / Kordon name           conversion
==============================  ==========================  =======================================
upsOutputSource                 ups.status                  normal: OL; battery: OB DISCHRG;
                                                            bypass: OL BYPASS; booster: OL BOOST;
                                                            reducer: OL TRIM; none: OFF; other: -
upsBatteryStatus                ups.status                  batteryLow, batteryDepleted: LB
upsAlarmTable (well-known)      ups.status                  OutputOverload: OVER; OnBypass: BYPASS;
                                                            BatteryBad: RB; UpsOutputOff: OFF
upsAlarmTable (well-known)      ups.alarm                   alarm names, space-separated
upsAlarmsPresent                ups.alarm.count             count
upsSecondsOnBattery             battery.runtime.elapsed     s (0 while on mains)
upsEstimatedMinutesRemaining    battery.runtime             minutes x 60 -> s
upsEstimatedChargeRemaining     battery.charge              %
upsBatteryVoltage               battery.voltage             0.1 V DC -> V
upsBatteryTemperature           battery.temperature         °C
upsInputFrequency.1             input.frequency             0.1 Hz -> Hz
upsInputVoltage.1               input.voltage               V RMS
upsOutputFrequency              output.frequency            0.1 Hz -> Hz
upsOutputVoltage.1              output.voltage              V RMS
upsOutputPower.1                ups.realpower               W
upsOutputPercentLoad.1          ups.load                    %
upsIdentManufacturer, Model     ups.mfr, ups.model          text
upsIdentUPSSoftwareVersion      ups.firmware                text
upsIdentAgentSoftwareVersion    ups.firmware.aux            text
==============================  ==========================  =======================================

``TRIM`` and ``BOOST`` are NUT flags the contract's ``ups.status`` does not take; they end up
in ``ups.status.extra`` (see :mod:`bridges.nutnames`). ``DISCHRG`` is added on battery
because the battery then feeds the load; ``CHRG`` is never set, as the UPS-MIB does not say
whether the battery is charging. Only input and output line 1 are read (single-phase units;
three-phase tables are an open point). ``upsAlarmCommunicationsLost`` means the card has lost
its UPS: the data is stale, and the bridge reports the UPS ``offline``, as for NUT's
``ERR DATA-STALE``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridges.nutnames import STATUS, STATUS_EXTRA, cap, split_status
from kordon.model.payload import FieldValue

UPS_MIB = "1.3.6.1.2.1.33.1"


@dataclass(frozen=True, slots=True)
class Numeric:
    """A numeric object: NUT value = SNMP value x ``scale``."""

    oid: str
    mib_name: str
    nut_name: str
    scale: float = 1.0


@dataclass(frozen=True, slots=True)
class Text:
    oid: str
    mib_name: str
    nut_name: str


BATTERY_STATUS = f"{UPS_MIB}.2.1.0"  # upsBatteryStatus
OUTPUT_SOURCE = f"{UPS_MIB}.4.1.0"  # upsOutputSource
ALARMS_PRESENT = f"{UPS_MIB}.6.1.0"  # upsAlarmsPresent
ALARM_DESCR_COLUMN = f"{UPS_MIB}.6.2.1.2"  # upsAlarmDescr: the OID of a well-known alarm
WELL_KNOWN_ALARMS = f"{UPS_MIB}.6.3"

NUMERIC: tuple[Numeric, ...] = (
    Numeric(f"{UPS_MIB}.2.2.0", "upsSecondsOnBattery", "battery.runtime.elapsed"),
    Numeric(f"{UPS_MIB}.2.3.0", "upsEstimatedMinutesRemaining", "battery.runtime", 60.0),
    Numeric(f"{UPS_MIB}.2.4.0", "upsEstimatedChargeRemaining", "battery.charge"),
    Numeric(f"{UPS_MIB}.2.5.0", "upsBatteryVoltage", "battery.voltage", 0.1),
    Numeric(f"{UPS_MIB}.2.7.0", "upsBatteryTemperature", "battery.temperature"),
    Numeric(f"{UPS_MIB}.3.3.1.2.1", "upsInputFrequency.1", "input.frequency", 0.1),
    Numeric(f"{UPS_MIB}.3.3.1.3.1", "upsInputVoltage.1", "input.voltage"),
    Numeric(f"{UPS_MIB}.4.2.0", "upsOutputFrequency", "output.frequency", 0.1),
    Numeric(f"{UPS_MIB}.4.4.1.2.1", "upsOutputVoltage.1", "output.voltage"),
    Numeric(f"{UPS_MIB}.4.4.1.4.1", "upsOutputPower.1", "ups.realpower"),
    Numeric(f"{UPS_MIB}.4.4.1.5.1", "upsOutputPercentLoad.1", "ups.load"),
    Numeric(ALARMS_PRESENT, "upsAlarmsPresent", "ups.alarm.count"),
)

TEXT: tuple[Text, ...] = (
    Text(f"{UPS_MIB}.1.1.0", "upsIdentManufacturer", "ups.mfr"),
    Text(f"{UPS_MIB}.1.2.0", "upsIdentModel", "ups.model"),
    Text(f"{UPS_MIB}.1.3.0", "upsIdentUPSSoftwareVersion", "ups.firmware"),
    Text(f"{UPS_MIB}.1.4.0", "upsIdentAgentSoftwareVersion", "ups.firmware.aux"),
)

# Every scalar fetched by one GET per poll (well under the usual 64 varbinds a PDU).
POLLED: tuple[str, ...] = (
    BATTERY_STATUS,
    OUTPUT_SOURCE,
    *(item.oid for item in NUMERIC),
    *(item.oid for item in TEXT),
)

OUTPUT_SOURCE_FLAGS: dict[int, tuple[str, ...]] = {
    1: (),  # other
    2: ("OFF",),  # none: the load is not powered
    3: ("OL",),  # normal
    4: ("OL", "BYPASS"),
    5: ("OB", "DISCHRG"),  # battery
    6: ("OL", "BOOST"),  # booster: raising a low input voltage
    7: ("OL", "TRIM"),  # reducer: lowering a high input voltage
}
BATTERY_STATUS_FLAGS: dict[int, tuple[str, ...]] = {
    1: (),  # unknown
    2: (),  # batteryNormal
    3: ("LB",),  # batteryLow
    4: ("LB",),  # batteryDepleted
}

# upsWellKnownAlarms (RFC 1628 section upsAlarm): arc -> name.
ALARM_NAMES: dict[int, str] = {
    1: "BatteryBad",
    2: "OnBattery",
    3: "LowBattery",
    4: "DepletedBattery",
    5: "TempBad",
    6: "InputBad",
    7: "OutputBad",
    8: "OutputOverload",
    9: "OnBypass",
    10: "BypassBad",
    11: "OutputOffAsRequested",
    12: "UpsOffAsRequested",
    13: "ChargerFailed",
    14: "UpsOutputOff",
    15: "UpsSystemOff",
    16: "FanFailure",
    17: "FuseFailure",
    18: "GeneralFault",
    19: "DiagnosticTestFailed",
    20: "CommunicationsLost",
    21: "AwaitingPower",
    22: "ShutdownPending",
    23: "ShutdownImminent",
    24: "TestInProgress",
}
ALARM_FLAGS: dict[str, str] = {
    "OutputOverload": "OVER",
    "OnBypass": "BYPASS",
    "BatteryBad": "RB",
    "UpsOutputOff": "OFF",
}
COMMUNICATIONS_LOST = "CommunicationsLost"


def alarm_name(descr_oid: str) -> str:
    """The name of the well-known alarm ``descr_oid`` points at (vendor alarms: their OID)."""
    prefix = WELL_KNOWN_ALARMS + "."
    if descr_oid.startswith(prefix):
        arc = descr_oid[len(prefix):]
        if arc.isdigit() and int(arc) in ALARM_NAMES:
            return ALARM_NAMES[int(arc)]
    return descr_oid


def to_metrics(values: Mapping[str, int | str], alarms: list[str]) -> dict[str, FieldValue]:
    """Metrics with NUT names from one poll: ``values`` by OID (missing objects absent)."""
    numbers: dict[str, FieldValue] = {}
    for item in NUMERIC:
        raw = values.get(item.oid)
        if isinstance(raw, int):
            numbers[item.nut_name] = round(raw * item.scale, 6)
    flags: list[str] = []
    source = values.get(OUTPUT_SOURCE)
    if isinstance(source, int):
        flags.extend(OUTPUT_SOURCE_FLAGS.get(source, ()))
    battery = values.get(BATTERY_STATUS)
    if isinstance(battery, int):
        flags.extend(BATTERY_STATUS_FLAGS.get(battery, ()))
    flags.extend(ALARM_FLAGS[name] for name in alarms if name in ALARM_FLAGS)
    known, extra = split_status(flags)
    metrics: dict[str, FieldValue] = {}
    if known is not None:
        metrics[STATUS] = known
    others: dict[str, FieldValue] = dict(numbers)
    if extra is not None:
        others[STATUS_EXTRA] = extra
    if alarms:
        others["ups.alarm"] = " ".join(alarms)
    for item in TEXT:
        raw = values.get(item.oid)
        if isinstance(raw, str) and raw.strip():
            others[item.nut_name] = raw.strip()
    # Known metrics (battery.charge, ...) must come before the cap, like in NUT's path.
    for name in ("battery.charge", "battery.runtime", "battery.voltage", "input.voltage",
                 "input.frequency", "output.voltage", "ups.load", "ups.realpower"):
        if name in others:
            metrics[name] = others.pop(name)
    return cap(metrics, others)
