"""The stream clock on a real Mosquitto: `kordon simulate` and `kordon replay` announce their
scenario clock, a follower tracks it, and the clock ends (cleanly, or by the last will)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest

from composition import cli
from kordon.model.payload import decode_telemetry
from kordon.model.topics import CLOCK_FILTER, clock_topic, parse_topic
from kordon.streamclock import ClockAnnouncement, StreamClocks
from simulators.clock_announce import ClockAnnouncer
from simulators.mqtt import BrokerTarget, FleetConnections
from simulators.pacing import Pacer, Progress
from testkit import wait_until

SCENARIO = """\
# test
fleet: fleet.yaml
start: 2024-12-16T08:00:00+02:00
duration: 20m
"""
FLEET = """\
sites:
  SITE:
    devices:
      ups-1: {kind: ups, rated_power_w: 20000, battery_wh: 8000, blocks: 32}
      radio-1: {kind: radio}
"""


class Follower:
    """A subscriber that feeds the clock topics into a real StreamClocks and keeps the newest
    telemetry timestamp of the site."""

    def __init__(self, host: str, port: int, site: str) -> None:
        self.clocks = StreamClocks()
        self.announcements: list[tuple[ClockAnnouncement | None, bool]] = []
        self.topics: list[str] = []  # the topic of each of announcements
        self.newest_ts: float | None = None
        self.lock = threading.Lock()
        self.site = site
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(CLOCK_FILTER, 1), (f"kordon/v1/{site}/+/+/telemetry", 1)]
        )
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        if message.topic.startswith("kordon/v1/clock/"):
            announcement = self.clocks.handle(message.topic, message.payload, bool(message.retain))
            with self.lock:
                self.announcements.append((announcement, bool(message.retain)))
                self.topics.append(message.topic)
            return
        ref = parse_topic(message.topic)
        decoded = decode_telemetry(message.payload, ref.kind, now=time.time())
        with self.lock:
            for reading in decoded.readings:
                ts = reading.ts_ns / 1e9
                self.newest_ts = ts if self.newest_ts is None else max(self.newest_ts, ts)

    def of_stream(self, stream: str) -> list[tuple[ClockAnnouncement | None, bool]]:
        """What one stream's topic carried: other tests share the broker (and may leave a
        retained last will of their own behind)."""
        with self.lock:
            return [
                entry
                for entry, topic in zip(self.announcements, self.topics, strict=True)
                if topic == clock_topic(stream)
            ]

    def ours(self) -> list[ClockAnnouncement]:
        with self.lock:
            return [a for a, _ in self.announcements if a is not None and self.site in a.sites]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def follower(mosquitto, site):  # type: ignore[no-untyped-def]
    f = Follower(mosquitto.host, mosquitto.port, site)
    yield f
    f.close()


def _files(tmp_path: Path, site: str) -> Path:
    (tmp_path / "fleet.yaml").write_text(FLEET.replace("SITE", site))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("SITE", site))
    return scenario


def test_simulate_announces_its_clock_and_the_follower_tracks_the_stream(
    mosquitto, follower, site, tmp_path: Path, monkeypatch, capsys
):
    scenario = _files(tmp_path, site)
    monkeypatch.setenv("KORDON_MQTT_URL", mosquitto.url)
    monkeypatch.delenv("KORDON_CONFIG", raising=False)
    result: list[int] = []
    runner = threading.Thread(
        target=lambda: result.append(cli.main(["simulate", str(scenario), "--speed", "120"]))
    )
    runner.start()
    # 20 scenario minutes at 120x: 10 s. While it runs the site is on scenario time, which
    # tracks the newest telemetry (devices report every 10 s = 1/12 s of wall time here).
    wait_until(lambda: follower.clocks.source(site) is not None, 10, what="the stream clock")
    stream = follower.clocks.source(site)
    gaps = []
    while runner.is_alive() and follower.clocks.source(site) == stream:
        now, newest = follower.clocks.now(site), follower.newest_ts
        if newest is not None:
            gaps.append(now - newest)
        time.sleep(0.2)  # sampling the clock while it runs, not waiting for a condition
    runner.join(30)
    assert result == [0]
    assert len(gaps) >= 10
    # Scenario time is neither far ahead of what was published nor behind it: within one
    # report interval (10 s) plus a second of wall time at 120x of the newest reading.
    assert max(gaps) < 10 + 120 and min(gaps) > -(10 + 120), gaps
    assert abs(sorted(gaps)[len(gaps) // 2]) < 60, gaps  # the median within 30 s of wall

    ours = follower.ours()
    assert [a.sites for a in ours] == [(site,)] * len(ours)
    running = [a for a in ours if a.running]
    assert len(running) >= 8  # about one a second for 10 s
    assert {a.speed for a in running} == {120.0}
    assert [a.sim for a in running] == sorted(a.sim for a in running)
    assert not ours[-1].running  # "stopped" at the end
    # Back on the wall clock, and the retained clock was cleared: nothing left for newcomers.
    assert follower.clocks.source(site) is None
    assert abs(follower.clocks.now(site) - time.time()) < 5
    assert follower.of_stream(stream)[-1] == (None, False)  # the empty retained payload
    late = Follower(mosquitto.host, mosquitto.port, site)
    try:
        time.sleep(0.5)  # a retained message arrives right after SUBACK, or never
        assert late.of_stream(stream) == []
    finally:
        late.close()
    err = capsys.readouterr().err
    assert "speed" in err and "of 120x" in err


def test_replay_announces_the_sites_it_meets(mosquitto, follower, site, tmp_path, monkeypatch):
    scenario = _files(tmp_path, site)
    monkeypatch.setenv("KORDON_MQTT_URL", mosquitto.url)
    monkeypatch.delenv("KORDON_CONFIG", raising=False)
    record = tmp_path / "rec.jsonl"
    assert cli.main(["simulate", str(scenario), "--record", str(record), "--quiet"]) == 0
    assert cli.main(["replay", str(record), "--speed", "600", "--quiet"]) == 0
    ours = wait_until(lambda: [a for a in follower.ours() if not a.running], 10, what="stopped")
    running = [a for a in follower.ours() if a.running]
    assert running and running[0].speed == 600.0
    first_sim = min(orjson.loads(line)["t"] for line in record.read_bytes().splitlines())
    assert running[0].sim == pytest.approx(first_sim, abs=1.0)  # the recording's own time
    assert ours and follower.clocks.source(site) is None


def test_a_publisher_that_dies_ends_its_clock_by_its_last_will(mosquitto, follower, site):
    conns = FleetConnections(BrokerTarget(mosquitto.host, mosquitto.port))
    announcer = ClockAnnouncer.start(conns, "test", [site], 60.0, 1_734_328_800.0)
    wait_until(
        lambda: follower.clocks.source(site) is not None or conns.pump(0.05),
        10,
        what="the announcement",
    )
    conns.crash(announcer.client_id)  # socket closed without DISCONNECT
    wait_until(lambda: follower.clocks.source(site) is None, 5, what="the will")
    [(will, retained)] = [
        (a, r) for a, r in follower.of_stream(announcer.stream) if a is not None and not a.running
    ]
    assert will.topic == clock_topic(announcer.stream) and not retained
    conns.close()
    # The will is retained: a follower arriving later learns the stream stopped, and ignores it.
    late = StreamClocks()
    late.handle(will.topic, will.encode(), retained=True)
    assert late.source(site) is None


# ---------------------------------------------------------------------------- the pacer
class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_measures_lag_and_warns_once_when_it_cannot_keep_the_pace() -> None:
    mono = FakeMonotonic()
    warnings: list[str] = []
    pacer = Pacer(100.0, 0.0, warn=warnings.append, monotonic=mono)
    # Events every scenario second; publishing each costs 50 ms of wall time: 20x, not 100x.
    for second in range(400):
        wait = pacer.delay(float(second))
        mono.now += wait + 0.05
    assert pacer.effective_speed() == pytest.approx(20.0, rel=0.05)
    # 20 wall seconds in, the schedule is at 2000 s, the publisher at 399 s.
    assert pacer.lag == pytest.approx(2000 - 399, rel=0.02)
    assert len(warnings) == 1
    assert "cannot keep 100x: publishing at 20x" in warnings[0]
    out = io.StringIO()
    Progress(400.0, 0.0, stream=out, pacer=pacer).update(399.0, 2, 400, force=True)
    assert "speed 20x of 100x  lag 26m" in out.getvalue()


def test_pacer_that_keeps_up_reports_no_lag_and_never_warns() -> None:
    mono = FakeMonotonic()
    warnings: list[str] = []
    pacer = Pacer(100.0, 0.0, warn=warnings.append, monotonic=mono)
    for second in range(0, 4000, 10):  # a reading every 10 scenario seconds, cheap to send
        mono.now += pacer.delay(float(second)) + 0.001
    assert pacer.lag == 0.0 and pacer.max_lag < 1.0
    assert pacer.effective_speed() == pytest.approx(100.0, rel=0.05)
    assert warnings == []


def test_pacer_forgives_a_short_stall() -> None:
    mono = FakeMonotonic()
    warnings: list[str] = []
    pacer = Pacer(100.0, 0.0, warn=warnings.append, monotonic=mono, slow_after=3.0)
    for second in range(0, 6000, 10):
        if second == 3000:
            mono.now += 1.0  # the broker stalls for a second, the publisher catches up
        mono.now += pacer.delay(float(second)) + 0.001
    assert warnings == []
