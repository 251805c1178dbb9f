"""Outage schedules: the three formats, and sources read from a real HTTP server on loopback
(each format, a malformed file, an unreachable source, a schedule that changes between polls,
the durable last good copy, staleness => unknown), and ``kordon schedule show``."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from kordon.clock import SimulatedClock
from kordon.fleet import Fleet, FleetError, ScheduleSourceParams, load_fleet
from kordon.schedule import (
    DayStatus,
    OutlookStatus,
    ScheduleFormatError,
    ScheduleService,
    ScheduleSource,
    parse,
)
from kordon.schedule.render import to_hourly, to_ical, to_json
from testkit.files import FileServer
from testkit.servers import free_port

KYIV = ZoneInfo("Europe/Kyiv")
DAY = date(2024, 12, 17)


def t(hour: int, minute: int = 0, day: int = 17) -> float:
    return datetime(2024, 12, day, hour, minute, tzinfo=KYIV).timestamp()


PLAN = {"3": [(t(8), t(12)), (t(16), t(18, 30))], "3.1": [(t(22), t(2, 0, 18))]}
BODIES = {
    "json": to_json(PLAN, DAY, date(2024, 12, 18), updated=t(7)),
    "hourly": to_hourly(PLAN, DAY, date(2024, 12, 18), updated=t(7)),
    "ical": to_ical(PLAN, stamp=t(7)),
}


@pytest.fixture
def server() -> Iterator[FileServer]:
    files = FileServer().start()
    yield files
    files.stop()


# ------------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt", ["json", "hourly", "ical"])
def test_each_format_gives_the_same_cuts(fmt: str) -> None:
    schedule = parse(BODIES[fmt], fmt)
    assert parse(BODIES[fmt], "auto") == schedule  # the shape is recognised too
    outlook = schedule.outlook("3", t(9))
    assert outlook.status is OutlookStatus.KNOWN
    assert [(c.start, c.end) for c in outlook.cuts] == [(t(8), t(12)), (t(16), t(18, 30))]
    # a cut across midnight is one cut, though two days carry it
    assert [(c.start, c.end) for c in schedule.outlook("3.1", t(9)).cuts] == [
        (t(22), t(2, 0, 18))
    ]
    if fmt != "ical":
        assert schedule.updated_at == t(7)


def test_json_day_statuses_and_slot_types() -> None:
    doc = (
        b'{"GPV4.2": {"today": {"date": "2024-12-17T00:00:00+02:00", "status": '
        b'"EmergencyShutdowns", "slots": []}, "tomorrow": {"date": "2024-12-18T00:00:00+02:00",'
        b' "status": "WaitingForSchedule", "slots": []}},'
        b' "5": {"today": {"date": "2024-12-17T00:00:00+02:00", "status": "ScheduleApplies",'
        b' "slots": [{"start": 0, "end": 240, "type": "NotPlanned"},'
        b' {"start": 240, "end": 480, "type": "Definite"},'
        b' {"start": 600, "end": 660, "type": "Possible"}]}},'
        b' "6": {"today": {"date": "2024-12-17T00:00:00+02:00", "status": "NoOutages"}}}'
    )
    schedule = parse(doc, "json")
    assert schedule.groups["4.2"][0].status is DayStatus.EMERGENCY
    assert schedule.outlook("4.2", t(9)).status is OutlookStatus.EMERGENCY
    assert schedule.outlook("4.2", t(9, 0, 18)).status is OutlookStatus.UNKNOWN  # waiting
    cuts = schedule.outlook("5", t(1)).cuts
    assert [(c.start, c.end, c.definite) for c in cuts] == [
        (t(4), t(8), True), (t(10), t(11), False)
    ]
    six = schedule.outlook("6", t(9))
    assert six.status is OutlookStatus.KNOWN and six.cuts == ()
    # tomorrow is not covered: unknown, never "no cuts"
    assert schedule.outlook("6", t(9, 0, 18)).status is OutlookStatus.UNKNOWN
    assert schedule.outlook("7", t(9)).status is OutlookStatus.UNKNOWN


def test_hourly_halves_and_maybe() -> None:
    hours = {str(h): "yes" for h in range(1, 25)}
    hours.update({"9": "no", "10": "first", "14": "second", "20": "maybe"})
    doc = {"data": {str(int(t(0))): {"GPV1.1": hours}}, "update": "17.12.2024 07:30",
           "today": int(t(0))}
    import orjson

    schedule = parse(orjson.dumps(doc), "hourly")
    cuts = schedule.outlook("1.1", t(0)).cuts
    assert [(c.start, c.end, c.definite) for c in cuts] == [
        (t(8), t(9, 30), True), (t(13, 30), t(14), True), (t(19), t(20), False)
    ]
    assert schedule.updated_at == t(7, 30)


def test_ical_emergency_day_and_group_of_feed() -> None:
    plan = {"2": [(t(8), t(12))]}
    feed = to_ical(plan, emergency={"2": [date(2024, 12, 18)]})
    schedule = parse(feed, "ical")
    assert schedule.outlook("2", t(9)).status is OutlookStatus.KNOWN
    assert schedule.outlook("2", t(9, 0, 18)).status is OutlookStatus.EMERGENCY
    plain = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
        b"DTSTART:20241217T060000Z\r\nDTEND:20241217T100000Z\r\nSUMMARY:Light off\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with pytest.raises(ScheduleFormatError, match="no group"):
        parse(plain, "ical")
    one = parse(plain, "ical", group="3.2")
    assert [(c.start, c.end) for c in one.outlook("3.2", t(7)).cuts] == [(t(8), t(12))]


@pytest.mark.parametrize(
    ("fmt", "body", "words"),
    [
        ("json", b"{not json", "not valid JSON"),
        ("json", b'{"3": {"today": {"date": "2024-12-17", "slots": [{"start": 2000}]}}}',
         "0..1440"),
        ("hourly", b'{"data": {"1734386400": {"GPV1": {"1": "perhaps"}}}, "today": 1}',
         "perhaps"),
        ("ical", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "no events"),
        ("ical", b"this is no calendar", "iCalendar"),
    ],
)
def test_malformed_is_refused_with_the_place(fmt: str, body: bytes, words: str) -> None:
    with pytest.raises(ScheduleFormatError, match=words):
        parse(body, fmt)


# ------------------------------------------------------------------ sources over HTTP


def _source(server: FileServer, path: str, clock: SimulatedClock, cache: Path, fmt: str = "auto",
            **extra: object) -> ScheduleSource:
    params = ScheduleSourceParams(url=server.url(path), format=fmt, **extra)  # type: ignore[arg-type]
    return ScheduleSource("dso", params, cache_dir=cache, clock=clock)


@pytest.mark.parametrize("fmt", ["json", "hourly", "ical"])
def test_each_format_read_over_http(server: FileServer, tmp_path: Path, fmt: str) -> None:
    server.put(f"/{fmt}", BODIES[fmt])
    source = _source(server, f"/{fmt}", SimulatedClock(t(7)), tmp_path, fmt)
    assert source.refresh()
    outlook = source.outlook("3", t(9))
    assert outlook.status is OutlookStatus.KNOWN and len(outlook.cuts) == 2
    assert outlook.source == "dso" and outlook.group == "3"


def test_changed_between_polls_malformed_unreachable_stale(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimulatedClock(t(7))
    server.put("/s.json", BODIES["json"])
    source = _source(server, "/s.json", clock, tmp_path, "json", max_age=3 * 3600.0)
    assert source.refresh()
    assert len(source.outlook("3", t(9)).cuts) == 2
    assert not source.refresh()  # the same bytes: nothing changed

    # the operator moves the afternoon cut: the next poll shows it
    moved = {"3": [(t(8), t(12)), (t(19), t(22))], "3.1": PLAN["3.1"]}
    server.put("/s.json", to_json(moved, DAY, date(2024, 12, 18)))
    clock.advance(900)
    assert source.refresh()
    assert [(c.start, c.end) for c in source.outlook("3", t(9)).cuts][1] == (t(19), t(22))

    # a malformed answer keeps the last good copy, logged once however often it is polled
    server.put("/s.json", b'{"3": {"today": 42}}')
    with caplog.at_level(logging.WARNING, logger="kordon.schedule"):
        for _ in range(3):
            clock.advance(900)
            assert not source.refresh()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1 and "malformed" in failures[0].getMessage()
    assert source.outlook("3", t(9)).status is OutlookStatus.KNOWN
    assert source.state().error is not None

    # the publisher is gone: still the copy, until it is older than max_age: then unknown
    server.stop()
    clock.advance(900)
    assert not source.refresh()
    assert source.outlook("3", t(9)).status is OutlookStatus.KNOWN
    clock.advance(3 * 3600.0)
    stale = source.outlook("3", t(9))
    assert stale.status is OutlookStatus.UNKNOWN and "stale" in stale.reason
    assert stale.cuts == ()


def test_unreachable_from_the_start_is_unknown(tmp_path: Path) -> None:
    params = ScheduleSourceParams(url=f"http://127.0.0.1:{free_port()}/nothing.json")
    source = ScheduleSource("gone", params, cache_dir=tmp_path, clock=SimulatedClock(t(7)))
    assert not source.refresh()
    outlook = source.outlook("3", t(9))
    assert outlook.status is OutlookStatus.UNKNOWN and "unreachable" in outlook.reason


def test_http_error_status_is_a_failure(server: FileServer, tmp_path: Path) -> None:
    server.put("/gone.json", b"<html>maintenance</html>", status=503)
    source = _source(server, "/gone.json", SimulatedClock(t(7)), tmp_path)
    assert not source.refresh()
    assert "503" in source.outlook("3", t(9)).reason


def test_last_good_copy_survives_a_restart(server: FileServer, tmp_path: Path) -> None:
    clock = SimulatedClock(t(7))
    server.put("/s.ics", BODIES["ical"])
    assert _source(server, "/s.ics", clock, tmp_path, "ical").refresh()
    server.stop()  # the publisher is down when Kordon restarts
    clock.advance(600)
    again = _source(server, "/s.ics", clock, tmp_path, "ical")
    assert not again.refresh()
    assert len(again.outlook("3", t(9)).cuts) == 2
    assert list(tmp_path.glob("*.tmp")) == []


# ------------------------------------------------------------------ fleet and command


def _fleet(tmp_path: Path, url: str) -> Path:
    doc = {
        "name": "t",
        "schedules": {"dso": {"url": url, "format": "json", "refresh": "5m"}},
        "sites": {
            "alpha": {"queue": 3, "schedule": {"source": "dso"},
                      "devices": {"ups-1": {"kind": "ups"}}},
            "beta": {"queue": 2, "schedule": {"source": "dso", "group": "3.1"}},
            "gamma": {"queue": 4},
        },
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_fleet_schedule_fields(tmp_path: Path) -> None:
    fleet = load_fleet(_fleet(tmp_path, "schedule.json"))
    assert fleet.sites["alpha"].schedule_group == "3"
    assert fleet.sites["beta"].schedule_group == "3.1"
    assert fleet.sites["gamma"].schedule is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites:\n  a:\n    schedule: {source: nowhere}\n")
    with pytest.raises(FleetError, match="no schedule source 'nowhere'"):
        load_fleet(bad)


def test_service_per_site(server: FileServer, tmp_path: Path) -> None:
    server.put("/s.json", BODIES["json"])
    fleet: Fleet = load_fleet(_fleet(tmp_path, server.url("/s.json")))
    service = ScheduleService(fleet, data_dir=tmp_path, clock=SimulatedClock(t(7)))
    service.refresh_all()
    assert len(service.outlook("alpha", t(9)).cuts) == 2
    assert len(service.outlook("beta", t(9)).cuts) == 1
    assert service.outlook("gamma", t(9)).status is OutlookStatus.UNKNOWN


def test_kordon_schedule_show(server: FileServer, tmp_path: Path) -> None:
    server.put("/s.json", BODIES["json"])
    fleet = _fleet(tmp_path, server.url("/s.json"))
    env = {"KORDON_DATA_DIR": str(tmp_path / "data"), "KORDON_FLEET": str(fleet),
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "composition.cli", "schedule", "show", "--at", str(t(9))],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "alpha (group 3, dso): 2 cut(s)" in out
    assert "Tue 17 Dec 16:00 - Tue 17 Dec 18:30  2.5 h" in out
    assert "gamma (group 4): UNKNOWN" in out
    one = subprocess.run(
        [sys.executable, "-m", "composition.cli", "schedule", "show", "beta", "--at",
         str(t(9))], env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "beta (group 3.1, dso): 1 cut(s)" in one and "alpha" not in one
