"""The process-wide Prometheus registry that every role registers its counters into.

``kordon run --roles collector,alerts,api`` runs several roles in one process; the API's
``/metrics`` then shows every role's counters because they all live in :data:`REGISTRY`. Roles
in processes of their own serve the same registry on their own port (``metrics_addr``). The
registry is ours rather than prometheus_client's global one, so library defaults (process and
GC collectors) appear only where we choose to add them and tests can build roles repeatedly.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
_registered: dict[str, Collector] = {}
_lock = threading.Lock()


def register(key: str, collector: Collector) -> None:
    """Add ``collector`` under ``key``, replacing an earlier one of the same key.

    Replacing (rather than failing on duplicate metric names) lets a role be built again in
    the same process, as tests and a restarted role do.
    """
    with _lock:
        old = _registered.pop(key, None)
        if old is not None:
            REGISTRY.unregister(old)
        REGISTRY.register(collector)
        _registered[key] = collector


def unregister(key: str) -> None:
    """Remove the collector registered under ``key``; a missing key is not an error."""
    with _lock:
        old = _registered.pop(key, None)
        if old is not None:
            REGISTRY.unregister(old)


def exposition() -> bytes:
    """Every registered collector in the Prometheus text format (version 0.0.4)."""
    return generate_latest(REGISTRY)
