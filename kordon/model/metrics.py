"""Metric names, types and units (design brief, "Metric names").

UPS metrics use Network UPS Tools variable names so a NUT bridge maps one to one. The type of
a known metric is fixed here, and the collector normalises values to it (an integer JSON value
for a float metric is stored as a float), because InfluxDB refuses a field whose type changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kordon.model.kinds import DeviceKind


class MetricType(StrEnum):
    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"  # one word out of ``allowed``
    FLAGS = "flags"  # space-separated words out of ``allowed`` (NUT ``ups.status``)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    type: MetricType
    unit: str = ""
    description: str = ""
    allowed: frozenset[str] = frozenset()


UPS_STATUS_FLAGS = frozenset({"OL", "OB", "LB", "CHRG", "DISCHRG", "RB", "BYPASS", "OVER", "OFF"})
SCANNER_STATES = frozenset({"off", "standby", "warmup", "ready", "scanning", "fault"})
SCANNER_POWER_SOURCES = frozenset({"mains", "ups", "generator", "none"})
RADIO_POWER_SOURCES = frozenset({"mains", "battery", "none"})


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {spec.name: spec for spec in specs}


F, I, B, S, E, FL = (  # noqa: E741 - short names keep the tables readable
    MetricType.FLOAT,
    MetricType.INT,
    MetricType.BOOL,
    MetricType.STRING,
    MetricType.ENUM,
    MetricType.FLAGS,
)

METRICS: dict[DeviceKind, dict[str, MetricSpec]] = {
    DeviceKind.UPS: _specs(
        MetricSpec("ups.status", FL, "", "NUT status flags", UPS_STATUS_FLAGS),
        MetricSpec("battery.charge", F, "%", "battery state of charge"),
        MetricSpec("battery.runtime", F, "s", "the UPS's own estimate of runtime left"),
        MetricSpec("battery.voltage", F, "V", "battery voltage"),
        MetricSpec("input.voltage", F, "V", "mains input voltage"),
        MetricSpec("input.frequency", F, "Hz", "mains input frequency"),
        MetricSpec("output.voltage", F, "V", "output voltage"),
        MetricSpec("ups.load", F, "%", "load as a share of the rated power"),
        MetricSpec("ups.realpower", F, "W", "real power drawn by the load"),
        MetricSpec("ups.temperature", F, "°C", "internal temperature"),
    ),
    DeviceKind.SCANNER: _specs(
        MetricSpec("scanner.state", E, "", "operating state", SCANNER_STATES),
        MetricSpec("power.source", E, "", "what feeds the scanner", SCANNER_POWER_SOURCES),
        MetricSpec("power.draw", F, "W", "electrical power drawn"),
        MetricSpec("xray.ready", B, "", "X-ray source ready to scan"),
        MetricSpec("scans.total", I, "", "scans since commissioning (counter)"),
        MetricSpec("cabinet.temperature", F, "°C", "electronics cabinet temperature"),
        MetricSpec("fault.code", S, "", "vendor fault code, empty when healthy"),
    ),
    DeviceKind.RADIO: _specs(
        MetricSpec("power.source", E, "", "what feeds the base station", RADIO_POWER_SOURCES),
        MetricSpec("supply.voltage", F, "V", "DC plant voltage"),
        MetricSpec("battery.charge", F, "%", "backup battery state of charge"),
        MetricSpec("tx.power", F, "W", "transmitter output power"),
        MetricSpec("tx.vswr", F, "", "antenna voltage standing wave ratio"),
        MetricSpec("rx.rssi", F, "dBm", "received signal strength"),
        MetricSpec("pa.temperature", F, "°C", "power amplifier temperature"),
        MetricSpec("backhaul.up", B, "", "backhaul link to the core network is up"),
        MetricSpec("terminals.registered", I, "", "radio terminals registered"),
    ),
}

# Reserved: the collector stores the payload's sequence number under this field name.
SEQ_FIELD = "seq"
