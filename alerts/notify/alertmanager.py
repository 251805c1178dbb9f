"""Alertmanager receiver: push alerts to every node's ``/api/v2/alerts``, as Prometheus does.

Unlike the other kinds this receiver is not a target of Kordon's routing tree (``routed`` is
false): :mod:`alerts.push` sends it *every* firing alert (and each resolved one for a while
after), re-sent every ``resend_delay``, and Alertmanager does the grouping, routing, silencing,
inhibition and, across a cluster, the deduplication. Kordon's built-in routing keeps serving
installations without Alertmanager.

The stored payload is the usual webhook v4 shape plus two Kordon fields the pusher sets:
``pushedAt`` (wall-clock seconds of the snapshot) and ``validUntil`` (wall-clock seconds until
which a firing alert is good). A firing alert is posted with ``endsAt = validUntil`` (Prometheus:
evaluation time + 4 x max(resend delay, evaluation interval)), so Alertmanager resolves it by
itself if every engine stops, and a retry of an old snapshot cannot keep a stale alert firing.
A resolved alert is posted with ``endsAt`` = its resolve time. Times are clamped to the wall
clock of the snapshot (an engine on a scenario clock may be ahead of it), because Alertmanager
judges ``endsAt`` on its own wall clock and refuses ``endsAt`` before ``startsAt``.

Every listed node gets every push (Alertmanager nodes gossip silences and the notification log,
not alerts). A push counts as delivered when at least one node took it, as in Prometheus: a
node that was down catches up on the next resend; only when no node answers does the outbox
retry.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.notify.base import DeliveryError, Notifier, ReceiverConfig
from kordon.config import http_url
from kordon.durations import Duration
from kordon.model.alerts import rfc3339
from kordon.redact import MASK, redact_url

log = logging.getLogger("alerts.notify.alertmanager")

API_PATH = "/api/v2/alerts"


class BasicAuth(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str
    password: str


class AlertmanagerConfig(ReceiverConfig):
    """``alertmanager: {urls: [http://am-1:9093, ...], resend_delay: 1m, basic_auth: {...}}``."""

    kind: ClassVar[str] = "alertmanager"
    routed: ClassVar[bool] = False
    secrets: ClassVar[frozenset[str]] = frozenset({"basic_auth", "bearer_token", "headers"})

    urls: list[str] = Field(
        ..., min_length=1, description="every Alertmanager node (base URL; /api/v2/alerts added)"
    )
    resend_delay: Duration = Field(
        60.0, gt=0, description="re-send every firing alert this often (Prometheus: 1m)"
    )
    resolved_retention: Duration = Field(
        900.0, ge=0, description="keep re-sending a resolved alert this long (Prometheus: 15m)"
    )
    timeout: Duration = 10.0
    basic_auth: BasicAuth | None = None
    bearer_token: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True

    @field_validator("urls")
    @classmethod
    def _urls(cls, values: list[str]) -> list[str]:
        found = [http_url(v).rstrip("/").removesuffix(API_PATH) for v in values]
        if len(set(found)) != len(found):
            raise ValueError("each Alertmanager node once")
        return found

    @model_validator(mode="after")
    def _one_auth(self) -> AlertmanagerConfig:
        if self.basic_auth is not None and self.bearer_token:
            raise ValueError("basic_auth or bearer_token, not both")
        return self

    def redacted(self) -> dict[str, Any]:
        data = super().redacted()
        data["urls"] = [redact_url(u) for u in self.urls]
        if self.basic_auth is not None:
            data["basic_auth"] = {"username": self.basic_auth.username, "password": MASK}
        return data

    def notifier(self) -> Notifier:
        return AlertmanagerNotifier(self)


def postable_alerts(payload: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """The ``postableAlerts`` body (api/v2/openapi.yaml) of one stored push.

    ``now`` (wall clock) stands in for ``pushedAt``/``validUntil`` in a payload without them
    (a routed notification queued before this kind existed cannot reach here, but a Watchdog
    or a hand-written row might).
    """
    pushed = float(payload.get("pushedAt") or now)
    valid_until = float(payload.get("validUntil") or pushed + 240.0)
    out = []
    for alert in payload["alerts"]:
        starts = _epoch(alert.get("startsAt")) or pushed
        if alert.get("status") == "resolved":
            ends = min(_epoch(alert.get("endsAt")) or pushed, pushed)
        else:
            ends = valid_until
        starts = min(starts, pushed, ends)
        item: dict[str, Any] = {
            "labels": {k: v for k, v in alert["labels"].items() if v != ""},
            "annotations": dict(alert.get("annotations") or {}),
            "startsAt": rfc3339(starts),
            "endsAt": rfc3339(ends),
        }
        if alert.get("generatorURL"):
            item["generatorURL"] = alert["generatorURL"]
        out.append(item)
    return out


def _epoch(text: str | None) -> float | None:
    from datetime import datetime

    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AlertmanagerNotifier:
    def __init__(self, settings: AlertmanagerConfig) -> None:
        self.settings = settings
        headers = {"User-Agent": "kordon-alerts", **settings.headers}
        if settings.bearer_token:
            headers["Authorization"] = f"Bearer {settings.bearer_token}"
        auth = None
        if settings.basic_auth is not None:
            auth = httpx.BasicAuth(settings.basic_auth.username, settings.basic_auth.password)
        self._http = httpx.Client(
            timeout=settings.timeout, headers=headers, auth=auth, verify=settings.verify_tls
        )
        self._pool = ThreadPoolExecutor(
            max(1, len(settings.urls)), thread_name_prefix="alertmanager"
        )
        self._failing: set[str] = set()

    def send(self, payload: dict[str, Any], idempotency_key: str) -> None:
        body = postable_alerts(payload, time.time())
        if not body:
            return
        results = list(self._pool.map(lambda url: self._post(url, body), self.settings.urls))
        failures = [r for r in results if r is not None]
        if len(failures) < len(results):
            return  # at least one node took it; the others catch up on the next resend
        raise DeliveryError(
            "; ".join(str(f) for f in failures),
            retryable=any(f.retryable for f in failures),
        )

    def _post(self, url: str, body: list[dict[str, Any]]) -> DeliveryError | None:
        shown = redact_url(url)
        try:
            response = self._http.post(url + API_PATH, json=body)
        except httpx.HTTPError as exc:
            error = DeliveryError(f"{shown}: {type(exc).__name__}: {exc}")
        else:
            if response.status_code // 100 == 2:
                if url in self._failing:
                    self._failing.discard(url)
                    log.info("Alertmanager %s takes alerts again", shown)
                return None
            # 400: Alertmanager refused some alerts of the batch (it keeps the valid ones).
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
            error = DeliveryError(
                f"{shown}: HTTP {response.status_code}: {response.text[:200]}",
                retryable=retryable,
            )
        if url not in self._failing:
            self._failing.add(url)
            log.warning("Alertmanager %s: %s", shown, error)
        return error

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()
