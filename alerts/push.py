"""Prometheus' notifier loop for the ``alertmanager`` receivers: every alert, re-sent.

Prometheus does not route: it sends every firing alert to Alertmanager on each evaluation
where something changed and again every resend delay (1 minute), with ``endsAt`` a few resend
delays ahead, and keeps sending a resolved alert (``endsAt`` = resolve time) for 15 minutes, so
an Alertmanager node that restarted or missed a push learns the truth on the next one.
Alertmanager groups, routes, silences, inhibits and, across a cluster, deduplicates: two Kordon
engines pushing the same alerts (same labels, same fingerprints) page once.

:class:`AlertmanagerPush` does the same after every engine tick, with the engine's alerts as
input and outbox rows (one per ``receiver/alertmanager`` target) as output, so a push that no
node took is retried by the durable outbox like any notification. Pending alerts are not sent
(as in Prometheus); silences and inhibition are left to Alertmanager (``deploy/alertmanager.yml``
mirrors Kordon's built-in inhibition), so its UI shows the whole picture.

Scheduling and ``validUntil`` use the wall clock (Alertmanager judges ``endsAt`` on its own);
alert times are the engine's.

One rule Prometheus does not have, because a paired engine can be behind its peer: a re-send of
a firing alert goes out only while the engine can confirm it (``confirmed``: the alert's device
or site was heard on the current broker connection). An engine that lost its connection, or got
it back and has heard nothing yet, knows nothing newer than what it last pushed, and its peer
may already have pushed the resolution: re-sending the old belief would re-open the incident in
Alertmanager and page it twice. So an unconfirmed firing alert is left out of the pushes (an
alert Alertmanager has keeps its ``endsAt``) until fresh evidence confirms or resolves it, or
until only one resend delay of its validity is left, when it goes out as it stands, so that an
outage nobody saw end is never resolved by a timeout. An alert's first firing is never held.

And one for inhibition, which Alertmanager applies at each group flush: the resolution of an
inhibiting alert is not pushed while an alert it mutes still fires (for at most one resend
delay). When the grid returns, the site incident resolves with the first UPS back on mains,
milliseconds to a reporting interval before the others; pushed at once, it would unmute their
``MainsPowerLost`` for that moment, and a flush falling into it pages "on battery" for units
whose mains are back (seen in the all-in-one chaos run). ``inhibits`` is Kordon's own
inhibition (``deploy/alertmanager.yml`` mirrors it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.config import NotifySettings
from alerts.notify.alertmanager import AlertmanagerConfig
from alerts.notify.payload import NotifiedAlert, webhook_payload
from alerts.state import Alert
from kordon.model.alerts import AlertState

# Prometheus: an alert sent at t is valid until t + 4 x max(resend delay, evaluation interval),
# which allows for two failed evaluations or sends before Alertmanager resolves it on its own.
VALID_FACTOR = 4.0

Row = tuple[str, str, dict[str, Any]]  # (outbox target, idempotency key, payload)


@dataclass(slots=True)
class _Target:
    name: str  # outbox target, "receiver/alertmanager"
    receiver: str
    config: AlertmanagerConfig
    last_push: float = float("-inf")
    last_state: frozenset[tuple[str, str]] = frozenset()
    sent: dict[str, float] = field(default_factory=dict)  # fingerprint -> last pushed firing


def alertmanager_targets(notify: NotifySettings) -> dict[str, AlertmanagerConfig]:
    return {
        target: config
        for target, config in notify.integrations().items()
        if isinstance(config, AlertmanagerConfig)
    }


class AlertmanagerPush:
    def __init__(
        self,
        notify: NotifySettings,
        evaluation_interval: float,
        wall: Callable[[], float] = time.time,
        inhibits: Callable[[dict[str, str], dict[str, str]], bool] | None = None,
    ) -> None:
        self.inhibits = inhibits
        self.external_url = notify.external_url
        self.evaluation_interval = evaluation_interval
        self.wall = wall
        self.targets = [
            _Target(target, target.rpartition("/")[0], config)
            for target, config in alertmanager_targets(notify).items()
        ]
        self._firing: dict[str, NotifiedAlert] = {}
        self._unconfirmed: set[str] = set()  # fingerprints of firing alerts not confirmed now
        # fingerprint -> (resolved snapshot, wall time it resolved)
        self._resolved: dict[str, tuple[NotifiedAlert, float]] = {}
        self.pushes = 0

    def __bool__(self) -> bool:
        return bool(self.targets)

    def collect(
        self, alerts: Iterable[Alert], now: float, confirmed: Callable[[Alert], bool] | None = None
    ) -> list[Row]:
        """Outbox rows for the targets due now, given the engine's alerts after a tick.

        ``confirmed(alert)``: whether the engine's belief in a firing alert is current (see
        the module's docstring); every alert is by default."""
        if not self.targets:
            return []
        wall = self.wall()
        self._observe(alerts, now, wall, confirmed)
        rows: list[Row] = []
        for target in self.targets:
            config = target.config
            valid_for = VALID_FACTOR * max(config.resend_delay, self.evaluation_interval)
            hold_until = valid_for - max(config.resend_delay, self.evaluation_interval)
            firing = [
                snap for fp, snap in self._firing.items()
                if fp not in self._unconfirmed or fp not in target.sent
                or wall - target.sent[fp] >= hold_until
            ]
            resolved = [
                snap for snap, at in self._resolved.values()
                if wall - at <= config.resolved_retention
                and not self._still_muting(snap, wall - at, config.resend_delay)
            ]
            state = frozenset(
                [(s.fingerprint, "firing") for s in firing]
                + [(s.fingerprint, "resolved") for s in resolved]
            )
            changed = state != target.last_state
            if not changed and wall < target.last_push + config.resend_delay:
                continue
            target.last_state = state
            target.last_push = wall
            for fp in [fp for fp in target.sent if fp not in self._firing]:
                del target.sent[fp]
            if not state:
                continue
            for snap in firing:
                target.sent[snap.fingerprint] = wall
            snapshots = sorted(
                [*firing, *resolved],
                key=lambda s: (s.status != "firing", s.labels.get("alertname", ""),
                               s.fingerprint),
            )
            payload = webhook_payload(
                receiver=target.receiver,
                group_labels={},
                key=f"{{}}/alertmanager:{target.receiver}",
                alerts=snapshots,
                external_url=self.external_url,
            )
            payload["sentAt"] = now
            payload["pushedAt"] = wall
            payload["validUntil"] = wall + valid_for
            key = hashlib.sha256(f"{target.name}|{wall!r}|{now!r}".encode()).hexdigest()[:32]
            rows.append((target.name, key, payload))
        self.pushes += len(rows)
        retention = max(t.config.resolved_retention for t in self.targets)
        for fp in [fp for fp, (_, at) in self._resolved.items() if wall - at > retention]:
            del self._resolved[fp]
        return rows

    def _still_muting(self, snap: NotifiedAlert, age: float, hold: float) -> bool:
        """Whether resolved ``snap`` still mutes a firing alert and is younger than ``hold``."""
        if self.inhibits is None or age >= hold:
            return False
        return any(self.inhibits(snap.labels, firing.labels) for firing in self._firing.values())

    def _observe(
        self,
        alerts: Iterable[Alert],
        now: float,
        wall: float,
        confirmed: Callable[[Alert], bool] | None,
    ) -> None:
        """Remember what fires; whatever fired and no longer does has resolved."""
        firing: dict[str, NotifiedAlert] = {}
        ended: dict[str, Alert] = {}
        self._unconfirmed = set()
        for alert in alerts:
            if alert.state is AlertState.FIRING:
                firing[alert.fingerprint] = alert.snapshot(self.external_url)
                if confirmed is not None and not confirmed(alert):
                    self._unconfirmed.add(alert.fingerprint)
            elif alert.state is AlertState.RESOLVED:
                ended[alert.fingerprint] = alert
        for fp, before in self._firing.items():
            if fp in firing:
                continue
            alert = ended.get(fp)
            # Released by the dispatcher in the same tick: resolved now, with what we saw.
            snap = alert.snapshot(self.external_url) if alert is not None else replace(
                before, status="resolved", ends_at=now
            )
            self._resolved[fp] = (snap, wall)
        for fp in firing:
            self._resolved.pop(fp, None)
        self._firing = firing
