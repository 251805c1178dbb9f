"""Publishing the forecast: the snapshot file the API reads, the cuts Grafana annotates.

After an evaluation of :class:`~alerts.foresight.evaluator.Foresight` the role asks
:meth:`ForesightPublisher.collect` (under the engine's lock: it only copies dictionaries) for
what to publish, and hands that to :meth:`ForesightPublisher.write` outside the lock, which
replaces ``$KORDON_DATA_DIR/foresight.json`` (:mod:`kordon.schedule.snapshot`) and queues the
new or changed cuts for the measurement ``outage_schedule`` (:mod:`kordon.schedule.points`).

The file is written at most every ``min_interval`` wall seconds (a stream at 600x evaluates
ten times a second) and at least every ``heartbeat``, so the API can tell a live forecast from
one a stopped alerts role left behind. Cuts are written when first seen or changed; a cut that
has not begun and that a later read of a *known* schedule no longer lists is rewritten as
``cancelled``. Which cuts were written is kept in memory only: after a restart every cut
ahead is written again, which overwrites the same points.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.foresight.evaluator import Foresight
from kordon.schedule import Cut, Outlook, OutlookStatus
from kordon.schedule.points import CANCELLED, cut_line
from kordon.schedule.snapshot import SNAPSHOT_VERSION, write_snapshot

log = logging.getLogger("alerts.foresight")

CANCEL_WITHIN_S = 24 * 3600.0  # under the outlook's 36 h horizon: beyond it, absent != dropped
FORGET_AFTER_S = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class Pending:
    document: dict[str, Any]
    lines: list[str]


class ForesightPublisher:
    def __init__(self, path: Path, zone: ZoneInfo,
                 submit_line: Callable[[str], None] | None = None, *,
                 min_interval: float = 1.0, heartbeat: float = 60.0) -> None:
        self.path = path
        self.zone = zone
        self.submit_line = submit_line
        self.min_interval = min_interval
        self.heartbeat = heartbeat
        self._seen = -1  # Foresight.evaluations at the last collect
        self._last_wall = float("-inf")
        self._cuts: dict[tuple[str, float], Cut] = {}  # (site, start) -> the cut written
        self._failing = False

    def collect(self, foresight: Foresight, wall: float) -> Pending | None:
        """What to publish now, or None. Call with the engine's lock held."""
        fresh = foresight.evaluations != self._seen
        since = wall - self._last_wall
        if foresight.evaluated_at is None or since < (self.min_interval if fresh else
                                                       self.heartbeat):
            return None
        self._seen = foresight.evaluations
        self._last_wall = wall
        now = foresight.evaluated_at
        sites: dict[str, dict[str, Any]] = {
            site: {"outlook": outlook.to_dict(), "ups": [],
                   "evaluated_at": foresight.site_evaluated_at.get(site, now)}
            for site, outlook in sorted(foresight.outlooks.items())
        }
        for (site, _device), verdict in sorted(foresight.verdicts.items()):
            entry = sites.setdefault(site, {"outlook": None, "ups": []})
            entry["ups"].append(verdict.to_dict())
        document = {"version": SNAPSHOT_VERSION, "written_at": wall, "evaluated_at": now,
                    "sites": sites}
        lines = (self._cut_lines(foresight.outlooks, foresight.site_evaluated_at, now)
                 if self.submit_line else [])
        return Pending(document, lines)

    def write(self, pending: Pending) -> None:
        """Replace the snapshot file and queue the cut points. Never raises."""
        try:
            write_snapshot(self.path, pending.document)
            if self._failing:
                log.info("foresight snapshot %s written again", self.path)
            self._failing = False
        except OSError as exc:
            if not self._failing:
                log.error("cannot write the foresight snapshot %s: %s", self.path, exc)
            self._failing = True
        if self.submit_line is not None:
            for line in pending.lines:
                self.submit_line(line)

    def _cut_lines(self, outlooks: dict[str, Outlook], site_now: dict[str, float],
                   latest: float) -> list[str]:
        lines = []
        for site, outlook in outlooks.items():
            now = site_now.get(site, latest)
            if outlook.status is not OutlookStatus.KNOWN:
                continue  # unknown or emergency: what was planned stays as written
            listed = {(site, cut.start): cut for cut in outlook.cuts}
            for key, cut in listed.items():
                if self._cuts.get(key) != cut:
                    self._cuts[key] = cut
                    lines.append(cut_line(site, cut, self.zone))
            horizon = min(outlook.known_until or now, now + CANCEL_WITHIN_S)
            for key, cut in list(self._cuts.items()):
                if key[0] == site and key not in listed and now < cut.start < horizon:
                    del self._cuts[key]
                    lines.append(cut_line(site, cut, self.zone, CANCELLED))
        for key, cut in list(self._cuts.items()):
            if cut.end < site_now.get(key[0], latest) - FORGET_AFTER_S:
                del self._cuts[key]
        return lines
