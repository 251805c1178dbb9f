"""Device kinds. The value is the ``{kind}`` topic segment and the InfluxDB measurement."""

from __future__ import annotations

from enum import StrEnum


class DeviceKind(StrEnum):
    UPS = "ups"
    SCANNER = "scanner"
    RADIO = "radio"
