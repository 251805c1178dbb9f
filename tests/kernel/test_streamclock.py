"""The stream clock (kordon/streamclock.py): the announcement contract and the follower."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kordon.clock import Clock, SimulatedClock
from kordon.model.topics import (
    CLOCK_FILTER,
    TopicError,
    clock_topic,
    is_clock_topic,
    parse_clock_topic,
    parse_topic,
)
from kordon.streamclock import (
    ClockAnnouncement,
    ClockError,
    StreamClocks,
    Switch,
    announce,
)

WALL0 = 1_800_000_000.0  # follower's wall clock at the start
SIM0 = 1_734_328_800.0  # a scenario in the past (2024-12-16)


class Fake:
    """Wall and monotonic clocks moving together, under the test's control."""

    def __init__(self) -> None:
        self.wall = SimulatedClock(WALL0)
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall.advance(seconds)
        self.mono += seconds


def follower(stale_after: float = 5.0) -> tuple[StreamClocks, Fake]:
    fake = Fake()
    return StreamClocks(fake.wall, fake.monotonic, stale_after=stale_after), fake


def running(
    sim: float,
    speed: float = 60.0,
    sites: tuple[str, ...] = ("solotvyno",),
    stream: str = "sim-a",
    wall: float = WALL0,
) -> ClockAnnouncement:
    return announce(stream, sites, sim, speed, wall=wall)


# ---------------------------------------------------------------------------- the contract
def test_topic_is_off_the_device_contract() -> None:
    topic = clock_topic("simulate-host-42")
    assert topic == "kordon/v1/clock/simulate-host-42"
    assert parse_clock_topic(topic) == "simulate-host-42"
    assert is_clock_topic(topic) and CLOCK_FILTER == "kordon/v1/clock/+"
    with pytest.raises(TopicError):  # the collector's parser never sees it as a device topic
        parse_topic(topic)
    assert not is_clock_topic("kordon/v1/clock/ups/u1/telemetry")  # a site named "clock"
    for bad in (
        "kordon/v1/clock/a b",
        "kordon/v1/clock/",
        "kordon/v2/clock/x",
        "kordon/v1/clock/x/y",
    ):
        with pytest.raises(TopicError):
            parse_clock_topic(bad)
    with pytest.raises(TopicError):
        clock_topic("no/slash")


names = st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z")


@given(
    stream=names,
    sites=st.lists(names, max_size=20, unique=True),
    sim=st.floats(946_684_800, 4e9),
    wall=st.floats(946_684_800, 4e9),
    speed=st.floats(0, 1e5),
    state=st.sampled_from(["running", "stopped"]),
    every=st.floats(0.01, 3600),
)
def test_announcement_round_trips(stream, sites, sim, wall, speed, state, every) -> None:
    original = ClockAnnouncement(stream, sim, wall, speed, state, tuple(sites), every)
    decoded = ClockAnnouncement.decode(original.encode(), original.topic)
    assert decoded.stream == stream and decoded.sites == tuple(sites)
    assert decoded.state == state and decoded.speed == speed and decoded.every == every
    assert math.isclose(decoded.sim, sim, abs_tol=1e-3) and math.isclose(
        decoded.wall, wall, abs_tol=1e-3
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"stream": "a/b", "sim": 2e9, "wall": 2e9, "speed": 1, "state": "running"}', "stream"),
        (
            b'{"stream": "a", "sim": "soon", "wall": 2e9, "speed": 1, "state": "running"}',
            "sim must be a number",
        ),
        (
            b'{"stream": "a", "sim": 10, "wall": 2e9, "speed": 1, "state": "running"}',
            "sim 10.0 is out of range",
        ),
        (b'{"stream": "a", "sim": 2e9, "wall": 2e9, "speed": -1, "state": "running"}', "speed"),
        (b'{"stream": "a", "sim": 2e9, "wall": 2e9, "speed": true, "state": "running"}', "speed"),
        (b'{"stream": "a", "sim": 2e9, "wall": 2e9, "speed": 1, "state": "paused"}', "state"),
        (
            b'{"stream": "a", "sim": 2e9, "wall": 2e9, "speed": 1, "state": "running", '
            b'"sites": "chop"}',
            "sites",
        ),
        (
            b'{"stream": "a", "sim": 2e9, "wall": 2e9, "speed": 1, "state": "running", '
            b'"sites": ["c/d"]}',
            "site",
        ),
        (b'{"stream": "a", "sim": 2e9, "speed": 1, "state": "running"}', "wall"),
    ],
)
def test_bad_announcements_say_what_is_wrong(payload: bytes, reason: str) -> None:
    with pytest.raises(ClockError, match=reason):
        ClockAnnouncement.decode(payload)


def test_stream_must_match_its_topic() -> None:
    payload = running(SIM0).encode()
    with pytest.raises(ClockError, match="announced on the topic of"):
        ClockAnnouncement.decode(payload, clock_topic("other"))


