"""Kordon's shared kernel: configuration, domain model, storage adapters, clock and CLI wiring.

The role packages (``collector``, ``alerts``, ``api``, ``simulators``) depend on this package
and never on each other; they talk through the MQTT broker and the stores only.
"""

__version__ = "0.1.0"
