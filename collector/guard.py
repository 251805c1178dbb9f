"""Cardinality guard: a rogue or broken client must not explode InfluxDB's series count.

Every (site, kind, device) is a new series in InfluxDB, and a device that is not in the fleet
file is stored from its first message (design brief). A client that makes up device names,
or a firmware bug that puts a counter into the device id, would therefore create series
without end. The guard admits a device the first time it is seen only while

- fewer than ``max_new_per_minute`` new devices were admitted in the last 60 seconds, and
- fewer than ``max_devices`` devices are known in total.

A refused device is not remembered, so it is admitted once the rate allows: a burst of
genuine new hardware is slowed, not banned. The fleet file's devices are admitted up front
and never count against the rate. Admitted devices are appended to a file in the data
folder, so a restarted collector does not treat the whole fleet as new again (which would
trip the rate limit on every restart).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str, str]  # (site, kind, device)

REASON_RATE = "cardinality_rate"
REASON_TOTAL = "cardinality_total"
_WINDOW = 60.0


class CardinalityGuard:
    def __init__(
        self,
        max_new_per_minute: int,
        max_devices: int,
        known: Iterable[DeviceKey] = (),
        state_file: Path | None = None,
    ) -> None:
        self.max_new_per_minute = max_new_per_minute
        self.max_devices = max_devices
        self._known: set[DeviceKey] = set(known)
        self._admitted: deque[float] = deque()
        self._state = None
        if state_file is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            if state_file.exists():
                for line in state_file.read_text(encoding="utf-8", errors="replace").splitlines():
                    parts = tuple(line.split("/"))
                    if len(parts) == 3 and all(parts):
                        self._known.add(parts)  # type: ignore[arg-type]
            # Line-buffered, not fsynced: losing the tail on power loss only costs rate budget.
            self._state = state_file.open("a", encoding="utf-8", buffering=1)

    @property
    def known(self) -> int:
        return len(self._known)

    def check(self, key: DeviceKey, now: float) -> str | None:
        """``None`` if the device may be stored, else the reason it is refused."""
        if key in self._known:
            return None
        if len(self._known) >= self.max_devices:
            return REASON_TOTAL
        window = self._admitted
        while window and window[0] <= now - _WINDOW:
            window.popleft()
        if len(window) >= self.max_new_per_minute:
            return REASON_RATE
        window.append(now)
        self._known.add(key)
        if self._state is not None:
            self._state.write("/".join(key) + "\n")
        log.info("new device %s/%s/%s (%d known)", *key, len(self._known))
        return None

    def explain(self, reason: str, key: DeviceKey) -> str:
        site, kind, device = key
        if reason == REASON_TOTAL:
            return (
                f"device {site}/{kind}/{device} refused: {len(self._known)} devices are known, "
                f"the limit collector.max_devices is {self.max_devices}"
            )
        return (
            f"device {site}/{kind}/{device} refused: more than {self.max_new_per_minute} new "
            "devices in the last minute (collector.max_new_devices_per_minute); it is admitted "
            "once the rate falls"
        )

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None
