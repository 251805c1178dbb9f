"""The dead man's switch: an always-firing ``Watchdog`` alert, sent on an interval.

The Prometheus convention (kube-prometheus' ``Watchdog``, severity ``none``): an alert that
fires for as long as alerting works, sent to a receiver whose other end (a dead man's switch
service such as healthchecks.io, PagerDuty's or OpsGenie's heartbeat, or an Alertmanager route
to one) pages when it *stops* arriving. That is the only way to learn that the engine, its host
or the path from it has died: nothing that is dead can send "I am dead".

Sent from the engine's ticker, and only while the engine is ready (evaluating, connected, the
stream flowing: :mod:`alerts.health`), so a hung evaluation loop or a broker that stopped
delivering stops the Watchdog too. Through the durable outbox like any notification; each send
is a fresh firing notification (webhook v4 payload) of the one alert, with ``validUntil`` for
an ``alertmanager`` receiver. Two engines send the same labels, so Alertmanager deduplicates;
give each an ``instance`` label (``notify.watchdog.labels``) to watch each engine on its own.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from alerts.config import NotifySettings
from alerts.notify.payload import NotifiedAlert, group_key, webhook_payload
from kordon.model.alerts import fingerprint

ALERTNAME = "Watchdog"

Row = tuple[str, str, dict[str, Any]]


class Watchdog:
    def __init__(
        self, notify: NotifySettings, started: float, wall: Callable[[], float] = time.time
    ) -> None:
        self.settings = notify.watchdog
        self.wall = wall
        self.started = started
        self.external_url = notify.external_url
        self.targets: list[str] = []
        if self.settings is not None:
            receiver = self.settings.receiver
            self.targets = [t for t in notify.integrations() if t.rpartition("/")[0] == receiver]
        self.labels = {
            "alertname": ALERTNAME,
            "severity": "none",
            **(self.settings.labels if self.settings else {}),
        }
        self.next_at = float("-inf")
        self.sent = 0

    def __bool__(self) -> bool:
        return bool(self.targets)

    def collect(self, now: float, ready: bool) -> list[Row]:
        """The Watchdog's outbox rows when it is due and the engine is ready, else none."""
        if self.settings is None or not self.targets or not ready:
            return []
        wall = self.wall()
        if wall < self.next_at:
            return []
        interval = self.settings.interval
        self.next_at = wall + interval
        alert = NotifiedAlert(
            labels=dict(self.labels),
            annotations={
                "summary": "Kordon alerting works (this alert always fires)",
                "description": (
                    "The dead man's switch of the Kordon alert engine: it is sent every "
                    f"{interval:g} s while the engine evaluates and reads the MQTT stream. "
                    "Page when it stops arriving: the engine, its host, its broker connection "
                    "or the path to you is down."
                ),
            },
            status="firing",
            starts_at=self.started,
            ends_at=None,
            fingerprint=fingerprint(self.labels),
            generator_url=self.external_url,
        )
        rows: list[Row] = []
        for target in self.targets:
            receiver = target.rpartition("/")[0]
            payload = webhook_payload(
                receiver=receiver,
                group_labels={"alertname": ALERTNAME},
                key=group_key("watchdog", {"alertname": ALERTNAME}),
                alerts=[alert],
                external_url=self.external_url,
            )
            payload["sentAt"] = now
            payload["pushedAt"] = wall
            payload["validUntil"] = wall + 4 * interval
            key = hashlib.sha256(f"watchdog|{target}|{wall!r}".encode()).hexdigest()[:32]
            rows.append((target, key, payload))
        self.sent += 1
        return rows
