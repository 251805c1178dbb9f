"""Alert instances and their life cycle: inactive -> pending (``for``) -> firing -> resolved.

The rules report a condition per alert key (true or false, with fresh annotations) whenever
they evaluate; :meth:`Alert.step` moves the state on the engine's clock. ``keep_firing_for``
keeps an alert firing after its condition clears, so a value that hovers at a threshold
does not page on every crossing. An alert restored from the store after a restart is held
firing until fresh data says otherwise (or ``restore_grace`` passes), so a restart neither
re-pages nor silently drops an incident.
"""

from __future__ import annotations

from alerts.notify.payload import NotifiedAlert
from kordon.model.alerts import AlertRecord, AlertState, Facts, fingerprint

AlertKey = tuple[str, str, str]  # (alertname, site, device or "")


class Alert:
    __slots__ = (
        "active_at",
        "annotations",
        "cleared_at",
        "condition",
        "ended_notes",
        "ends_at",
        "fingerprint",
        "for_",
        "inhibited_by",
        "keep_firing_for",
        "key",
        "labels",
        "material",
        "persisted",
        "priority",
        "restore_until",
        "silenced_by",
        "starts_at",
        "state",
    )

    def __init__(
        self,
        key: AlertKey,
        labels: dict[str, str],
        annotations: dict[str, str],
        now: float,
        for_: float,
        keep_firing_for: float,
        priority: int,
    ) -> None:
        self.key = key
        self.labels = labels
        self.fingerprint = fingerprint(labels)
        self.annotations = annotations
        self.state = AlertState.PENDING
        self.active_at = now
        self.starts_at: float | None = None
        self.ends_at: float | None = None
        self.condition = True
        self.cleared_at: float | None = None
        self.for_ = for_
        self.keep_firing_for = keep_firing_for
        self.priority = priority
        self.restore_until: float | None = None
        self.silenced_by: list[str] = []
        self.inhibited_by: list[str] = []
        self.persisted = False
        # What an update of this alert's group is sent for when it changes (the site
        # incident, alerts.incident); None for alerts whose text only rides along.
        self.material: Facts | None = None  # the incident's picture (alerts.incident)
        # The words for after: what happened, set while the condition is false, shown once
        # the alert resolves (so a resolved notice never repeats the last estimate).
        self.ended_notes: dict[str, str] | None = None

    @property
    def name(self) -> str:
        return self.key[0]

    def relabel(self, labels: dict[str, str]) -> None:
        """Labels may still change while pending (e.g. a cause found); frozen once firing."""
        if self.state is AlertState.PENDING and labels != self.labels:
            self.labels = labels
            self.fingerprint = fingerprint(labels)

    def set_condition(self, active: bool, now: float) -> None:
        if active:
            self.ended_notes = None
            self.condition = True
            self.cleared_at = None
            self.restore_until = None
        else:
            if self.condition:
                self.cleared_at = now
            self.condition = False
            self.restore_until = None  # fresh data decided: no more benefit of the doubt

    def step(self, now: float) -> AlertState | None:
        """Advance on the clock; returns the new state when it changed (INACTIVE = drop).

        Times are those of the evidence: ``startsAt`` is when ``for`` ran out and ``endsAt``
        when keep-firing did, even if the step comes later (a stream's alerts are stepped on
        its watermark, and may learn only then that a condition held long enough before it
        cleared)."""
        if self.state is AlertState.PENDING:
            if not self.condition:
                cleared = self.cleared_at
                if cleared is not None and cleared - self.active_at > self.for_:
                    self.state = AlertState.FIRING  # it held long enough before it cleared
                    self.starts_at = self.active_at + self.for_
                    return self.state
                self.state = AlertState.INACTIVE
                return self.state
            if now - self.active_at >= self.for_:
                self.state = AlertState.FIRING
                self.starts_at = min(now, self.active_at + self.for_)
                return self.state
            return None
        if self.state is AlertState.FIRING and not self.condition:
            if self.restore_until is not None and now < self.restore_until:
                return None
            cleared = self.cleared_at if self.cleared_at is not None else now
            if self.restore_until is not None or now - cleared >= self.keep_firing_for:
                self.state = AlertState.RESOLVED
                self.ends_at = now
                if self.restore_until is None and self.cleared_at is not None:
                    self.ends_at = max(min(now, cleared + self.keep_firing_for),
                                       self.starts_at or now)
                if self.ended_notes:
                    self.annotations = self.ended_notes
                return self.state
        return None

    def next_due(self) -> float | None:
        """When :meth:`step` may next change something without new input."""
        if self.state is AlertState.PENDING and self.condition:
            return self.active_at + self.for_
        if self.state is AlertState.FIRING and not self.condition:
            if self.restore_until is not None:
                return self.restore_until
            return (self.cleared_at or 0.0) + self.keep_firing_for
        return None

    @property
    def suppressed(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)

    def record(self, now: float) -> AlertRecord:
        return AlertRecord(
            fingerprint=self.fingerprint,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            state=self.state,
            active_at=self.active_at,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            updated_at=now,
            silenced_by=list(self.silenced_by),
            inhibited_by=list(self.inhibited_by),
        )

    def snapshot(self, generator_url: str = "") -> NotifiedAlert:
        firing = self.state is AlertState.FIRING
        return NotifiedAlert(
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            status="firing" if firing else "resolved",
            starts_at=self.starts_at or self.active_at,
            ends_at=None if firing else self.ends_at,
            fingerprint=self.fingerprint,
            generator_url=generator_url,
        )

    @classmethod
    def restored(
        cls, record: AlertRecord, for_: float, keep: float, priority: int, until: float
    ) -> Alert:
        labels = record.labels
        key = (labels.get("alertname", ""), labels.get("site", ""), labels.get("device", ""))
        alert = cls(key, dict(labels), dict(record.annotations), record.active_at, for_, keep,
                    priority)
        alert.fingerprint = record.fingerprint
        alert.state = AlertState.FIRING
        alert.starts_at = record.starts_at
        alert.condition = False
        alert.cleared_at = None
        alert.restore_until = until
        alert.persisted = True
        return alert
