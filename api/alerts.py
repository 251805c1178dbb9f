"""The alert store, as the API sees it: alerts with acks, silences, per-site counts.

Reads and writes go through the kernel's :mod:`kordon.storage.alert_store` (the alert engine
writes the same SQLite database in WAL mode), never through the ``alerts`` package. Every
value reaches SQLite as a bound parameter inside the store; nothing here builds SQL.
"""

from __future__ import annotations

import logging
from typing import Any

from api.problems import Problem, invalid_parameter
from api.schemas import SilenceRequest
from api.state import iso
from api.telemetry import parse_time
from kordon.clock import Clock
from kordon.config import Settings
from kordon.durations import parse_duration
from kordon.model.alerts import AlertRecord, AlertState, Matcher, Silence
from kordon.storage.alert_store import AlertStore, AlertStoreError

log = logging.getLogger("api.alerts")

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_STATES = {
    "active": (AlertState.FIRING, AlertState.PENDING),
    "firing": (AlertState.FIRING,),
    "pending": (AlertState.PENDING,),
    "resolved": (AlertState.RESOLVED,),
    "all": (AlertState.FIRING, AlertState.PENDING, AlertState.RESOLVED),
}
MAX_SILENCE = 30 * 86400.0


def _matcher_view(matcher: Matcher) -> dict[str, Any]:
    data = matcher.to_dict()
    return {
        "name": data["name"],
        "value": data["value"],
        "is_regex": data["isRegex"],
        "is_equal": data["isEqual"],
    }


def _silence_view(silence: Silence, now: float) -> dict[str, Any]:
    if silence.active(now):
        state = "active"
    elif now < silence.starts_at:
        state = "pending"
    else:
        state = "expired"
    return {
        "id": silence.id,
        "matchers": [_matcher_view(m) for m in silence.matchers],
        "starts_at": iso(silence.starts_at),
        "ends_at": iso(silence.ends_at),
        "created_by": silence.created_by,
        "comment": silence.comment,
        "state": state,
    }


