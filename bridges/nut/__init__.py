"""Network UPS Tools: the network protocol client and the bridge that polls ``upsd``."""
