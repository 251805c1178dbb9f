"""Write a schedule in each of the three published shapes (the inverse of ``formats``).

For tests, the simulator's scenario files and the foresight bench: a plan of cuts per group
becomes a file a real publisher could have served. ``hourly`` can only say half hours, so cuts
must start and end on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from kordon.schedule.model import KYIV

# Per group: (start, end) epoch seconds; per day (local date): a status override.
Plan = Mapping[str, Sequence[tuple[float, float]]]
JSON_STATUS_NAME = {"scheduled": "ScheduleApplies", "waiting": "WaitingForSchedule",
                    "emergency": "EmergencyShutdowns", "no_outages": "NoOutages"}


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _local_slots(cuts: Sequence[tuple[float, float]], day: date, zone: ZoneInfo
                 ) -> list[tuple[int, int]]:
    start = datetime.combine(day, datetime.min.time()).replace(tzinfo=zone)
    end = start + timedelta(days=1)
    out = []
    for a, b in cuts:
        sa = max(datetime.fromtimestamp(a, zone), start)
        sb = min(datetime.fromtimestamp(b, zone), end)
        if sb > sa:
            out.append((round((sa - start).total_seconds() / 60),
                        round((sb - start).total_seconds() / 60)))
    return sorted(out)


def to_json(plan: Plan, first: date, last: date, *, tz: str = KYIV,
            status: Mapping[tuple[str, date], str] | None = None,
            updated: float | None = None) -> bytes:
    """The operators' app JSON. Only two days fit (today and tomorrow), so ``last`` is at most
    the day after ``first``; see :func:`to_json_days` for a scenario's several days."""
    if (last - first).days > 1:
        raise ValueError("the JSON format carries today and tomorrow only")
    return to_json_days(plan, first, last, tz=tz, status=status, updated=updated)


def to_json_days(plan: Plan, first: date, last: date, *, tz: str = KYIV,
                 status: Mapping[tuple[str, date], str] | None = None,
                 updated: float | None = None) -> bytes:
    """JSON of the operators' shape; days after tomorrow go in ``day2``, ``day3``... (Kordon
    reads any key whose value has a ``date``, so a scenario can carry its whole timeline)."""
    zone = ZoneInfo(tz)
    status = status or {}
    doc: dict[str, object] = {}
    for group, cuts in plan.items():
        body: dict[str, object] = {}
        for i, day in enumerate(_days(first, last)):
            key = "today" if i == 0 else "tomorrow" if i == 1 else f"day{i}"
            state = status.get((group, day), "scheduled")
            slots = [] if state in ("waiting", "no_outages") else [
                {"start": a, "end": b, "type": "Definite"} for a, b in _local_slots(cuts, day, zone)
            ]
            midnight = datetime.combine(day, datetime.min.time()).replace(tzinfo=zone)
            body[key] = {"slots": slots, "date": midnight.isoformat(),
                         "status": JSON_STATUS_NAME[state]}
        if updated is not None:
            body["updatedOn"] = datetime.fromtimestamp(updated, UTC).isoformat()
        doc[group] = body
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def to_hourly(plan: Plan, first: date, last: date, *, tz: str = KYIV,
              updated: float | None = None) -> bytes:
    zone = ZoneInfo(tz)
    data: dict[str, dict[str, dict[str, str]]] = {}
    for day in _days(first, last):
        midnight = datetime.combine(day, datetime.min.time()).replace(tzinfo=zone)
        groups: dict[str, dict[str, str]] = {}
        for group, cuts in plan.items():
            off = [False] * 48
            for a, b in _local_slots(cuts, day, zone):
                if a % 30 or b % 30:
                    raise ValueError("the hourly format says half hours: cut at :00 or :30")
                for half in range(a // 30, b // 30):
                    off[half] = True
            hours = {}
            for hour in range(24):
                first_half, second_half = off[2 * hour], off[2 * hour + 1]
                hours[str(hour + 1)] = (
                    "no" if first_half and second_half else "first" if first_half
                    else "second" if second_half else "yes"
                )
            groups[f"GPV{group}"] = hours
        data[str(int(midnight.timestamp()))] = groups
    first_midnight = datetime.combine(first, datetime.min.time()).replace(tzinfo=zone)
    doc: dict[str, object] = {"data": data, "today": int(first_midnight.timestamp())}
    if updated is not None:
        doc["update"] = datetime.fromtimestamp(updated, zone).strftime("%d.%m.%Y %H:%M")
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def to_ical(plan: Plan, *, emergency: Mapping[str, Sequence[date]] | None = None,
            tz: str = KYIV, stamp: float = 0.0, name: str = "outages") -> bytes:
    """An iCalendar feed, one VEVENT per cut with the group in ``CATEGORIES``."""
    import icalendar

    zone = ZoneInfo(tz)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Kordon//outage schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", name)
    when = datetime.fromtimestamp(stamp, UTC)
    for group, cuts in plan.items():
        for a, b in cuts:
            event = icalendar.Event()
            event.add("uid", f"{group}-{int(a)}@kordon")
            event.add("summary", f"Outage, group {group}")
            event.add("categories", [group])
            event.add("dtstart", datetime.fromtimestamp(a, zone))
            event.add("dtend", datetime.fromtimestamp(b, zone))
            event.add("dtstamp", when)
            calendar.add_component(event)
        for day in (emergency or {}).get(group, ()):
            event = icalendar.Event()
            event.add("uid", f"{group}-emergency-{day.isoformat()}@kordon")
            event.add("summary", f"Emergency shutdowns, group {group}")
            event.add("categories", [group, "EMERGENCY"])
            event.add("dtstart", day)
            event.add("dtend", day + timedelta(days=1))
            event.add("dtstamp", when)
            calendar.add_component(event)
    return calendar.to_ical()