# ---------------------------------------------------------------------------- the follower
def test_scenario_time_only_for_announced_sites_and_follows_speed() -> None:
    clocks, fake = follower()
    clocks.feed(running(SIM0, speed=60.0, sites=("solotvyno", "chop")))
    fake.advance(2.5)
    assert clocks.now("solotvyno") == pytest.approx(SIM0 + 150.0)
    assert clocks.now("chop") == pytest.approx(SIM0 + 150.0)
    assert clocks.now("uzhhorod") == fake.wall.now()  # real devices: the wall clock
    assert clocks.now() == fake.wall.now()
    site_clock: Clock = clocks.clock("solotvyno")  # the kernel Clock protocol
    assert site_clock.now() == pytest.approx(SIM0 + 150.0)
    assert clocks.simulated("chop") and not clocks.simulated("uzhhorod")


def test_live_announcements_anchor_on_receipt_so_publisher_clock_skew_does_not_matter() -> None:
    clocks, fake = follower()
    # The publisher's wall clock is an hour off; a live announcement is anchored at receipt.
    clocks.feed(running(SIM0, speed=600.0, wall=WALL0 - 3600))
    fake.advance(1.0)
    assert clocks.now("solotvyno") == pytest.approx(SIM0 + 600.0)


def test_retained_announcement_is_aged_by_its_wall_time_and_old_residue_ignored() -> None:
    clocks, _fake = follower()
    clocks.feed(running(SIM0, speed=60.0, wall=WALL0 - 0.5), retained=True)
    assert clocks.now("solotvyno") == pytest.approx(SIM0 + 30.0)
    other, _ = follower()
    other.feed(running(SIM0, wall=WALL0 - 3600), retained=True)  # died without its will
    assert other.now("solotvyno") == WALL0


def test_stopped_and_stale_return_to_the_wall_clock_without_going_backwards() -> None:
    clocks, fake = follower(stale_after=5.0)
    clocks.feed(running(SIM0))
    fake.advance(1.0)
    assert clocks.now("solotvyno") == pytest.approx(SIM0 + 60.0)
    clocks.feed(running(SIM0).stopped())
    assert clocks.now("solotvyno") == fake.wall.now()

    clocks.feed(running(SIM0, stream="sim-b"))
    fake.advance(4.9)
    assert clocks.source("solotvyno") == "sim-b"
    fake.advance(0.2)  # 5.1 s without a word
    assert clocks.source("solotvyno") is None
    assert clocks.now("solotvyno") == fake.wall.now()

    # A scenario ahead of the wall clock: the return holds its time until the wall catches up.
    clocks.feed(running(fake.wall.now() + 100.0, speed=1.0, stream="sim-c"))
    ahead = clocks.now("solotvyno")
    fake.advance(10.0)
    held = clocks.now("solotvyno")
    assert clocks.source("solotvyno") is None
    assert held == ahead > fake.wall.now()  # held, not stepped back to the wall clock
    fake.advance(100.0)
    assert clocks.now("solotvyno") == fake.wall.now()  # the wall clock caught up


def test_announcements_every_few_seconds_keep_a_clock_live() -> None:
    clocks, fake = follower(stale_after=5.0)
    for i in range(20):
        clocks.feed(running(SIM0 + 60.0 * i))
        fake.advance(1.0)
        assert clocks.source("solotvyno") == "sim-a"
    # "every" longer than stale_after stretches the limit to 3 x every.
    slow = announce("slow", ["kosyno"], SIM0, 10.0, every=4.0, wall=WALL0)
    clocks.feed(slow)
    fake.advance(11.0)
    assert clocks.source("kosyno") == "slow"


def test_newest_stream_wins_a_site_and_poll_reports_each_switch_once() -> None:
    clocks, fake = follower()
    assert clocks.poll() == []
    clocks.feed(running(SIM0, sites=("chop", "kosyno"), stream="sim-a"))
    fake.advance(0.5)
    clocks.feed(running(SIM0 + 86400, sites=("chop",), stream="sim-b"))
    assert clocks.source("chop") == "sim-b" and clocks.source("kosyno") == "sim-a"
    switches = {s.site: s for s in clocks.poll()}
    assert switches["chop"].before is None and switches["chop"].after == "sim-b"
    assert switches["kosyno"].after == "sim-a"
    assert clocks.poll() == []
    clocks.handle(clock_topic("sim-b"), b"")  # retained clock cleared: stream gone
    fake.advance(0.1)
    assert [(s.site, s.before, s.after) for s in clocks.poll()] == [("chop", "sim-b", "sim-a")]
    assert isinstance(Switch("x", None, None, 0.0), Switch)


def test_handle_validates_and_a_bad_message_changes_nothing() -> None:
    clocks, fake = follower()
    with pytest.raises(ClockError):
        clocks.handle(clock_topic("sim-a"), b'{"stream": "sim-a"}')
    assert clocks.now("solotvyno") == fake.wall.now()
    decoded = clocks.handle(clock_topic("sim-a"), running(SIM0).encode())
    assert decoded is not None and clocks.source("solotvyno") == "sim-a"
    [stream] = clocks.streams()
    assert (
        stream["stream"] == "sim-a"
        and stream["owns"] == ["solotvyno"]
        and stream["state"] == "running"
    )


