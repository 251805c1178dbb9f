"""The notification payload: Prometheus Alertmanager's webhook format, version 4.

Every notification is stored in the outbox in this shape, whatever receiver takes it, so an
existing Alertmanager receiver (PagerDuty bridge, Matrix bot, ...) works unchanged and each
receiver kind renders from one agreed structure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kordon.model.alerts import Labels, rfc3339


@dataclass(frozen=True, slots=True)
class NotifiedAlert:
    """An alert as it goes into one notification (a snapshot, so retries send the same)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    status: str  # "firing" or "resolved"
    starts_at: float
    ends_at: float | None
    fingerprint: str
    generator_url: str = ""

    def to_webhook(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        for key in list(common):
            if other.get(key) != common[key]:
                del common[key]
    return common


def group_key(route_id: str, group_labels: Labels) -> str:
    """Alertmanager's group key text: ``{route}:{label="value",...}``."""
    inner = ",".join(f'{k}="{group_labels[k]}"' for k in sorted(group_labels))
    return f"{route_id}:{{{inner}}}"


def webhook_payload(
    *,
    receiver: str,
    group_labels: Labels,
    key: str,
    alerts: list[NotifiedAlert],
    external_url: str = "",
    max_alerts: int = 0,
) -> dict[str, Any]:
    """The Alertmanager webhook body, version 4.

    ``status`` is ``firing`` when at least one alert fires. With ``max_alerts`` the list is
    cut and ``truncatedAlerts`` says how many were left out, as Alertmanager does.
    """
    shown = alerts[:max_alerts] if max_alerts > 0 else alerts
    return {
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": len(alerts) - len(shown),
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": dict(group_labels),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [a.to_webhook() for a in shown],
    }
