"""Outage schedules (issue 15): the data model, the three published formats, and sources
refreshed on an interval with the last good copy kept durably. A kernel package: the alert
engine forecasts against it, the API shows it and the simulator plays it."""

from kordon.schedule.formats import FORMATS, ScheduleFormatError, parse
from kordon.schedule.model import (
    Cut,
    DayStatus,
    GroupDay,
    Outlook,
    OutlookStatus,
    Schedule,
    merge_cuts,
    unknown,
)
from kordon.schedule.sources import (
    ScheduleService,
    ScheduleSource,
    SiteSchedules,
    SourceState,
    StaticSchedules,
)

__all__ = [
    "FORMATS",
    "Cut",
    "DayStatus",
    "GroupDay",
    "Outlook",
    "OutlookStatus",
    "Schedule",
    "ScheduleFormatError",
    "ScheduleService",
    "ScheduleSource",
    "SiteSchedules",
    "SourceState",
    "StaticSchedules",
    "merge_cuts",
    "parse",
    "unknown",
]
