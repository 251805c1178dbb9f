"""Receivers, one module each (as Alertmanager's ``notify/``): webhook and email.

Every receiver takes the stored Alertmanager v4 payload and an idempotency key, and raises
:class:`DeliveryError` on failure, saying whether a retry can help.
"""

from __future__ import annotations


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
