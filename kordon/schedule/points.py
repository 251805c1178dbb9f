"""Planned cuts as points of the measurement ``outage_schedule``, for Grafana's annotations.

One point per site and cut, at the cut's start (stream time, like every Kordon timestamp):
tags ``site`` and ``group``; fields ``time_end`` (the cut's end, epoch milliseconds: what
Grafana's InfluxQL annotations read as the end of a region, ``timeEndColumn``), ``duration_s``,
``definite`` (false for a "possibly off" slot), ``status`` (``planned``, or ``cancelled`` when a
later read of the schedule dropped a cut not yet begun) and ``summary`` (the annotation's
text). A cut written again overwrites its point (same series, same time), so a lengthened
cut is simply rewritten and a cancelled one is rewritten with ``status="cancelled"``: InfluxDB's
write API cannot delete, and the dashboards show only ``planned``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from kordon.schedule.model import Cut
from kordon.storage.lineprotocol import encode_line
from kordon.storage.telemetry import SCHEDULE_MEASUREMENT

PLANNED = "planned"
CANCELLED = "cancelled"


def cut_summary(site: str, cut: Cut, zone: ZoneInfo) -> str:
    start = datetime.fromtimestamp(cut.start, zone)
    end = datetime.fromtimestamp(cut.end, zone)
    hours = cut.duration / 3600.0
    maybe = "possible " if not cut.definite else ""
    return (f"{site}: {maybe}scheduled cut {start:%a %d %b %H:%M}-{end:%H:%M} "
            f"({hours:.1f} h, group {cut.group})")


def cut_line(site: str, cut: Cut, zone: ZoneInfo, status: str = PLANNED) -> str:
    return encode_line(
        SCHEDULE_MEASUREMENT,
        {"site": site, "group": cut.group},
        {
            "time_end": float(round(cut.end * 1000.0)),
            "duration_s": float(cut.duration),
            "definite": cut.definite,
            "status": status,
            "summary": cut_summary(site, cut, zone),
        },
        round(cut.start * 1e9),
    )
