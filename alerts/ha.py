"""What the alerts role adds to the engine for high availability, in one place.

After every tick: the pushes to Alertmanager (:mod:`alerts.push`), the Watchdog
(:mod:`alerts.watchdog`) and the readiness clock (:mod:`alerts.health`); outbox rows of both
go into the store in one transaction, and delivered ones are pruned, since a push every minute
for a year would otherwise fill the disk. The role calls :meth:`HighAvailability.after_tick`
under its engine lock, :meth:`message` and :meth:`connected` from the MQTT thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from alerts.config import AlertingConfig
from alerts.engine import Engine
from alerts.health import HealthMetrics, HealthServer, Readiness
from alerts.push import AlertmanagerPush
from alerts.state import Alert
from alerts.watchdog import Watchdog
from kordon import metrics
from kordon.storage.alert_store import AlertStore

log = logging.getLogger("alerts.ha")

PRUNE_EVERY = 300.0  # seconds between prunes of delivered pushes and Watchdogs
KEEP_DELIVERED = 3600.0  # a delivered push or Watchdog is kept this long (for inspection)


class HighAvailability:
    def __init__(
        self,
        config: AlertingConfig,
        store: AlertStore,
        engine: Engine,
        connected: Callable[[], bool],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.engine = engine
        self.wall = wall
        self.is_connected = connected
        # Which broker connection (a count) each site and device was last heard on: a firing
        # alert is re-sent to Alertmanager only on evidence of the current one (alerts/push.py).
        self._connection = 0
        self._heard: dict[str, int] = {}
        rules = config.rules
        self.readiness = Readiness(
            rules.evaluation_stall, rules.stream_stall, connected,
            lambda: bool(engine.tracker.devices),
        )
        self.push = AlertmanagerPush(config.notify, rules.evaluation_interval, wall,
                                     engine.inhibitor.inhibits)
        self.watchdog = Watchdog(config.notify, wall(), wall)
        self._prune_targets = sorted(
            {t.name for t in self.push.targets} | set(self.watchdog.targets)
        )
        self._next_prune = wall() + PRUNE_EVERY
        self.health = HealthMetrics(self.readiness)
        self.health.counters["kordon_alerts_alertmanager_pushes_total"] = (
            "pushes of the active alerts queued for Alertmanager", lambda: self.push.pushes
        )
        self.health.counters["kordon_alerts_watchdog_sent_total"] = (
            "Watchdog notifications queued", lambda: self.watchdog.sent
        )
        metrics.register("alerts-health", self.health)
        self.server = (
            HealthServer(rules.metrics_addr, self.readiness) if rules.metrics_addr else None
        )

    def start(self) -> None:
        if self.server is not None:
            self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        metrics.unregister("alerts-health")

    def message(self) -> None:
        self.readiness.message()

    def heard(self, site: str, device: str) -> None:
        """A live (not retained) message of ``device`` at ``site`` was handled by the engine."""
        self._heard[site] = self._heard[f"{site}/{device}"] = self._connection

    def connected(self) -> None:
        self._connection += 1
        self.readiness.on_connect()

    def confirmed(self, alert: Alert) -> bool:
        """Whether the engine heard ``alert``'s device (or, for a site alert, its site) on
        the current broker connection, so its belief in the alert is current."""
        if not self.is_connected():
            return False
        site, device = alert.labels.get("site"), alert.labels.get("device")
        if site is None:
            return True  # not about one site: nothing narrower to confirm it by
        key = site if device is None else f"{site}/{device}"
        return self._heard.get(key) == self._connection

    def after_tick(self, now: float) -> bool:
        """Queue what is due (True if anything was); call with the engine's lock held."""
        self.readiness.ticked()
        rows = self.push.collect(self.engine.alerts.values(), now, self.confirmed)
        rows += self.watchdog.collect(now, self.readiness.ready())
        if rows:
            self.store.record_notifications(rows, [], [], now)
        wall = self.wall()
        if self._prune_targets and wall >= self._next_prune:
            self._next_prune = wall + PRUNE_EVERY
            pruned = self.store.prune_outbox(now - KEEP_DELIVERED, self._prune_targets)
            if pruned:
                log.debug("pruned %d delivered pushes and Watchdogs", pruned)
        return bool(rows)
