"""Outage schedules as data: the cuts each queue group gets, day by day, and how sure we are.

Ukrainian distribution operators publish a schedule per *queue group* ("3", "3.1"): for today
and, from the afternoon on, tomorrow, the slots in which the group is switched off, and a status
for the day (the schedule applies, a schedule is still awaited, emergency shutdowns replace it,
no outages). Kordon keeps exactly that: per group, the days the source *covers*, each with its
status and cuts. A moment outside every covered day is **unknown**, never "no cuts": a schedule
bot that reads a missing day as a quiet one is how a crossing goes dark unwarned.

Times are epoch seconds; a day is the civil day in the schedule's time zone (Europe/Kyiv), so
a 23-hour day at the spring clock change has 23 hours of slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

KYIV = "Europe/Kyiv"


class DayStatus(StrEnum):
    """What the operator says of one day for one group."""

    SCHEDULED = "scheduled"  # the schedule applies: its cuts are the plan (may be none)
    NO_OUTAGES = "no_outages"  # explicitly no cuts planned
    WAITING = "waiting"  # the schedule for the day is not published yet: unknown
    EMERGENCY = "emergency"  # emergency shutdowns: the plan does not hold, cuts unpredictable


class OutlookStatus(StrEnum):
    KNOWN = "known"  # covered by a fresh schedule: the cuts listed are the plan
    UNKNOWN = "unknown"  # no schedule, stale, unreachable, malformed, not yet published
    EMERGENCY = "emergency"  # emergency shutdowns announced: no plan to forecast against


@dataclass(frozen=True, slots=True)
class Cut:
    """One planned outage of a group: ``[start, end)`` epoch seconds. ``definite`` is False for
    a "possible" slot (hourly tables' maybe-hours): shown, and forecast as a cut."""

    group: str
    start: float
    end: float
    definite: bool = True

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, object]:
        return {"group": self.group, "start": self.start, "end": self.end,
                "definite": self.definite}


@dataclass(frozen=True, slots=True)
class GroupDay:
    """One civil day of one group: ``[start, end)`` epoch seconds, status and cuts."""

    day: date
    start: float
    end: float
    status: DayStatus
    cuts: tuple[Cut, ...] = ()


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: per group, the days it covers. ``updated_at``: the publisher's own
    update time when the format carries one (epoch seconds), else None."""

    groups: Mapping[str, tuple[GroupDay, ...]]
    updated_at: float | None = None
    timezone: str = KYIV

    def group_names(self) -> list[str]:
        return sorted(self.groups)

    def covered_until(self, group: str) -> float | None:
        days = self.groups.get(group, ())
        return max((d.end for d in days), default=None)

    def outlook(self, group: str, now: float, horizon: float = 36 * 3600.0) -> Outlook:
        """What is known of ``group`` from ``now`` to ``now + horizon``.

        Cuts that end after ``now`` and start before the horizon, merged where they touch
        (a 30-minute slot after a 30-minute slot is one cut of an hour). The outlook is
        ``unknown`` when ``now`` is not in a covered day or the day is awaited, and
        ``emergency`` on an emergency day; cuts of covered days are listed up to the first
        day that is not known (``known_until``)."""
        days = sorted(self.groups.get(group, ()), key=lambda d: d.start)
        if not days:
            return Outlook(OutlookStatus.UNKNOWN, reason=f"the schedule has no group {group!r}",
                           updated_at=self.updated_at)
        current = next((d for d in days if d.start <= now < d.end), None)
        if current is None:
            return Outlook(OutlookStatus.UNKNOWN, reason="the schedule does not cover this day",
                           updated_at=self.updated_at)
        if current.status is DayStatus.EMERGENCY:
            return Outlook(OutlookStatus.EMERGENCY, reason="emergency shutdowns announced",
                           updated_at=self.updated_at, known_until=current.end)
        if current.status is DayStatus.WAITING:
            return Outlook(OutlookStatus.UNKNOWN, reason="the day's schedule is not published",
                           updated_at=self.updated_at)
        cuts: list[Cut] = []
        known_until = now
        for day in days:
            if day.end <= now:
                continue
            if day.start > known_until + 1.0 or day.start >= now + horizon:
                break
            if day.status in (DayStatus.WAITING, DayStatus.EMERGENCY):
                break
            cuts.extend(day.cuts)
            known_until = day.end
        merged = merge_cuts(c for c in cuts if c.end > now and c.start < now + horizon)
        return Outlook(OutlookStatus.KNOWN, tuple(merged), known_until=known_until,
                       updated_at=self.updated_at)


@dataclass(frozen=True, slots=True)
class Outlook:
    """A site's (or group's) schedule from now on, as the forecast and the page use it."""

    status: OutlookStatus
    cuts: tuple[Cut, ...] = ()
    reason: str = ""
    known_until: float | None = None
    updated_at: float | None = None
    source: str = ""
    group: str = ""

    def next_cut(self, now: float) -> Cut | None:
        return next((c for c in self.cuts if c.end > now), None)

    def with_origin(self, source: str, group: str) -> Outlook:
        return replace(self, source=source, group=group)

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "source": self.source,
            "group": self.group,
            "known_until": self.known_until,
            "updated_at": self.updated_at,
            "cuts": [c.to_dict() for c in self.cuts],
        }


def unknown(reason: str, source: str = "", group: str = "") -> Outlook:
    return Outlook(OutlookStatus.UNKNOWN, reason=reason, source=source, group=group)


def merge_cuts(cuts: Iterable[Cut]) -> list[Cut]:
    """Sorted, with touching or overlapping cuts of one group joined (definite if any part is)."""
    out: list[Cut] = []
    for cut in sorted(cuts, key=lambda c: (c.group, c.start, c.end)):
        last = out[-1] if out else None
        if last is not None and last.group == cut.group and cut.start <= last.end + 1.0:
            out[-1] = Cut(last.group, last.start, max(last.end, cut.end),
                          last.definite or cut.definite)
        else:
            out.append(cut)
    out.sort(key=lambda c: (c.start, c.group))
    return out


def day_bounds(day: date, tz: str = KYIV) -> tuple[float, float]:
    """Epoch seconds of the start of ``day`` and of the next day in ``tz``."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.timestamp(), end.timestamp()


