"""The REST API and the operations page (``kordon run --roles api``), served by uvicorn.

``api.role`` builds the FastAPI app (``api.app``, routes in ``api.routes``) over an
``ApiContext`` (``api.context``): current device state from InfluxDB, kept fresh by a live
MQTT follower (``state``, ``live``), telemetry history (``telemetry``), alerts, acks and
silences in the alert store (``alerts``), bearer tokens with roles (``auth``), problem
documents (``problems``) and Prometheus metrics (``stats``). Scenario runs started from the
page are ``kordon simulate`` subprocesses; the scenario library the API lists is handed in by
the composition layer (``composition``), so the API never imports the simulators and runs
without a library when none is given.

Like every role, this package depends on ``kordon`` only, never on another role.
"""
