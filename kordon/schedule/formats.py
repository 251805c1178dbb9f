"""The three shapes Ukrainian outage schedules are published in, parsed into one model.

``json``
    The distribution operators' app API (YASNO/DTEK "planned outages"): per group, ``today``
    and ``tomorrow``, each with ``slots`` (``start``/``end`` in minutes after local midnight,
    ``type`` ``Definite`` = off, ``NotPlanned`` = on, anything else = possibly off), the day's
    ``date`` and ``status`` (``ScheduleApplies``, ``WaitingForSchedule``,
    ``EmergencyShutdowns``, ``NoOutages``), and the group's ``updatedOn``::

        {"3.1": {"today": {"date": "2024-12-17T00:00:00+02:00", "status": "ScheduleApplies",
                           "slots": [{"start": 240, "end": 480, "type": "Definite"}]},
                 "tomorrow": {...}, "updatedOn": "2024-12-17T09:12:00+00:00"}}

``hourly``
    The operators' web pages (DTEK "DisconSchedule.fact"): per day (epoch seconds of local
    midnight, or an ISO date) and group (``GPV3.1`` or ``3.1``), hours ``"1"``..``"24"``
    (hour 1 is 00:00-01:00) with ``yes`` (power on), ``no`` (off), ``first`` / ``second``
    (off in that half of the hour), ``maybe`` / ``mfirst`` / ``msecond`` (possibly off);
    ``update`` is ``dd.mm.yyyy HH:MM`` local time::

        {"data": {"1734386400": {"GPV3.1": {"1": "yes", ..., "9": "no", "10": "first"}}},
         "update": "17.12.2024 09:12", "today": 1734386400}

``ical``
    Community iCalendar feeds (RFC 5545), read with the ``icalendar`` library: each VEVENT is a
    cut; its group is the feed's (one feed per group, the usual form) or a ``CATEGORIES`` value
    naming it. A feed covers the days from its first to its last event; an event whose
    summary or categories say emergency (``EMERGENCY``, "аварійн") makes its day an emergency
    day, one that says ``NO-OUTAGES`` covers its day with no cuts. ``LAST-MODIFIED`` (or
    ``DTSTAMP``) of the newest event is the update time.

Every parser refuses what it cannot read with :class:`ScheduleFormatError` naming the place;
a schedule is all or nothing, since half a schedule read as the whole would hide cuts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from kordon.schedule.model import KYIV, DayStatus, Schedule, ScheduleBuilder

FORMATS = ("json", "hourly", "ical")


class ScheduleFormatError(ValueError):
    """A schedule file that cannot be read; the message says where and what."""


JSON_STATUS = {
    "scheduleapplies": DayStatus.SCHEDULED,
    "waitingforschedule": DayStatus.WAITING,
    "emergencyshutdowns": DayStatus.EMERGENCY,
    "nooutages": DayStatus.NO_OUTAGES,
}
_HOURLY = {
    # value: ((start, end) minutes within the hour that are off, definite)
    "yes": None,
    "no": ((0, 60), True),
    "first": ((0, 30), True),
    "second": ((30, 60), True),
    "maybe": ((0, 60), False),
    "mfirst": ((0, 30), False),
    "msecond": ((30, 60), False),
}
_GROUP_PREFIX = re.compile(r"^(?:GPV|group[_ ]?|черга\s*)", re.IGNORECASE)
_EMERGENCY = re.compile(r"emergenc|аварійн|екстрен", re.IGNORECASE)
_NO_OUTAGES = re.compile(r"no[-_ ]?outages|без відключень", re.IGNORECASE)


def normalise_group(name: str) -> str:
    """``GPV3.1``, ``group_3.1``, ``Черга 3.1`` -> ``3.1``."""
    return _GROUP_PREFIX.sub("", str(name).strip()).strip()


def parse(data: bytes, fmt: str, tz: str = KYIV, group: str | None = None) -> Schedule:
    """Parse ``data`` in format ``fmt`` (``json``, ``hourly``, ``ical`` or ``auto``)."""
    if fmt == "auto":
        fmt = sniff(data)
    if fmt == "json":
        return parse_json(data, tz)
    if fmt == "hourly":
        return parse_hourly(data, tz)
    if fmt == "ical":
        return parse_ical(data, tz, group)
    raise ScheduleFormatError(f"unknown schedule format {fmt!r}; use one of {', '.join(FORMATS)}")


def sniff(data: bytes) -> str:
    head = data.lstrip()[:200]
    if head.upper().startswith(b"BEGIN:VCALENDAR"):
        return "ical"
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ScheduleFormatError("neither JSON nor iCalendar") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict) and "today" in doc:
        return "hourly"
    return "json"


def _load_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ScheduleFormatError(f"not valid JSON: {exc}") from None


def _timestamp(value: Any, where: str, tz: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleFormatError(f"{where}: {value!r} is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(tz))
    raise ScheduleFormatError(f"{where}: expected a time, got {type(value).__name__}")


def _minute(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1440:
        raise ScheduleFormatError(f"{where}: minutes after midnight must be 0..1440, got {value!r}")
    return float(value)


# ------------------------------------------------------------------ json


def parse_json(data: bytes, tz: str = KYIV) -> Schedule:
    doc = _load_json(data)
    if not isinstance(doc, dict) or not doc:
        raise ScheduleFormatError("expected an object of groups: {\"3.1\": {\"today\": ...}}")
    builder = ScheduleBuilder(tz)
    newest: float | None = None
    for raw_group, body in doc.items():
        group = normalise_group(raw_group)
        where = f"group {raw_group!r}"
        if not isinstance(body, dict):
            raise ScheduleFormatError(f"{where}: expected an object with today/tomorrow")
        if body.get("updatedOn") is not None:
            stamp = _timestamp(body["updatedOn"], f"{where}.updatedOn", tz).timestamp()
            newest = stamp if newest is None else max(newest, stamp)
        days = [k for k, v in body.items() if isinstance(v, dict) and "date" in v]
        days += [k for k in ("today", "tomorrow") if k not in days and body.get(k) is not None]
        if not days:
            raise ScheduleFormatError(f"{where}: neither today nor tomorrow is given")
        for key in days:
            _json_day(builder, group, body[key], f"{where}.{key}", tz)
    return builder.build(newest)


def _json_day(builder: ScheduleBuilder, group: str, body: Any, where: str, tz: str) -> None:
    if not isinstance(body, dict):
        raise ScheduleFormatError(f"{where}: expected an object with date, status and slots")
    if "date" not in body:
        raise ScheduleFormatError(f"{where}.date: required")
    day = _timestamp(body["date"], f"{where}.date", tz).astimezone(ZoneInfo(tz)).date()
    raw_status = str(body.get("status", "ScheduleApplies"))
    status = JSON_STATUS.get(raw_status.replace("_", "").lower(), DayStatus.WAITING)
    slots = body.get("slots", [])
    if not isinstance(slots, list):
        raise ScheduleFormatError(f"{where}.slots: expected a list")
    out = []
    for i, slot in enumerate(slots):
        if not isinstance(slot, dict):
            raise ScheduleFormatError(f"{where}.slots[{i}]: expected an object")
        start = _minute(slot.get("start"), f"{where}.slots[{i}].start")
        end = _minute(slot.get("end"), f"{where}.slots[{i}].end")
        if end < start:
            raise ScheduleFormatError(f"{where}.slots[{i}]: end {end} before start {start}")
        kind = str(slot.get("type", "Definite")).replace("_", "").lower()
        if kind in ("notplanned", "poweron", "on"):
            continue
        out.append((start, end, kind in ("definite", "definiteoutage")))
    builder.day(group, day, status, out)


# ------------------------------------------------------------------ hourly


def parse_hourly(data: bytes, tz: str = KYIV) -> Schedule:
    doc = _load_json(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or not doc["data"]:
        raise ScheduleFormatError("expected {\"data\": {<day>: {<group>: {\"1\": \"yes\", ...}}}}")
    builder = ScheduleBuilder(tz)
    zone = ZoneInfo(tz)
    for raw_day, groups in doc["data"].items():
        where = f"data[{raw_day!r}]"
        day = _hourly_day(raw_day, where, zone)
        if not isinstance(groups, dict):
            raise ScheduleFormatError(f"{where}: expected an object of groups")
        for raw_group, hours in groups.items():
            gw = f"{where}[{raw_group!r}]"
            if not isinstance(hours, dict):
                raise ScheduleFormatError(f"{gw}: expected hours \"1\"..\"24\"")
            slots = []
            for hour_key, value in hours.items():
                try:
                    hour = int(hour_key)
                except ValueError:
                    raise ScheduleFormatError(f"{gw}: hour {hour_key!r} is not 1..24") from None
                if not 1 <= hour <= 24:
                    raise ScheduleFormatError(f"{gw}: hour {hour_key!r} is not 1..24")
                key = str(value).strip().lower()
                if key not in _HOURLY:
                    raise ScheduleFormatError(
                        f"{gw}[{hour_key!r}]: {value!r} is not one of {', '.join(_HOURLY)}"
                    )
                off = _HOURLY[key]
                if off is not None:
                    (a, b), definite = off
                    base = (hour - 1) * 60
                    slots.append((base + a, base + b, definite))
            builder.day(normalise_group(raw_group), day, DayStatus.SCHEDULED, slots)
    updated = None
    if doc.get("update"):
        try:
            local = datetime.strptime(str(doc["update"]).strip(), "%d.%m.%Y %H:%M")
        except ValueError:
            raise ScheduleFormatError(
                f"update: {doc['update']!r} is not dd.mm.yyyy HH:MM"
            ) from None
        updated = local.replace(tzinfo=zone).timestamp()
    return builder.build(updated)


def _hourly_day(raw: str, where: str, zone: ZoneInfo) -> date:
    text = str(raw).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), zone).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ScheduleFormatError(f"{where}: a day is epoch seconds or YYYY-MM-DD") from None


# ------------------------------------------------------------------ iCalendar


def parse_ical(data: bytes, tz: str = KYIV, group: str | None = None) -> Schedule:
    """Community iCalendar feed -> schedule. ``group``: the feed's group when it has one."""
    import icalendar

    try:
        calendar = icalendar.Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError) as exc:
        raise ScheduleFormatError(f"not valid iCalendar: {exc}") from None
    if calendar.name != "VCALENDAR":
        raise ScheduleFormatError("not valid iCalendar: no VCALENDAR")
    zone = ZoneInfo(tz)
    events: dict[str, list[tuple[datetime, datetime, str]]] = {}
    newest: float | None = None
    for i, event in enumerate(calendar.walk("VEVENT")):
        where = f"VEVENT {i + 1} ({event.get('UID', 'no UID')})"
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if event.get("RRULE") is not None:
            raise ScheduleFormatError(f"{where}: recurring events (RRULE) are not read")
        start = _ical_time(event.get("DTSTART"), f"{where}.DTSTART", zone)
        if event.get("DTEND") is not None:
            end = _ical_time(event.get("DTEND"), f"{where}.DTEND", zone)
        elif event.get("DURATION") is not None:
            end = start + event.decoded("DURATION")
        else:
            raise ScheduleFormatError(f"{where}: needs DTEND or DURATION")
        if end < start:
            raise ScheduleFormatError(f"{where}: DTEND before DTSTART")
        categories = _categories(event)
        summary = str(event.get("SUMMARY", ""))
        names = [normalise_group(c) for c in categories if _looks_like_group(c)]
        targets = names or ([group] if group else [])
        if not targets:
            raise ScheduleFormatError(
                f"{where}: no group: give the source a group or the event a CATEGORIES group"
            )
        text = " ".join([summary, *categories])
        kind = "emergency" if _EMERGENCY.search(text) else (
            "none" if _NO_OUTAGES.search(text) else "cut")
        for name in targets:
            events.setdefault(name, []).append((start, end, kind))
        for prop in ("LAST-MODIFIED", "DTSTAMP"):
            if event.get(prop) is not None:
                stamp = event.decoded(prop).timestamp()
                newest = stamp if newest is None else max(newest, stamp)
                break
    if not events:
        raise ScheduleFormatError("the feed has no events: it covers no day")
    builder = ScheduleBuilder(tz)
    for name, items in events.items():
        first = min(s for s, _, _ in items).astimezone(zone).date()
        last = max(e - timedelta(microseconds=1) for _, e, _ in items).astimezone(zone).date()
        day = first
        while day <= last:
            day_start = datetime.combine(day, datetime.min.time()).replace(tzinfo=zone)
            day_end = datetime.combine(day + timedelta(days=1),
                                       datetime.min.time()).replace(tzinfo=zone)
            status = DayStatus.SCHEDULED
            slots = []
            for s, e, kind in items:
                if e <= day_start or s >= day_end:
                    continue
                if kind == "emergency":
                    status = DayStatus.EMERGENCY
                elif kind == "cut":
                    a = (max(s, day_start) - day_start).total_seconds() / 60
                    b = (min(e, day_end) - day_start).total_seconds() / 60
                    slots.append((a, min(b, 1440.0), True))
            builder.day(name, day, status, slots)
            day += timedelta(days=1)
    return builder.build(newest)


def _ical_time(prop: Any, where: str, zone: ZoneInfo) -> datetime:
    if prop is None:
        raise ScheduleFormatError(f"{where}: required")
    value = prop.dt
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):  # an all-day event
        return datetime.combine(value, datetime.min.time()).replace(tzinfo=zone)
    raise ScheduleFormatError(f"{where}: not a date or time")


def _categories(event: Mapping[str, Any]) -> list[str]:
    raw = event.get("CATEGORIES")
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        cats = getattr(item, "cats", None)
        out.extend(str(c) for c in (cats if cats is not None else [item]))
    return out


def _looks_like_group(name: str) -> bool:
    return bool(re.fullmatch(r"\d{1,2}(\.\d{1,2})?", normalise_group(name)))
