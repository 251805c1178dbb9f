"""Delivers the outbox: every notification was stored (in the same transaction as the
notification log) before anything is sent, so a crash or a dead receiver loses nothing.

Delivery is at least once: a notification is marked delivered only after the receiver
answered; a crash in between sends it again, with the same ``Idempotency-Key``. Failures
back off exponentially (``retry_min`` doubling up to ``retry_max``) until ``give_up_after``.

A notification for receiver ``oncall`` is stored once per kind it has (``oncall/webhook``,
``oncall/email``: :func:`fan_out`), each with its own idempotency key and its own retries, so
a dead mail server delays no webhook. The receiver registry (:mod:`alerts.notify`) builds the
notifier of each target; nothing here names a receiver kind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alerts.config import NotifySettings
from alerts.dispatch import Notification
from alerts.notify import DeliveryError, Notifier
from kordon.storage.alert_store import AlertStore, OutboxItem

log = logging.getLogger("alerts.outbox")


def targets_of(settings: NotifySettings) -> dict[str, list[str]]:
    """Receiver name -> its outbox targets (``name/kind``) for routed notifications, in
    registry order. Kinds that take every alert instead (``routed`` false: Alertmanager) are
    left out: :mod:`alerts.push` feeds them."""
    targets: dict[str, list[str]] = {}
    for target, config in settings.integrations().items():
        if not config.routed:
            continue
        name, _, _kind = target.rpartition("/")
        targets.setdefault(name, []).append(target)
    return targets


def fan_out(
    notes: Iterable[Notification], targets: Mapping[str, Sequence[str]]
) -> list[tuple[str, str, dict[str, Any]]]:
    """Outbox rows (target, idempotency key, payload): each notification once per target of
    its receiver. A receiver that is not configured gets nothing."""
    return [
        (target, note.idempotency_key(target), note.payload)
        for note in notes
        for target in targets.get(note.receiver, ())
    ]


def build_notifiers(settings: NotifySettings) -> dict[str, Notifier]:
    return {target: config.notifier() for target, config in settings.integrations().items()}


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
        # Updated by the pool's threads, read by anyone: only under _lock.
        self._lock = threading.Lock()
        self._stats = {"delivered": 0, "failed_attempts": 0, "given_up": 0}
        self._failing: set[str] = set()

    @property
    def stats(self) -> dict[str, int]:
        """A copy of the counters (delivered, failed_attempts, given_up)."""
        with self._lock:
            return dict(self._stats)

    @property
    def failing(self) -> frozenset[str]:
        """Targets whose last delivery attempt failed."""
        with self._lock:
            return frozenset(self._failing)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.set()
        if self._thread.ident is not None:  # started (tests drive deliver_due directly)
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
            self._count("given_up")
            return True
        try:
            notifier.send(item.payload, item.idempotency_key)
        except DeliveryError as exc:
            self._count("failed_attempts")
            age = now - item.created_at
            if not exc.retryable or age >= self.settings.give_up_after:
                log.error("giving up on notification %d to %s: %s", item.id, item.receiver, exc)
                self.store.failed(item.id, str(exc), None, now)
                self._count("given_up")
                return True
            delay = min(self.settings.retry_min * 2 ** min(item.attempts, 20),
                        self.settings.retry_max)
            with self._lock:
                first_failure = item.receiver not in self._failing
                self._failing.add(item.receiver)
            if first_failure:
                log.warning("delivery to %s failed (%s); retrying in %.1f s",
                            item.receiver, exc, delay)
            self.store.failed(item.id, str(exc), now + delay, now)
            return False
        self.store.delivered(item.id, self.clock())
        with self._lock:
            self._stats["delivered"] += 1
            recovered = item.receiver in self._failing
            self._failing.discard(item.receiver)
        if recovered:
            log.info("delivery to %s works again", item.receiver)
        return True

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1
