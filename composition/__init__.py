"""The composition layer: the one place that wires roles together.

The kernel (``kordon``) knows no role, and the roles (``collector``, ``alerts``, ``api``,
``simulators``, ``bridges``) know only the kernel. Whatever needs two of them at once lives
here, with plain imports: the ``kordon`` command line (``cli``), the role registry of
``kordon run`` (``roles``), ``kordon demo`` with its embedded broker (``demo``,
``embedded_broker``), ``kordon scenario verify`` (``verify``: simulator scenarios through the
alert engine) and ``kordon devices provision`` (``devices``). tests/kernel/test_layering.py keeps
the rule true.
"""
