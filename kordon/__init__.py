"""Kordon's shared kernel: configuration, domain model, storage adapters, clock, fleet file.

The role packages (``collector``, ``alerts``, ``api``, ``simulators``, ``bridges``) depend on
this package and never on each other; they talk through the MQTT broker and the stores only.
The kernel imports no role: the one place that wires roles together is the composition layer,
``composition`` (the ``kordon`` command, ``kordon run``'s roles, the demo, scenario verify).
"""

__version__ = "0.1.0"