def at_minute(day: date, minute: float, tz: str = KYIV) -> float:
    """Epoch seconds of ``minute`` minutes after local midnight of ``day``, counted on the
    wall clock (1440 is the next midnight, whatever a clock change did to the day)."""
    whole = int(minute)
    local = datetime.combine(day, time(0)) + timedelta(minutes=whole)
    return local.replace(tzinfo=ZoneInfo(tz)).timestamp() + (minute - whole) * 60


@dataclass(slots=True)
class ScheduleBuilder:
    """Accumulates group days while a parser reads a file."""

    timezone: str = KYIV
    days: dict[str, dict[date, GroupDay]] = field(default_factory=dict)

    def day(self, group: str, day: date, status: DayStatus,
            slots: Iterable[tuple[float, float, bool]] = ()) -> None:
        """``slots``: ``(start minute, end minute, definite)`` after local midnight."""
        start, end = day_bounds(day, self.timezone)
        cuts = merge_cuts(
            Cut(group, at_minute(day, a, self.timezone), at_minute(day, b, self.timezone), d)
            for a, b, d in slots if b > a
        )
        if status is DayStatus.NO_OUTAGES:
            cuts = []
        self.days.setdefault(group, {})[day] = GroupDay(day, start, end, status, tuple(cuts))

    def build(self, updated_at: float | None = None) -> Schedule:
        return Schedule(
            {g: tuple(sorted(d.values(), key=lambda x: x.start)) for g, d in self.days.items()},
            updated_at,
            self.timezone,
        )


def schedule_to_dict(schedule: Schedule, groups: Iterable[str] | None = None) -> dict[str, object]:
    """A schedule as plain JSON data (the groups asked for, else all): what a simulated stream
    announces as its plan (kordon.streamclock). :func:`schedule_from_dict` reads it back."""
    chosen = sorted(schedule.groups if groups is None else set(groups) & set(schedule.groups))
    return {
        "timezone": schedule.timezone,
        "updated_at": schedule.updated_at,
        "groups": {
            group: [
                {"day": d.day.isoformat(), "start": d.start, "end": d.end,
                 "status": d.status.value,
                 "cuts": [[c.start, c.end, c.definite] for c in d.cuts]}
                for d in schedule.groups[group]
            ]
            for group in chosen
        },
    }


def schedule_from_dict(data: object) -> Schedule:
    """The inverse of :func:`schedule_to_dict`; ValueError names what is malformed."""
    if not isinstance(data, dict):
        raise ValueError("a schedule must be a JSON object")
    timezone = data.get("timezone", KYIV)
    updated_at = data.get("updated_at")
    raw_groups = data.get("groups")
    if not isinstance(timezone, str) or not isinstance(raw_groups, dict):
        raise ValueError("a schedule needs a timezone string and a groups object")
    if updated_at is not None and not _is_number(updated_at):
        raise ValueError("updated_at must be a number or null")
    groups: dict[str, tuple[GroupDay, ...]] = {}
    for group, days in raw_groups.items():
        if not isinstance(days, list):
            raise ValueError(f"group {group!r}: days must be a list")
        parsed = []
        for day in days:
            try:
                cuts = tuple(Cut(str(group), float(a), float(b), bool(d))
                             for a, b, d in day["cuts"])
                parsed.append(GroupDay(date.fromisoformat(day["day"]), float(day["start"]),
                                       float(day["end"]), DayStatus(day["status"]), cuts))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"group {group!r}: malformed day {day!r:.80} ({exc})") from None
        groups[str(group)] = tuple(sorted(parsed, key=lambda d: d.start))
    return Schedule(groups, None if updated_at is None else float(updated_at), timezone)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shifted(schedule: Schedule, seconds: float) -> Schedule:
    """The same schedule ``seconds`` later (a scenario run started at another time)."""
    return Schedule(
        {
            group: tuple(
                GroupDay(d.day, d.start + seconds, d.end + seconds, d.status,
                         tuple(replace(c, start=c.start + seconds, end=c.end + seconds)
                               for c in d.cuts))
                for d in days
            )
            for group, days in schedule.groups.items()
        },
        None if schedule.updated_at is None else schedule.updated_at + seconds,
        schedule.timezone,
    )
