"""Routing tree, aggregation groups and the notification log (Alertmanager semantics).

An alert walks the routing tree to the deepest matching route (siblings after a match only
with ``continue``). Alerts of a route with the same ``group_by`` label values form a group;
a group is first notified ``group_wait`` after it forms (so related alerts arriving together
make one page), then looked at every ``group_interval``; it is notified again when alerts
were added or resolved, or, if nothing changed, after ``repeat_interval`` while an
unacknowledged alert still fires.

Kordon's one departure, for power incidents (docs/alerts.md, "Timing"): what on-call must
act on is not held for the next ``group_interval``. A firing alert more severe than anything
the receiver was told about its group, any new critical alert, or the first firing in the
group of an alert of the route's time-critical class (``urgent_alerts``: the power path,
whatever its severity) is sent ``urgent_wait`` after it fires (alerts that fire together
still go together); maintenance alerts (``maintenance_alerts``) are grouped apart at
Alertmanager's pace, so they never delay the power path (issue 28); the end of an incident (the
incident alert, or the last critical alert the receiver knows of, resolving) is sent
``resolve_wait`` after it, so every device's return is in the same notice. A group whose
alerts carry a ``material`` picture (the site incident) is sent again as an *update* when
that picture gets worse, ``update_interval`` after the first change it carries and never
sooner than a gap after the group's previous notification that starts at ``update_interval``
and doubles with each update in a row, up to ``group_interval``; good news rides with the
next regular notification. Everything else keeps Alertmanager's timers, and nothing is sent
twice: the log says what each receiver knows.

The notification log (persisted) records what each receiver was last told per group: after
a restart the same firing set is not paged again. Escalation: a critical alert nobody
acknowledged within ``escalate_after`` is sent to the route's ``escalate_to`` receiver, once
per firing instance, and that receiver is told when it resolves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from alerts.config import ROOT_DEFAULTS, NotifySettings, RouteSettings
from alerts.notify.payload import group_key, webhook_payload
from alerts.state import Alert
from kordon.model.alerts import AlertState, Facts, Matcher, matches_all
from kordon.storage.alert_store import NflogEntry


@dataclass(slots=True)
class Route:
    id: str
    receiver: str | None
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    escalate_to: str | None
    escalate_after: float
    continue_: bool
    urgent_wait: float = 5.0
    resolve_wait: float = 10.0
    update_interval: float = 20.0
    # The time-critical class and the maintenance class (alerts.config.notify): the
    # configured defaults come through build_routes; a Route made by hand has neither.
    urgent_alerts: frozenset[str] = frozenset()
    maintenance_alerts: frozenset[str] = frozenset()
    children: list[Route] = field(default_factory=list)

    def match(self, labels: dict[str, str]) -> list[Route]:
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.children:
            matched = child.match(labels)
            if matched:
                found.extend(matched)
                if not child.continue_:
                    break
        return found or [self]

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if "..." in self.group_by:
            return dict(labels)
        found = {name: labels[name] for name in self.group_by if name in labels}
        if self.is_maintenance(labels):
            # Grouped apart, as deploy/alertmanager.yml does: a replace-battery notice never
            # shares a notification (nor its timers) with the power path.
            found["alertname"] = labels["alertname"]
        return found

    def is_maintenance(self, labels: dict[str, str]) -> bool:
        return labels.get("alertname", "") in self.maintenance_alerts

    def is_urgent(self, labels: dict[str, str]) -> bool:
        """In the time-critical class. An alert with ``cause="power"`` is a consequence: the
        power alert that explains it is the urgent one (and mutes it)."""
        return (
            labels.get("alertname", "") in self.urgent_alerts
            and labels.get("cause") != "power"
        )


def build_routes(settings: NotifySettings) -> Route:
    receivers = settings.all_receivers()
    root_receiver = settings.route.receiver or ("default" if "default" in receivers else None)
    if root_receiver is None and len(receivers) == 1:
        root_receiver = next(iter(receivers))
    return _route(settings.route, "0", None, root_receiver)


def _route(
    conf: RouteSettings, route_id: str, parent: Route | None, receiver: str | None
) -> Route:
    def pick(name: str) -> Any:
        value = getattr(conf, name)
        if value is not None:
            return value
        return getattr(parent, name) if parent is not None else ROOT_DEFAULTS.get(name)

    route = Route(
        id=route_id,
        receiver=conf.receiver or receiver,
        matchers=tuple(Matcher.parse(m) for m in conf.matchers),
        group_by=tuple(pick("group_by")),
        group_wait=pick("group_wait"),
        group_interval=pick("group_interval"),
        repeat_interval=pick("repeat_interval"),
        escalate_to=conf.escalate_to if conf.escalate_to is not None else (
            parent.escalate_to if parent is not None else None
        ),
        escalate_after=pick("escalate_after"),
        continue_=conf.continue_,
        urgent_wait=pick("urgent_wait"),
        resolve_wait=pick("resolve_wait"),
        update_interval=pick("update_interval"),
        urgent_alerts=frozenset(pick("urgent_alerts")),
        maintenance_alerts=frozenset(pick("maintenance_alerts")),
    )
    route.children = [
        _route(child, f"{route_id}.{i}", route, route.receiver)
        for i, child in enumerate(conf.routes)
    ]
    return route


@dataclass(slots=True)
class Notification:
    receiver: str
    group_key: str
    payload: dict[str, Any]
    escalation: bool = False

    def idempotency_key(self, integration: str) -> str:
        digest = hashlib.sha256()
        digest.update(f"{integration}|{self.group_key}|{self.receiver}|".encode())
        for alert in self.payload["alerts"]:
            digest.update(f"{alert['fingerprint']}:{alert['status']}:{alert['startsAt']};".encode())
        digest.update(str(self.payload.get("sentAt", "")).encode())
        return digest.hexdigest()[:32]


@dataclass(slots=True)
class Decisions:
    """What one :meth:`Dispatcher.flush` decided. The engine persists it with the alerts in
    one transaction, so a page is never queued without the log entry that says it was sent.
    """

    notifications: list[Notification] = field(default_factory=list)
    # (group key, receiver, entry): what each receiver has now been told about each group.
    nflog: list[tuple[str, str, NflogEntry]] = field(default_factory=list)
    # (fingerprint, firing instance's startsAt, receiver): instances escalated just now.
    escalations: list[tuple[str, float, str]] = field(default_factory=list)
    # Resolved alerts every group has now told: the engine may forget them.
    released: list[str] = field(default_factory=list)

    def to_persist(self) -> bool:
        return bool(self.notifications or self.nflog or self.escalations)


@dataclass(slots=True)
class Group:
    key: str
    route: Route
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    site: str = ""  # whose clock times the group: the site of the alert that formed it
    urgent_at: float | None = None  # an urgent send or an incident update is due then
    last_sent: float | None = None
    update_gap: float = 0.0  # least time between updates now (doubles with each in a row)


Acked = Callable[[Alert], bool]

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _rank(alert: Alert) -> int:
    return SEVERITY_RANK.get(alert.labels.get("severity", ""), 1)


def _urgent_news(route: Route, alert: Alert, told: frozenset[str], told_rank: int) -> bool:
    """Must this firing alert go ``urgent_wait`` after it fires rather than wait for the
    group's timer? Only news (the receiver was not told it): a critical alert, one more
    severe than anything told about the group, or the first firing of a time-critical one,
    so a power page is never held behind what the group said before (issue 28). Maintenance
    news keeps Alertmanager's pace whatever its severity."""
    if alert.fingerprint in told or route.is_maintenance(alert.labels):
        return False
    rank = _rank(alert)
    return rank >= 2 or rank > told_rank or route.is_urgent(alert.labels)


