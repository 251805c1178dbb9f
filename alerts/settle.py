"""Settling a site whose time base changed: a stream started, stopped or went stale.

When a site moves between the wall clock and a stream's scenario clock (or from one stream to
another, :class:`kordon.streamclock.Switch`), its state is measured on a clock that no longer
applies: a pending ``for`` or a silence timeout would finish in a jump of hours. The engine
therefore settles the site quietly instead of judging it across the jump:

* pending alerts of the site are dropped;
* firing alerts end, ``endsAt`` the last time of the old clock, with a ``note`` saying why;
* receivers are told only what they were told before: one resolved notice per site and
  receiver, holding every alert of the site that receiver had been paged about (or escalated
  to it), never one per group; the notification log records it, so a later firing of the same
  alert pages again;
* the site's devices are forgotten, so they count as unknown (not offline) until they publish
  again, and statuses or readings from before the switch are ignored (see the engine).

This module builds the notice and updates the dispatcher's groups and log; it reads only the
dispatcher's public state.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerts.dispatch import Decisions, Dispatcher, Notification
from alerts.notify.payload import group_key, webhook_payload
from alerts.state import Alert
from kordon.storage.alert_store import NflogEntry

SETTLE_ROUTE = "settle"


def settle_notices(
    dispatcher: Dispatcher, site: str, ended: Iterable[Alert], at: float
) -> Decisions:
    """Take ``ended`` (the site's alerts, already resolved) out of every group; return one
    resolved notice per receiver that had been told about any of them, with the log entries.

    ``at`` is the site's time after the switch (the new log entries' ``sent_at``).
    """
    decided = Decisions()
    ended = list(ended)
    fps = {a.fingerprint for a in ended}
    by_fp = {a.fingerprint: a for a in ended}
    told: dict[str, dict[str, Alert]] = {}  # receiver -> the ended alerts it was told about
    for group in list(dispatcher.groups.values()):
        mine = fps & group.alerts.keys()
        if not mine:
            continue
        route = group.route
        if route.receiver is not None:
            entry = dispatcher.nflog.get((group.key, route.receiver))
            if entry is not None and entry.firing & mine:
                said = entry.firing & mine
                for fp in said:
                    told.setdefault(route.receiver, {})[fp] = by_fp[fp]
                new = NflogEntry(entry.firing - mine, frozenset(said), at)
                dispatcher.nflog[(group.key, route.receiver)] = new
                decided.nflog.append((group.key, route.receiver, new))
        if route.escalate_to:
            for fp in mine:
                alert = by_fp[fp]
                if (fp, alert.starts_at) in dispatcher.escalated:
                    told.setdefault(route.escalate_to, {})[fp] = alert
    for alert in ended:
        dispatcher.forget(alert)
    for told_pictures in getattr(dispatcher, "told_material", {}).values():
        for fp in fps:
            told_pictures.pop(fp, None)
    for key in [k for k, g in dispatcher.groups.items() if not g.alerts]:
        del dispatcher.groups[key]
    labels = {"site": site}
    key = group_key(SETTLE_ROUTE, labels)
    for receiver, alerts in sorted(told.items()):
        snapshots = sorted(
            (a.snapshot(dispatcher.external_url) for a in alerts.values()),
            key=lambda s: (s.labels.get("alertname", ""), s.fingerprint),
        )
        payload = webhook_payload(
            receiver=receiver,
            group_labels=labels,
            key=key,
            alerts=snapshots,
            external_url=dispatcher.external_url,
        )
        payload["sentAt"] = at
        decided.notifications.append(Notification(receiver, key, payload))
    return decided
