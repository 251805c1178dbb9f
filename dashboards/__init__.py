"""Kordon's Grafana dashboards: where they live, how they are checked and pushed.

The dashboards themselves are data (``dashboards/*.json`` in the repository, installed under
``share/kordon/dashboards``); they are generated from :mod:`dashboards.definitions` so
that every panel filters, aliases and annotates the same way. This package holds the code that
reads them: :mod:`~dashboards.check` (offline validation), :mod:`~dashboards.push`
(idempotent upload through Grafana's HTTP API) and the ``kordon dashboards`` commands.
"""

from __future__ import annotations

DATASOURCE_UID = "kordon-influxdb"
DATASOURCE_NAME = "Kordon InfluxDB"
FOLDER_UID = "kordon"
FOLDER_TITLE = "Kordon"