@dataclass(slots=True)
class Settled:
    """What :meth:`Dispatcher.settle` took out of the groups: the ended alerts each receiver
    had been told about (paged, or escalated to it), and the log entries that now say so."""

    told: dict[str, dict[str, Alert]] = field(default_factory=dict)
    nflog: list[tuple[str, str, NflogEntry]] = field(default_factory=list)


class Dispatcher:
    """The groups, the notification log and the escalations: the only code that changes them.

    Two clocks meet here. ``tick_now`` is the caller's (the engine's tick: the wall clock when
    live, the simulated clock under ``scenario verify``). ``group_now`` is a group's own: the
    clock of the site whose alert formed the group (``clock_of``; a stream's scenario time
    for a simulated site), on which its ``group_wait``, ``group_interval``, repeats, updates
    and escalations run and with which its notifications are stamped.
    """

    def __init__(
        self,
        root: Route,
        nflog: dict[tuple[str, str], NflogEntry],
        escalated: set[tuple[str, float]],
        external_url: str = "",
        *,
        clock_of: Callable[[str], float] | None = None,
    ) -> None:
        self.root = root
        self.nflog = nflog
        self.escalated = escalated
        self.external_url = external_url
        self.groups: dict[str, Group] = {}
        self._routes_of: dict[str, list[Group]] = {}
        # site -> its group_now; None: every group runs on the tick_now given to flush.
        self._clock_of = clock_of
        # (group, receiver) -> fingerprint -> the material picture that receiver was told,
        # kept in the nflog so that a restart compares with what was really told.
        self.told_material: dict[tuple[str, str], dict[str, Facts]] = {
            key: dict(entry.material) for key, entry in nflog.items()
        }

    # ------------------------------------------------------------------ membership
    def add(self, alert: Alert, group_now: float) -> None:
        """An alert (re)entered firing; put it into the group of every route it matches.
        ``group_now``: the time on its site's clock (a new group's ``group_wait`` starts)."""
        groups = []
        for route in self.root.match(alert.labels):
            labels = route.group_labels(alert.labels)
            key = group_key(route.id, labels)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = Group(
                    key, route, labels, group_now + route.group_wait,
                    site=alert.labels.get("site", ""),
                )
            group.alerts[alert.fingerprint] = alert
            groups.append(group)
        self._routes_of[alert.fingerprint] = groups

    def forget(self, alert: Alert) -> None:
        for group in self._routes_of.pop(alert.fingerprint, []):
            group.alerts.pop(alert.fingerprint, None)

    def settle(self, ended: Iterable[Alert], site_now: float) -> Settled:
        """Take ``ended`` (a settled site's alerts, already resolved: :mod:`alerts.settle`)
        out of every group, and log that each receiver has been told they ended.

        A site whose clock changed is not judged across the jump, so its groups are not
        flushed: each receiver is told once, in the caller's one notice per site, about what
        it had been paged for (or escalated), and the log says so, so a later firing of the
        same alert pages again. ``site_now`` is the site's time after the switch.
        """
        settled = Settled()
        ended = list(ended)
        fps = {a.fingerprint for a in ended}
        by_fp = {a.fingerprint: a for a in ended}
        for group in list(self.groups.values()):
            mine = fps & group.alerts.keys()
            if not mine:
                continue
            route = group.route
            if route.receiver is not None:
                entry = self.nflog.get((group.key, route.receiver))
                if entry is not None and entry.firing & mine:
                    said = entry.firing & mine
                    for fp in said:
                        settled.told.setdefault(route.receiver, {})[fp] = by_fp[fp]
                    new = NflogEntry(entry.firing - mine, frozenset(said), site_now)
                    self.nflog[(group.key, route.receiver)] = new
                    settled.nflog.append((group.key, route.receiver, new))
            if route.escalate_to:
                for fp in mine:
                    alert = by_fp[fp]
                    if (fp, alert.starts_at) in self.escalated:
                        settled.told.setdefault(route.escalate_to, {})[fp] = alert
        for alert in ended:
            self.forget(alert)
        for told_pictures in self.told_material.values():
            for fp in fps:
                told_pictures.pop(fp, None)
        for key in [k for k, g in self.groups.items() if not g.alerts]:
            del self.groups[key]
        return settled

    # ------------------------------------------------------------------ timers
    def _group_now(self, group: Group, tick_now: float) -> float:
        return tick_now if self._clock_of is None else self._clock_of(group.site)

    def next_due(self, include: Callable[[Group], bool] | None = None) -> float | None:
        groups = [g for g in self.groups.values() if include is None or include(g)]
        due = [g.next_flush for g in groups if g.alerts]
        due.extend(g.urgent_at for g in groups if g.urgent_at is not None)
        for group in groups:
            route = group.route
            if route.escalate_to is None:
                continue
            for alert in group.alerts.values():
                if (
                    alert.state is AlertState.FIRING
                    and alert.starts_at is not None
                    and alert.labels.get("severity") == "critical"
                    and (alert.fingerprint, alert.starts_at) not in self.escalated
                ):
                    due.append(alert.starts_at + route.escalate_after)
        return min(due) if due else None

    def flush(self, tick_now: float, acked: Acked, held: set[str]) -> Decisions:
        """Notify the groups that are due and escalate what waited too long.

        ``held`` are firing alerts a pending inhibitor holds back; ``acked`` says whether an
        alert's firing instance is acknowledged (no repeats, no escalation).
        """
        decided = Decisions()
        for key in list(self.groups):
            group = self.groups[key]
            group_now = self._group_now(group, tick_now)
            if group.route.escalate_to:
                self._escalate(group, group_now, acked, held, decided)
            self._watch(group, group_now, held)
            regular, urgent = self._wait_elapsed(group, group_now)
            if regular or urgent:
                sent, waiting = self._flush_group(group, group_now, acked, held, decided,
                                                  regular)
                self._reschedule(group, group_now, regular, sent, waiting)
            if not group.alerts:
                del self.groups[key]
        return decided

    def _wait_elapsed(self, group: Group, group_now: float) -> tuple[bool, bool]:
        """(regular, urgent): has the group's own timer run out (``group_wait``, then
        ``group_interval``, as in Alertmanager), and has a send that :meth:`_watch` brought
        forward come due? Either lets the group send; only a regular send may carry news
        that is not urgent, so what can wait keeps Alertmanager's pace."""
        regular = group_now >= group.next_flush
        urgent = group.urgent_at is not None and group_now >= group.urgent_at
        return regular, urgent

    def _reschedule(
        self, group: Group, group_now: float, regular: bool, sent: bool, waiting: bool
    ) -> None:
        """The group's next regular look. Held back by a pending inhibitor: a second later
        (the inhibitor fires or clears within a tick or two, and the group then tells
        everything at once); after a regular look or any send: a ``group_interval`` later,
        so an urgent send counts as the group's notification. A brought-forward send is
        spent either way: held back, the retry a second later carries it."""
        route = group.route
        if waiting:
            group.next_flush = group_now + min(1.0, route.group_interval)
        elif regular or sent:
            group.next_flush = group_now + route.group_interval
        group.urgent_at = None

    # ------------------------------------------------------------------ bringing forward
    def _watch(self, group: Group, group_now: float, held: set[str]) -> None:
        """Bring the group's next send forward for what must not wait for group_interval:
        urgent news, the end of an incident, an incident update (the earliest of them)."""
        route = group.route
        if route.receiver is None or not group.alerts:
            return
        previous = self.nflog.get((group.key, route.receiver))
        told = previous.firing if previous else frozenset()
        firing = [a for a in group.alerts.values() if self._visible(a, held)]
        due = [
            when for when in (
                self._urgent_news_at(group, told, firing, group_now),
                self._incident_end_at(group, told, firing, group_now),
                self._incident_update_at(group, previous, firing, group_now),
            ) if when is not None
        ]
        if due and (group.urgent_at is None or min(due) < group.urgent_at):
            group.urgent_at = min(due)

    def _urgent_news_at(
        self, group: Group, told: frozenset[str], firing: list[Alert], group_now: float
    ) -> float | None:
        """``urgent_wait`` from now when a firing alert is urgent news (:func:`_urgent_news`).
        Before a group's first notification too: a critical alert or the first firing of a
        time-critical one cuts ``group_wait`` short."""
        route = group.route
        told_rank = self._told_rank(group, told)
        if any(_urgent_news(route, a, told, told_rank) for a in firing):
            return group_now + route.urgent_wait
        return None

    def _incident_end_at(
        self, group: Group, told: frozenset[str], firing: list[Alert], group_now: float
    ) -> float | None:
        """``resolve_wait`` from now when an incident ended: the incident alert itself (it
        carries a picture) or the last critical alert the receiver knows of resolved. A
        depletion estimate that recovered while the site is still dark is good news that
        waits."""
        ended = [a for a in group.alerts.values() if a.state is AlertState.RESOLVED
                 and a.fingerprint in told and _rank(a) >= 2]
        if ended and (
            any(a.material is not None for a in ended)
            or not any(a.fingerprint in told and _rank(a) >= 2 for a in firing)
        ):
            return group_now + group.route.resolve_wait
        return None

    def _incident_update_at(
        self, group: Group, previous: NflogEntry | None, firing: list[Alert], group_now: float
    ) -> float | None:
        """When to send an update of an incident whose picture got worse: changes within
        ``update_interval`` of the first are told together (a generator that stops is
        followed by every UPS reporting OB within a reporting interval), and never sooner
        than the update gap after the group's last notification."""
        route = group.route
        if previous is None or route.receiver is None or not self._material_changed(
            group, route.receiver, firing, worse_only=True
        ):
            return None
        gap_ok = (group.last_sent or previous.sent_at) + self._gap(group, group_now)
        return max(group_now + min(route.update_interval, route.group_interval), gap_ok)

    def _told_rank(self, group: Group, told: frozenset[str]) -> int:
        """The highest severity the receiver was told about the group (a warning if none)."""
        return max((_rank(a) for a in group.alerts.values() if a.fingerprint in told),
                   default=1)

    def _gap(self, group: Group, group_now: float) -> float:
        """The least time between the group's last notification and an incident update:
        ``update_interval`` after a page or a quiet ``group_interval``, else what the last
        update in a row left (:meth:`_widen_update_gap`)."""
        route = group.route
        last = group.last_sent
        if last is None or group_now - last >= route.group_interval or group.update_gap <= 0:
            return min(route.update_interval, route.group_interval)
        return group.update_gap

    def _material_changed(
        self, group: Group, receiver: str, firing: list[Alert], worse_only: bool = False
    ) -> bool:
        """Whether the picture of an alert changed since the receiver was told it; with
        ``worse_only``, whether it got worse: the set of facts got a new one."""
        told = self.told_material.get((group.key, receiver))
        if told is None:
            # Told before this picture was kept in the nflog: take the current one as told.
            self.told_material[(group.key, receiver)] = {
                a.fingerprint: a.material for a in firing if a.material is not None
            }
            return False
        changed = False
        for alert in firing:
            now_, fp = alert.material, alert.fingerprint
            if now_ is None:
                continue
            if fp not in told:
                # Not told yet (a new alert is news anyway) or restored after a restart
                # before its picture was known: its picture now is the baseline.
                told[fp] = now_
                continue
            before = told[fp]
            if before == now_:
                continue
            if not worse_only:
                return True
            if now_ - before:
                changed = True
        return changed

    def _visible(self, alert: Alert, held: set[str]) -> bool:
        return (
            alert.state is AlertState.FIRING
            and not alert.suppressed
            and alert.fingerprint not in held
        )

    # ------------------------------------------------------------------ one group's send
    def _flush_group(
        self,
        group: Group,
        group_now: float,
        acked: Acked,
        held: set[str],
        decided: Decisions,
        regular: bool = True,
    ) -> tuple[bool, bool]:
        """Notify one due group; (sent to its receiver, held back by a pending inhibitor).

        The steps: what the send carries (:meth:`_contents`), whether it must wait
        (:meth:`_held_back`), whether there is anything to tell (:meth:`_dedup` against the
        log, :meth:`_update_due`, :meth:`_repeat_due`), then the send and its log entry
        (:meth:`_record`) and the resolved alerts let go (:meth:`_release_resolved`).
        """
        route = group.route
        firing = self._contents(group, held, regular)
        resolved = [a for a in group.alerts.values() if a.state is AlertState.RESOLVED]
        waiting = self._held_back(group, held, regular)
        sent = False
        if route.receiver is not None:
            previous = self.nflog.get((group.key, route.receiver))
            tell_resolved, news = self._dedup(previous, firing, resolved)
            send = (
                news
                or self._update_due(group, route.receiver, previous, firing, regular, group_now)
                or self._repeat_due(route, previous, firing, acked, group_now)
            )
            if send and not waiting:
                decided.notifications.append(
                    self._notification(route.receiver, group, firing + tell_resolved, group_now)
                )
                self._record(group, route.receiver, firing, tell_resolved, news, group_now,
                             decided)
                sent = True
        if not waiting:
            self._release_resolved(group, resolved, group_now, decided)
        return sent, waiting

    def _contents(self, group: Group, held: set[str], regular: bool) -> list[Alert]:
        """The firing alerts a send carries. A regular send carries every visible one, as
        Alertmanager does. An urgent send (``regular`` false) carries what the receiver
        knows and what is urgent; other news waits for the group's timer. So a warning
        unmuted when its inhibitor resolved (a radio that reports mains 7 s after the site's
        grid is back) is not paged by the resolution: by the next flush it has resolved too.
        """
        route = group.route
        firing = [a for a in group.alerts.values() if self._visible(a, held)]
        if regular or route.receiver is None:
            return firing
        known = self.nflog.get((group.key, route.receiver))
        told = known.firing if known else frozenset()
        told_rank = self._told_rank(group, told)
        return [a for a in firing
                if a.fingerprint in told or _urgent_news(route, a, told, told_rank)]

    def _held_back(self, group: Group, held: set[str], regular: bool) -> bool:
        """Hold-back: a regular send waits while an alert of the group waits for a pending
        inhibitor, then tells everything at once (Alertmanager issue 2229: otherwise a target
        whose ``for`` ends first pages seconds before its inhibitor mutes it). An urgent send
        goes without the held alerts (:meth:`_contents` leaves them out)."""
        return regular and any(
            a.state is AlertState.FIRING and a.fingerprint in held for a in group.alerts.values()
        )

    def _dedup(
        self, previous: NflogEntry | None, firing: list[Alert], resolved: list[Alert]
    ) -> tuple[list[Alert], bool]:
        """Dedup against the log: (the resolved alerts to tell, is there news). News is a
        firing alert the receiver was not told, or the end of one it was told; a resolution
        it never heard of is not news. The log is persisted, so a restarted engine does not
        page the same firing set again."""
        told = previous.firing if previous else frozenset()
        tell_resolved = [a for a in resolved if a.fingerprint in told]
        news = bool(frozenset(a.fingerprint for a in firing) - told) or bool(tell_resolved)
        return tell_resolved, news

    def _update_due(
        self,
        group: Group,
        receiver: str,
        previous: NflogEntry | None,
        firing: list[Alert],
        regular: bool,
        group_now: float,
    ) -> bool:
        """An incident update without other news: the picture the receiver was told changed
        (for an urgent send: got worse; good news rides with a regular one), and only once
        the update gap since the group's last notification passed, so a flapping device
        cannot page every second."""
        if previous is None or not self._material_changed(
            group, receiver, firing, worse_only=not regular
        ):
            return False
        last = group.last_sent or previous.sent_at
        return group_now >= last + self._gap(group, group_now)

    def _repeat_due(
        self,
        route: Route,
        previous: NflogEntry | None,
        firing: list[Alert],
        acked: Acked,
        group_now: float,
    ) -> bool:
        """Alertmanager's ``repeat_interval``: nothing changed, but an alert still fires
        that nobody acknowledged, so the receiver is reminded; an acknowledged firing
        instance is not repeated."""
        return (
            bool(firing)
            and previous is not None
            and group_now - previous.sent_at >= route.repeat_interval
            and any(not acked(a) for a in firing)
        )

    def _record(
        self,
        group: Group,
        receiver: str,
        firing: list[Alert],
        tell_resolved: list[Alert],
        news: bool,
        group_now: float,
        decided: Decisions,
    ) -> None:
        """Log what the receiver has now been told (firing set, resolutions, pictures): the
        engine persists it with the notification in one transaction, so a page is never
        queued without the entry that says it was sent."""
        material = {a.fingerprint: a.material for a in firing if a.material is not None}
        entry = NflogEntry(
            frozenset(a.fingerprint for a in firing),
            frozenset(a.fingerprint for a in tell_resolved),
            group_now,
            material,
        )
        self.nflog[(group.key, receiver)] = entry
        decided.nflog.append((group.key, receiver, entry))
        self.told_material[(group.key, receiver)] = dict(material)
        self._widen_update_gap(group, news, group_now)
        group.last_sent = group_now

    def _widen_update_gap(self, group: Group, news: bool, group_now: float) -> None:
        """Update gap: after news it is back to ``update_interval``; after an update in a
        row it doubles (up to ``group_interval``), so a picture that keeps changing costs a
        few notifications, then one per ``group_interval``. Called before ``last_sent``
        moves: the gap doubled is the one this send waited for."""
        route = group.route
        if news:
            group.update_gap = min(route.update_interval, route.group_interval)
        else:
            group.update_gap = min(2 * self._gap(group, group_now), route.group_interval)

    def _release_resolved(
        self, group: Group, resolved: list[Alert], group_now: float, decided: Decisions
    ) -> None:
        """Resolved alerts leave the group once it looked at them (told, or never told so
        nothing to say); the escalation receiver hears of the end of what it was sent, and
        an alert no group holds any more is released to the engine to forget."""
        route = group.route
        escalated_resolved = [
            a for a in resolved if (a.fingerprint, a.starts_at) in self.escalated
        ]
        if route.escalate_to and escalated_resolved:
            decided.notifications.append(
                self._notification(
                    route.escalate_to, group, escalated_resolved, group_now, escalation=True
                )
            )
        for alert in resolved:
            group.alerts.pop(alert.fingerprint, None)
            if self._routes_of.pop(alert.fingerprint, None) is not None:
                decided.released.append(alert.fingerprint)

    # ------------------------------------------------------------------ escalation
    def _escalate(
        self, group: Group, group_now: float, acked: Acked, held: set[str], decided: Decisions
    ) -> None:
        route = group.route
        assert route.escalate_to is not None
        due = [
            a
            for a in group.alerts.values()
            if self._visible(a, held)
            and a.starts_at is not None
            and a.labels.get("severity") == "critical"
            and group_now - a.starts_at >= route.escalate_after
            and (a.fingerprint, a.starts_at) not in self.escalated
            and not acked(a)
        ]
        if not due:
            return
        for alert in due:
            assert alert.starts_at is not None
            self.escalated.add((alert.fingerprint, alert.starts_at))
            decided.escalations.append((alert.fingerprint, alert.starts_at, route.escalate_to))
        decided.notifications.append(
            self._notification(route.escalate_to, group, due, group_now, escalation=True)
        )

    def _notification(
        self,
        receiver: str,
        group: Group,
        alerts: Iterable[Alert],
        sent_at: float,
        escalation: bool = False,
    ) -> Notification:
        key = group.key + ("/escalation" if escalation else "")
        snapshots = sorted(
            (a.snapshot(self.external_url) for a in alerts),
            key=lambda s: (s.status != "firing", s.labels.get("alertname", ""), s.fingerprint),
        )
        payload = webhook_payload(
            receiver=receiver,
            group_labels=group.labels,
            key=key,
            alerts=snapshots,
            external_url=self.external_url,
        )
        payload["sentAt"] = sent_at  # Kordon's own field; receivers ignore unknown keys
        if escalation:
            payload["escalation"] = True
        return Notification(receiver, key, payload, escalation)
