"""The schedules a forecast is made against: a simulated stream's own plan, else the sources.

A scenario whose grid follows an outage schedule announces that schedule with its clock
(:mod:`kordon.streamclock`, ``plan``). While the stream holds a site, the site's forecast is
made against the plan, on the stream's time, exactly as ``kordon scenario verify`` makes it;
the configured sources (real published schedules) would be for another day and another grid.
Every other site, and a streamed site the plan gives no group, keeps the configured sources.
"""

from __future__ import annotations

from kordon.schedule import Outlook, SiteSchedules, unknown
from kordon.streamclock import StreamClocks

NO_SOURCE = "no schedule source for this site"


class StreamPlans:
    """A :class:`~kordon.schedule.SiteSchedules` that prefers a live stream's plan."""

    def __init__(self, clocks: StreamClocks, configured: SiteSchedules | None) -> None:
        self.clocks = clocks
        self.configured = configured

    def outlook(self, site: str, now: float) -> Outlook:
        found = self.clocks.plan(site)
        if found is not None:
            stream, group, schedule = found
            return schedule.outlook(group, now).with_origin(f"stream {stream}", group)
        if self.configured is not None:
            return self.configured.outlook(site, now)
        return unknown(NO_SOURCE)
