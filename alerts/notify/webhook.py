"""Webhook receiver: POST the Alertmanager webhook payload (version 4) as JSON.

Existing Alertmanager receivers work unchanged. The ``Idempotency-Key`` header is the same
on every retry of one notification, so a receiver that saw the first attempt (whose reply
was lost) can drop the repeat.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import Field, field_validator

from alerts.notify.base import DeliveryError, Notifier, ReceiverConfig
from kordon.config import http_url
from kordon.durations import Duration


class WebhookConfig(ReceiverConfig):
    """``webhook: {url: ..., headers: {...}, timeout: 10s, max_alerts: 0}``."""

    kind: ClassVar[str] = "webhook"
    # The URL too: webhook endpoints often carry their token in the path (Slack, Teams).
    secrets: ClassVar[frozenset[str]] = frozenset({"url", "headers"})

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10.0
    max_alerts: int = Field(0, ge=0, description="0 sends every alert of the group")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    def notifier(self) -> Notifier:
        return WebhookNotifier(self)


class WebhookNotifier:
    def __init__(self, settings: WebhookConfig) -> None:
        self.settings = settings
        self._http = httpx.Client(
            timeout=settings.timeout,
            headers={"User-Agent": "kordon-alerts", **settings.headers},
        )

    def send(self, payload: dict[str, Any], idempotency_key: str) -> None:
        body = dict(payload)
        body.pop("sentAt", None)
        body.pop("escalation", None)
        if self.settings.max_alerts and len(body["alerts"]) > self.settings.max_alerts:
            body["truncatedAlerts"] = len(body["alerts"]) - self.settings.max_alerts
            body["alerts"] = body["alerts"][: self.settings.max_alerts]
        try:
            response = self._http.post(
                self.settings.url, json=body, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code // 100 == 2:
            return
        # 4xx other than 408/429 means the receiver refuses this body: retrying cannot help.
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise DeliveryError(
            f"HTTP {response.status_code}: {response.text[:200]}", retryable=retryable
        )

    def close(self) -> None:
        self._http.close()
