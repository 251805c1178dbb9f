"""The alert engine: rules over device telemetry, alert state, and who gets told.

Messages come in from the broker (``alerts.role``, ``kordon run --roles alerts``) or from an
in-process stream on its own clock (``alerts.replay``, ``alerts.verify``: what
``kordon scenario verify`` runs). The engine (``alerts.engine``) evaluates the rules
(``rules``, ``evaluate``, ``depletion``) per device and per site (``tracker``), applies
silences and inhibitions (``silence``, ``inhibit``), routes and groups notifications
(``dispatch``) and delivers them through a durable outbox (``outbox``, ``notify/``) in the
Alertmanager webhook format. Alert state lives in the kernel's alert store, so the API reads
it without importing this package; alert events go to InfluxDB as Grafana annotations
(``annotations``).

Like every role, this package depends on ``kordon`` only, never on another role.
"""
