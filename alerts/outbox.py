"""Delivers the outbox: every notification was stored (in the same transaction as the
notification log) before anything is sent, so a crash or a dead receiver loses nothing.

Delivery is at least once: a notification is marked delivered only after the receiver
answered; a crash in between sends it again, with the same ``Idempotency-Key``. Failures
back off exponentially (``retry_min`` doubling up to ``retry_max``) until ``give_up_after``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from alerts.notify import DeliveryError
from alerts.notify.email import EmailNotifier
from alerts.notify.webhook import WebhookNotifier
from kordon.alerting_config import NotifySettings
from kordon.storage.alert_store import AlertStore, OutboxItem

log = logging.getLogger("alerts.outbox")


class Notifier(Protocol):
    def send(self, payload: dict[str, Any], idempotency_key: str) -> None: ...

    def close(self) -> None: ...


def build_notifiers(settings: NotifySettings) -> dict[str, Notifier]:
    notifiers: dict[str, Notifier] = {}
    for name, receiver in settings.all_receivers().items():
        if receiver.webhook is not None:
            notifiers[f"{name}/webhook"] = WebhookNotifier(receiver.webhook)
        if receiver.email is not None:
            notifiers[f"{name}/email"] = EmailNotifier(receiver.email)
    return notifiers


class OutboxSender:
    def __init__(
        self, store: AlertStore, settings: NotifySettings, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.settings = settings.outbox
        self.clock = clock
        self.notifiers = build_notifiers(settings)
        self.wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerts-outbox", daemon=True)
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="notify")
        self.stats = {"delivered": 0, "failed_attempts": 0, "given_up": 0}
        self.failing: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for notifier in self.notifiers.values():
            notifier.close()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
                wait = self._wait_time()
            except Exception:
                log.exception("outbox loop error; retrying in 1 s")
                wait = 1.0
            self.wakeup.wait(wait)
            self.wakeup.clear()

    def _wait_time(self) -> float:
        nxt = self.store.next_attempt_at()
        if nxt is None:
            return 5.0
        return min(max(nxt - self.clock(), 0.01), 5.0)

    def deliver_due(self) -> int:
        items = self.store.due(self.clock(), limit=200)
        if not items:
            return 0
        # Per receiver in order; receivers in parallel, so one dead receiver delays no other.
        by_receiver: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_receiver.setdefault(item.receiver, []).append(item)
        futures = [self._pool.submit(self._deliver_all, batch) for batch in by_receiver.values()]
        for future in futures:
            future.result()
        return len(items)

    def _deliver_all(self, items: list[OutboxItem]) -> None:
        for item in items:
            if not self._deliver(item):
                return  # keep order: later pages to a failing receiver wait their turn

    def _deliver(self, item: OutboxItem) -> bool:
        notifier = self.notifiers.get(item.receiver)
        now = self.clock()
        if notifier is None:
            self.store.failed(item.id, f"receiver {item.receiver} is not configured", None, now)
            self.stats["given_up"] += 1
            return True
        try:
            notifier.send(item.payload, item.idempotency_key)
        except DeliveryError as exc:
            self.stats["failed_attempts"] += 1
            age = now - item.created_at
            if not exc.retryable or age >= self.settings.give_up_after:
                log.error("giving up on notification %d to %s: %s", item.id, item.receiver, exc)
                self.store.failed(item.id, str(exc), None, now)
                self.stats["given_up"] += 1
                return True
            delay = min(self.settings.retry_min * 2 ** min(item.attempts, 20),
                        self.settings.retry_max)
            if item.receiver not in self.failing:
                log.warning("delivery to %s failed (%s); retrying in %.1f s",
                            item.receiver, exc, delay)
            self.failing.add(item.receiver)
            self.store.failed(item.id, str(exc), now + delay, now)
            return False
        self.store.delivered(item.id, self.clock())
        self.stats["delivered"] += 1
        if item.receiver in self.failing:
            self.failing.discard(item.receiver)
            log.info("delivery to %s works again", item.receiver)
        return True