class AlertsBackend:
    def __init__(self, store: AlertStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def close(self) -> None:
        self.store.close()

    def check(self) -> tuple[bool, str]:
        try:
            self.store.data_version()
        except Exception as exc:
            return False, f"{self.store.path}: {exc}"
        return True, f"{self.store.path} answers"

    # --- alerts ---------------------------------------------------------------------------
    def _view(
        self, record: AlertRecord, comments: dict[tuple[str, float], str], silences: list[Silence]
    ) -> dict[str, Any]:
        labels = {str(k): str(v) for k, v in record.labels.items()}
        ack = None
        if record.acked_by:
            ack = {
                "fingerprint": record.fingerprint,
                "by": record.acked_by,
                "at": iso(record.acked_at) or "",
                "comment": comments.get((record.fingerprint, record.starts_at or 0.0), ""),
            }
        return {
            "fingerprint": record.fingerprint,
            "alertname": labels.get("alertname", ""),
            "state": record.state.value,
            "severity": labels.get("severity", "warning"),
            "site": labels.get("site"),
            "device": labels.get("device"),
            "labels": labels,
            "annotations": {str(k): str(v) for k, v in record.annotations.items()},
            "starts_at": iso(record.starts_at or record.active_at),
            "ends_at": iso(record.ends_at),
            "updated_at": iso(record.updated_at) if record.updated_at else None,
            "ack": ack,
            "silenced_by": [s.id for s in silences if s.matches(labels)],
        }

    def list_alerts(
        self,
        *,
        state: str,
        site: str | None,
        severity: str | None,
        alertname: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        now = self.clock.now()
        records = self.store.alerts(states=_STATES[state], site=site)
        silences = self.store.silences(active_at=now)
        comments = {(a.fingerprint, a.starts_at): a.comment for a in self.store.acks()}
        views = [self._view(r, comments, silences) for r in records]
        views = [
            v
            for v in views
            if (severity is None or v["severity"] == severity)
            and (alertname is None or v["alertname"] == alertname)
        ]
        # newest first, then most severe first (stable sorts, applied in reverse order)
        views.sort(key=lambda v: v["starts_at"] or "", reverse=True)
        views.sort(key=lambda v: SEVERITY_RANK.get(v["severity"], 9))
        return views[:limit]

    def device_alerts(self, site: str, device: str) -> list[dict[str, Any]]:
        return [
            {
                "fingerprint": v["fingerprint"],
                "alertname": v["alertname"],
                "state": v["state"],
                "severity": v["severity"],
                "summary": v["annotations"].get("summary", ""),
                "starts_at": v["starts_at"],
                "acked": v["ack"] is not None,
            }
            for v in self.list_alerts(
                state="active", site=site, severity=None, alertname=None, limit=1000
            )
            if v["device"] == device
        ]

    def counts_by_site(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for record in self.store.alerts(states=(AlertState.FIRING,)):
            site = record.labels.get("site")
            if not site:
                continue
            entry = counts.setdefault(site, {"firing": 0, "critical": 0})
            entry["firing"] += 1
            if record.labels.get("severity") == "critical":
                entry["critical"] += 1
        return counts

    def ack(self, fingerprint: str, by: str, comment: str) -> dict[str, Any] | None:
        record = self.store.alert(fingerprint)
        if record is None:
            return None
        if record.state is not AlertState.FIRING:
            raise Problem(
                409,
                "alert-not-firing",
                "Alert not firing",
                f"alert {fingerprint} is {record.state.value}; only a firing alert can be "
                "acknowledged (an ack belongs to one firing instance)",
            )
        ack = self.store.ack(fingerprint, by, comment, self.clock.now())
        if ack is None:  # resolved between the two reads
            raise Problem(
                409,
                "alert-not-firing",
                "Alert not firing",
                f"alert {fingerprint} stopped firing; nothing to acknowledge",
            )
        log.info("alert %s acknowledged by %s", fingerprint, by)
        return {
            "fingerprint": fingerprint,
            "by": ack.author,
            "at": iso(ack.at) or "",
            "comment": ack.comment,
        }

    # --- silences -------------------------------------------------------------------------
    def list_silences(self, state: str) -> list[dict[str, Any]]:
        now = self.clock.now()
        views = [_silence_view(s, now) for s in self.store.silences()]
        if state != "all":
            views = [v for v in views if v["state"] == state]
        return views

    def create_silence(self, body: SilenceRequest, by: str, now: float) -> dict[str, Any]:
        starts = parse_time("starts_at", body.starts_at, now) if body.starts_at else now
        if body.ends_at:
            ends = parse_time("ends_at", body.ends_at, now)
        elif body.duration:
            try:
                ends = starts + parse_duration(body.duration)
            except ValueError as exc:
                raise invalid_parameter("duration", str(exc), body.duration) from None
        else:
            raise invalid_parameter("ends_at", "give ends_at or duration (e.g. 2h)")
        if ends <= max(starts, now):
            raise invalid_parameter("ends_at", "must be after starts_at and in the future")
        if ends - starts > MAX_SILENCE:
            raise invalid_parameter("ends_at", "a silence may last at most 30 days")
        matchers = []
        for index, m in enumerate(body.matchers):
            op = ("=~" if m.is_equal else "!~") if m.is_regex else ("=" if m.is_equal else "!=")
            try:
                matchers.append(Matcher.make(m.name, op, m.value))
            except ValueError as exc:
                raise invalid_parameter(f"matchers.{index}", str(exc), m.value) from None
        try:
            silence = self.store.add_silence(matchers, starts, ends, by, body.comment, now)
        except ValueError as exc:
            raise invalid_parameter("matchers", str(exc)) from None
        log.info(
            "silence %s created by %s: %s", silence.id, by, ", ".join(str(m) for m in matchers)
        )
        return _silence_view(silence, now)

    def expire_silence(self, silence_id: str, now: float) -> dict[str, Any] | None:
        found = [s for s in self.store.silences() if s.id == silence_id]
        if not found:
            return None
        self.store.expire_silence(silence_id, now)
        for silence in self.store.silences():
            if silence.id == silence_id:
                return _silence_view(silence, now)
        return None


def open_backend(settings: Settings, clock: Clock) -> AlertsBackend | None:
    """The store under ``data_dir``; None (alert endpoints answer 503) if it cannot open."""
    try:
        store = AlertStore.in_data_dir(settings.data_dir)
    except AlertStoreError as exc:
        log.error("alert store unavailable, alert endpoints answer 503: %s", exc)
        return None
    return AlertsBackend(store, clock)
