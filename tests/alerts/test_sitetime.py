"""Site time on its own: the wall clock, a stream's evidenced time, its watermark, switches."""

from __future__ import annotations

import pytest

from alerts.sitetime import TRANSIT, TRANSIT_MAX, SiteTime
from kordon.clock import SimulatedClock
from kordon.model.payload import DecodeLimits, Reading
from kordon.streamclock import StreamClocks, announce

WALL0 = 1_900_000_000.0
SIM0 = 1_700_000_000.0
LIMITS = DecodeLimits(max_future_seconds=300.0)


def _reading(at: float) -> Reading:
    return Reading(int(at * 1e9), None, {})


def _streamed(speed: float = 60.0) -> tuple[SiteTime, StreamClocks, SimulatedClock]:
    wall = SimulatedClock(WALL0)
    clocks = StreamClocks(wall, lambda: wall.now() - WALL0)
    clocks.handle("kordon/v1/clock/s1",
                  announce("s1", ["a"], SIM0, speed, wall=wall.now()).encode())
    time = SiteTime(clocks, LIMITS, wall.now())
    switches = time.switches()
    assert [(s.site, s.before, s.after) for s in switches] == [("a", None, "s1")]
    assert time.switch(switches[0], wall.now()) == (None, wall.now())
    time.follow()
    return time, clocks, wall


def test_a_site_on_the_wall_clock_is_judged_at_the_callers_time() -> None:
    time = SiteTime(None, LIMITS, WALL0)
    assert time.time_of("a", WALL0 + 5) == WALL0 + 5
    assert time.now_of(WALL0) is None
    assert time.speed() == 0.0
    assert time.switches() == []
    arrival = time.arrival("a", WALL0 + 5)
    assert arrival.stream is None and arrival.limits is LIMITS
    assert arrival.site_now == arrival.future_from == WALL0 + 5
    # A reading's own timestamp does not move a wall-clock site's time.
    assert time.admit(arrival, [_reading(WALL0 - 100)]) == WALL0 + 5


def test_a_streamed_site_runs_on_its_watermark_and_readings_move_it() -> None:
    time, _, wall = _streamed(60.0)
    # Counted from the announced time: readings in flight from before it still count.
    assert time.cutoff["a"] == SIM0 - TRANSIT * 60.0
    assert time.time_of("a", wall.now()) == SIM0 - TRANSIT * 60.0
    assert time.time_of("b", wall.now()) == wall.now()  # another site: the wall clock
    assert time.speed() == 60.0
    arrival = time.arrival("a", wall.now())
    assert arrival.stream == "s1" and arrival.stream_now == SIM0
    assert arrival.limits.max_future_seconds == 300.0  # 2 wall seconds at 60x is less
    assert time.admit(arrival, [_reading(SIM0 + 10), _reading(SIM0 + 20)]) == SIM0 + 20
    assert time.time_of("a", wall.now()) == SIM0 + 20 - TRANSIT * 60.0
    # A late reading does not move the time back, but widens the allowance (1.5 x lateness)
    # up to TRANSIT_MAX wall seconds of the stream.
    late = time.arrival("a", wall.now())
    assert time.admit(late, [_reading(SIM0 - 20)]) == SIM0 - 20
    assert time.time_of("a", wall.now()) == SIM0 + 20 - 1.5 * 40
    time.admit(time.arrival("a", wall.now()), [_reading(SIM0 - 1000)])
    assert time.time_of("a", wall.now()) == SIM0 + 20 - TRANSIT_MAX * 60.0
    assert time.silence_now("s1") == time.time_of("a", wall.now())
    assert time.group_now("a") == time.time_of("a", time.wall_now)


def test_an_announced_time_counts_transit_max_late() -> None:
    time, clocks, wall = _streamed(60.0)
    wall.advance(1.0)
    clocks.handle("kordon/v1/clock/s1",
                  announce("s1", ["a"], SIM0 + 600, 60.0, wall=wall.now()).encode())
    assert time.switches() == []
    time.follow()
    stream_now = SIM0 + 600 - TRANSIT_MAX * 60.0
    assert time.time_of("a", wall.now()) == stream_now - TRANSIT * 60.0


def test_a_stopped_stream_hands_its_site_back_to_the_wall_clock() -> None:
    time, clocks, wall = _streamed(60.0)
    time.admit(time.arrival("a", wall.now()), [_reading(SIM0 + 30)])
    wall.advance(1.0)
    clocks.handle("kordon/v1/clock/s1", announce(
        "s1", ["a"], SIM0 + 60, 60.0, wall=wall.now(), state="stopped").encode())
    switches = time.switches()
    assert [(s.site, s.before, s.after) for s in switches] == [("a", "s1", None)]
    old, last = time.switch(switches[0], wall.now())
    assert (old, last) == ("s1", SIM0 + 30)  # the old clock's last evidenced time
    assert time.cutoff["a"] == max(switches[0].at, last)
    assert time.time_of("a", wall.now()) == wall.now()
    assert time.silence_now("s1") == -float("inf")  # nothing of it is tracked any more
    assert time.speed() == 0.0


@pytest.mark.parametrize("speed", [0.5, 1000.0])
def test_the_future_margin_is_two_wall_seconds_of_the_stream(speed: float) -> None:
    time, clocks, wall = _streamed(speed)
    arrival = time.arrival("a", wall.now())
    assert arrival.limits.max_future_seconds == max(300.0, 2.0 * speed)
    assert arrival.future_from == clocks.now("a")
