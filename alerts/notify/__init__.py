"""Receivers, one module per kind (as Alertmanager's ``notify/``), and their registry.

Each kind module defines a :class:`~alerts.notify.base.ReceiverConfig` subclass (settings,
secrets, and the notifier it builds). :data:`RECEIVER_KINDS` drives everything that depends on
the kinds: validation of ``notify.receivers`` (:mod:`alerts.config.notify`), the secrets
``kordon config`` hides, the outbox's notifiers and the engine's fan-out of a notification to
every kind of its receiver. Every notifier takes the stored Alertmanager v4 payload
(:mod:`alerts.notify.payload`) and an idempotency key, and raises :class:`DeliveryError` on
failure, saying whether a retry can help.

Adding a receiver kind: write ``alerts/notify/<kind>.py`` with its config class and notifier,
name the class in :data:`RECEIVER_KINDS` below, and test it against a real server
(tests/alerts/test_receivers.py fails while a kind module is left out of the registry).
"""

from __future__ import annotations

from alerts.notify.alertmanager import AlertmanagerConfig
from alerts.notify.base import DeliveryError, Notifier, ReceiverConfig
from alerts.notify.email import EmailConfig
from alerts.notify.webhook import WebhookConfig

# The order is the order of the keys in error messages ("needs webhook: or email:").
RECEIVER_KINDS: dict[str, type[ReceiverConfig]] = {
    config.kind: config for config in (WebhookConfig, EmailConfig, AlertmanagerConfig)
}

__all__ = ["RECEIVER_KINDS", "DeliveryError", "Notifier", "ReceiverConfig"]
