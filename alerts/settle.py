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

This module builds the notice; the dispatcher takes the alerts out of its own groups and log
(:meth:`~alerts.dispatch.Dispatcher.settle`), as the only code that changes them.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerts.dispatch import Decisions, Dispatcher, Notification
from alerts.notify.payload import group_key, webhook_payload
from alerts.state import Alert

SETTLE_ROUTE = "settle"


def settle_notices(
    dispatcher: Dispatcher, site: str, ended: Iterable[Alert], site_now: float
) -> Decisions:
    """Take ``ended`` (the site's alerts, already resolved) out of every group; return one
    resolved notice per receiver that had been told about any of them, with the log entries.

    ``site_now`` is the site's time after the switch (the new log entries' ``sent_at``).
    """
    settled = dispatcher.settle(ended, site_now)
    decided = Decisions(nflog=settled.nflog)
    labels = {"site": site}
    key = group_key(SETTLE_ROUTE, labels)
    for receiver, alerts in sorted(settled.told.items()):
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
        payload["sentAt"] = site_now
        decided.notifications.append(Notification(receiver, key, payload))
    return decided
