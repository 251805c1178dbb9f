"""Bridges from real UPS hardware onto Kordon's MQTT contract.

Most UPS units in the field are already watched by Network UPS Tools (``upsd``) or carry a
network card that serves the standard UPS-MIB (RFC 1628). The bridges poll those and publish
each UPS as a Kordon device, so existing hardware is monitored without new firmware:

- :mod:`bridges.nut`: the NUT network protocol (``kordon nut-bridge``);
- :mod:`bridges.snmp`: SNMP v1/v2c/v3 against the UPS-MIB (``kordon snmp-bridge``);
- :mod:`bridges.publisher`: the MQTT side both share (telemetry, retained status, last will);
- :mod:`bridges.nutnames`: NUT variables -> contract metrics (both bridges speak NUT names).

Like the role packages, this one depends on :mod:`kordon` only.
"""
