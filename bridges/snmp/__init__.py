"""SNMP: the UPS-MIB (RFC 1628) mapped onto NUT names, and the bridge that polls an agent."""