# ---------------------------------------------------------------------------- properties
step = st.one_of(
    st.tuples(st.just("advance"), st.floats(0.0, 4.0)),
    st.tuples(
        st.just("feed"),
        st.sampled_from(["sim-a", "sim-b"]),
        st.floats(-600.0, 600.0),  # where the announcement says sim is, vs the previous one
        st.sampled_from([0.0, 1.0, 60.0, 600.0]),
        st.booleans(),  # running or stopped
        st.booleans(),  # retained
        st.sampled_from([("s1",), ("s1", "s2"), ("s2",)]),
    ),
    st.tuples(st.just("now"), st.sampled_from(["s1", "s2", "real"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=60))
def test_time_never_goes_backwards_for_a_site_under_one_base(steps) -> None:
    clocks, fake = follower(stale_after=5.0)
    sims = {"sim-a": SIM0, "sim-b": SIM0 + 3600.0}
    last: dict[str, tuple[str | None, float]] = {}
    for item in steps:
        if item[0] == "advance":
            fake.advance(item[1])
        elif item[0] == "feed":
            _, stream, delta, speed, run, retained, sites = item
            sims[stream] = max(946_684_800.0, sims[stream] + delta)
            ann = announce(stream, sites, sims[stream], speed, wall=fake.wall.now())
            clocks.feed(ann if run else ann.stopped(), retained=retained)
        else:
            site = item[1]
            value = clocks.now(site)
            source = clocks.source(site)
            if site == "real":
                assert source is None and value == fake.wall.now()
            before = last.get(site)
            if before is not None and (before[0] == source or source is None):
                # Same base, or back to the wall clock: monotonic. A stream taking a site
                # starts its own (earlier) time: that is a Switch, not a step backwards.
                assert value >= before[1]
            if source is None:
                assert value >= fake.wall.now()
            last[site] = (source, value)


@settings(max_examples=200, deadline=None)
@given(
    speed=st.floats(0.0, 3600.0),
    dt=st.floats(0.0, 4.9),
    sim=st.floats(946_684_800, 3e9),
)
def test_time_follows_the_announced_speed_until_stale(speed, dt, sim) -> None:
    clocks, fake = follower(stale_after=5.0)
    clocks.feed(announce("s", ["x"], sim, speed, wall=WALL0))
    fake.advance(dt)
    assert clocks.now("x") == pytest.approx(sim + dt * speed, rel=1e-12, abs=1e-6)
    fake.advance(5.0 - dt + 0.01)
    assert clocks.source("x") is None
    assert clocks.now("x") >= fake.wall.now()


def test_a_plan_rides_with_the_clock_and_belongs_to_the_live_owner() -> None:
    from datetime import date

    from kordon.schedule.model import DayStatus, ScheduleBuilder
    from kordon.streamclock import StreamPlan

    builder = ScheduleBuilder()
    builder.day("3.1", date(2024, 12, 16), DayStatus.SCHEDULED, [(240, 480, True)])
    builder.day("2", date(2024, 12, 16), DayStatus.EMERGENCY)
    plan = StreamPlan({"solotvyno": "3.1"}, builder.build())
    sent = announce("sim-a", ["solotvyno", "chop"], SIM0, 60.0, wall=WALL0, plan=plan)
    got = ClockAnnouncement.decode(sent.encode(), clock_topic("sim-a"))
    assert got.plan is not None and got.plan.groups == {"solotvyno": "3.1"}
    assert list(got.plan.schedule.groups) == ["3.1"]  # only the groups the stream's sites use
    assert got.plan.schedule.groups["3.1"] == plan.schedule.groups["3.1"]
    assert got.stopped().plan is None
    clocks, fake = follower()
    clocks.feed(got)
    stream, group, schedule = clocks.plan("solotvyno")  # type: ignore[misc]
    assert (stream, group) == ("sim-a", "3.1") and schedule.groups["3.1"]
    assert clocks.plan("chop") is None  # held by the stream, but the plan gives it no group
    assert clocks.plan("elsewhere") is None
    fake.advance(60.0)  # the stream went stale: its plan goes with its clock
    assert clocks.plan("solotvyno") is None


@pytest.mark.parametrize("plan", [
    [], {"groups": []}, {"groups": {"bad site!": "1"}, "schedule": {}},
    {"groups": {"s": "1"}, "schedule": {"groups": {"1": [{"day": "2024-13-40"}]}}},
])
def test_a_malformed_plan_is_refused_with_a_reason(plan: object) -> None:
    import orjson

    document = orjson.loads(running(SIM0).encode())
    document["plan"] = plan
    with pytest.raises(ClockError, match="plan"):
        ClockAnnouncement.decode(orjson.dumps(document))
