"""What every role is to the process that runs it: start, stop without loss, say if healthy.

The role packages (``collector``, ``alerts``, ``api``) each expose
``build(settings, clock) -> <something that is a Role>``; the composition layer
(``composition.roles``) builds them by name for ``kordon run`` and ``kordon demo``.
"""

from __future__ import annotations

from typing import Protocol


class Role(Protocol):
    name: str

    def start(self) -> None:
        """Start background work and return."""
        ...

    def stop(self, timeout: float = 10.0) -> None:
        """Finish in-flight work (nothing acknowledged may be lost) and return."""
        ...

    def healthy(self) -> bool: ...
