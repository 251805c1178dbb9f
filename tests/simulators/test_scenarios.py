"""Fleet and scenario files, the scenario library, determinism and the recorded format."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from kordon.clock import SimulatedClock
from kordon.fleet import FleetError, load_fleet
from kordon.model.payload import decode_telemetry
from kordon.model.topics import Channel, parse_topic
from simulators.engine import ScenarioRun
from simulators.events import Action
from simulators.record import Recorder, read_stream
from simulators.scenario import library, load_scenario

SMALL_FLEET = """\
name: test
sites:
  alpha:
    queue: 1
    devices:
      ups-1: {kind: ups, rated_power_w: 20000, battery_wh: 8000, blocks: 32}
      scanner-1: {kind: scanner, fed_by: ups-1, warmup: 5m}
      radio-1: {kind: radio, battery_ah: 38}
  beta:
    queue: 2
    generator: {start_delay: 10s}
    devices:
      ups-1: {kind: ups}
      radio-1: {kind: radio}
"""


def write_scenario(tmp_path: Path, body: str, fleet: str = SMALL_FLEET) -> Path:
    (tmp_path / "fleet.yaml").write_text(fleet)
    path = tmp_path / "scenario.yaml"
    path.write_text("fleet: fleet.yaml\nstart: 2024-12-16T08:00:00+02:00\n" + body)
    return path


def recorded_bytes(path: Path | str, seed: int | None = None, hours: float | None = None) -> bytes:
    """The recording of a scenario: whole, or its first ``hours``."""
    out = io.BytesIO()
    run = ScenarioRun(load_scenario(path), seed=seed)
    until = run.end if hours is None else run.start + hours * 3600.0
    with Recorder(out) as recorder:
        for chunk in run.record_chunks():
            recorder.write_chunk(chunk)
            if run.now >= until:
                break
    return out.getvalue()


# ---------------------------------------------------------------------------- the library


def test_the_default_fleet_has_the_western_crossings_with_all_three_kinds():
    fleet = load_scenario("normal-day").fleet
    for site in ("uzhhorod", "chop", "solotvyno", "kosyno", "dzvinkove", "yahodyn", "rava-ruska"):
        kinds = {params.kind for params in fleet.sites[site].devices.values()}
        assert kinds == {"ups", "scanner", "radio"}, site
    assert fleet.fed_by("chop", "scanner-rail") == "ups-rail"
    assert fleet.fed_devices("chop", "ups-rail") == ["scanner-rail"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(library()))
def test_every_library_scenario_parses_runs_and_says_what_to_expect(name: str):
    path = library()[name]
    text = path.read_text()
    assert text.startswith("#") and "What an operator should see" in text
    scenario = load_scenario(name)
    assert scenario.expect, "each library scenario carries expectations for the alert engine"
    assert all("alertname" in e for e in scenario.expectations)
    # How fast a day records is measured by ``python -m bench.simulate``, not asserted here:
    # a wall-clock bound fails on a busy host (parallel test workers) and proves nothing.
    # The first hour is recorded: every scenario's whole day is simulated by its verify
    # (tests/alerts/test_engine.py), and whole recordings are compared byte for byte below.
    data = recorded_bytes(path, hours=1.0)
    lines = data.splitlines()
    assert len(lines) > 1000
    times = [orjson.loads(line)["t"] for line in lines]
    run = ScenarioRun(scenario)
    assert times == sorted(times) and run.start <= times[0] and times[-1] < run.start + 3700


def test_library_telemetry_decodes_with_zero_errors_and_malformed_firmware_with_errors():
    for name in ("device-crash", "malformed-firmware"):
        run = ScenarioRun(load_scenario(name))
        good = bad = 0
        for event in run:
            if event.action is not Action.PUBLISH:
                continue
            ref = parse_topic(event.topic)
            if ref.channel is Channel.STATUS:
                assert event.payload in (b"online", b"offline") and event.retain
                continue
            decoded = decode_telemetry(event.payload, ref.kind, now=event.time)
            if decoded.errors:
                bad += 1
                assert name == "malformed-firmware", decoded.errors
                assert not decoded.readings
            else:
                good += 1
        assert good > 1000
        if name == "malformed-firmware":
            assert bad == 40  # every injected payload is refused, nothing else is


# ---------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    first = recorded_bytes("device-crash")
    assert first == recorded_bytes("device-crash")
    assert first != recorded_bytes("device-crash", seed=12345)


def test_the_fast_record_path_writes_what_the_event_recorder_writes():
    scenario = load_scenario("device-crash")
    via_events = io.BytesIO()
    with Recorder(via_events) as recorder:
        for batch in ScenarioRun(scenario).batches():
            recorder.write(batch)
    assert via_events.getvalue() == recorded_bytes("device-crash")


def test_recorded_stream_reads_back_with_exact_payloads(tmp_path: Path):
    scenario = load_scenario("malformed-firmware")
    events = list(ScenarioRun(scenario))
    path = tmp_path / "rec.jsonl"
    with open(path, "wb") as stream, Recorder(stream) as recorder:
        recorder.write(events)
    items = list(read_stream(path))
    assert [(i.time, i.topic, i.payload, i.retain, i.action) for i in items] == [
        (e.time, e.topic, e.payload, e.retain, e.action) for e in events
    ]
    assert any(b"\xff" in i.payload for i in items)  # invalid UTF-8 kept byte for byte


def test_mosquitto_sub_capture_takes_its_times_from_the_payload(tmp_path: Path):
    capture = tmp_path / "capture.txt"
    capture.write_bytes(
        b"kordon/v1/chop/ups/ups-1/status online\n"
        b'kordon/v1/chop/ups/ups-1/telemetry {"ts":1734156000.5,"metrics":{"ups.load":12.0}}\n'
        b'kordon/v1/chop/ups/ups-1/telemetry {"ts":"2024-12-14T06:00:10Z","metrics":{}}\n'
    )
    items = list(read_stream(capture))
    assert [i.time for i in items] == [None, 1734156000.5, 1734156010.0]
    assert items[0].retain and not items[1].retain


# ---------------------------------------------------------------------------- wire semantics


def test_crash_hang_and_clean_power_off_look_as_they_would_on_the_wire(tmp_path: Path):
    path = write_scenario(
        tmp_path,
        "duration: 30m\ntimeline:\n"
        "  - {at: 5m, device_crash: {site: alpha, device: radio-1, restart_after: 2m}}\n"
        "  - {at: 10m, device_hang: {site: beta, device: radio-1, for: 5m}}\n"
        "  - {at: 20m, device_power_off: {site: beta, device: ups-1}}\n",
    )
    run = ScenarioRun(load_scenario(path))
    events = list(run)
    t0 = run.start

    def of(site: str, device: str) -> list[tuple[float, Action, bytes]]:
        return [(e.time - t0, e.action, e.payload) for e in events
                if f"/{site}/" in e.topic and e.topic.split("/")[4] == device]  # fmt: skip

    crash = [x for x in of("alpha", "radio-1") if x[1] is not Action.PUBLISH or b"ts" not in x[2]]
    assert crash[2:6] == [
        (300.0, Action.CRASH, b""),
        (300.0, Action.WILL, b"offline"),  # the broker sends the will at once
        (420.0, Action.CONNECT, b""),
        (420.0, Action.PUBLISH, b"online"),
    ]
    hang = [x for x in of("beta", "radio-1") if x[1] is not Action.PUBLISH or b"ts" not in x[2]]
    assert hang[2:6] == [
        (600.0, Action.HANG, b""),
        (645.0, Action.WILL, b"offline"),  # 1.5 x the 30 s keep-alive
        (900.0, Action.CONNECT, b""),
        (900.0, Action.PUBLISH, b"online"),
    ]
    off = [x for x in of("beta", "ups-1") if x[1] is not Action.PUBLISH or b"ts" not in x[2]]
    assert off[2:] == [(1200.0, Action.PUBLISH, b"offline"), (1200.0, Action.DISCONNECT, b"")]
    # after the crash the device rebooted: seq restarts at 0; the hung one rebooted too
    seqs = [orjson.loads(p)["seq"] for t, a, p in of("alpha", "radio-1") if p.startswith(b"{")]
    assert seqs.count(0) == 2
    # nothing is published while crashed or hung
    assert not [t for t, a, p in of("beta", "radio-1") if 600 < t < 900 and p.startswith(b"{")]


def test_blackout_beyond_ups_runtime_stops_the_scanner_and_comes_back_through_warmup(
    tmp_path: Path,
):
    path = write_scenario(
        tmp_path, "duration: 3h\ntimeline:\n  - {at: 10m, grid_down: {site: alpha, for: 1h}}\n"
    )
    run = ScenarioRun(load_scenario(path))
    states = []
    ups_status = []
    for event in run:
        if event.topic.endswith("alpha/scanner/scanner-1/telemetry"):
            metrics = orjson.loads(event.payload)["metrics"]
            states.append(
                (event.time - run.start, metrics["scanner.phase"], metrics["power.source"])
            )
        if event.topic.endswith("alpha/ups/ups-1/telemetry"):
            ups_status.append(
                (event.time - run.start, orjson.loads(event.payload)["metrics"]["ups.status"])
            )
    assert any(s == "OB DISCHRG" for t, s in ups_status if 600 < t < 700)
    assert any("LB" in s for t, s in ups_status)
    on_ups = [t for t, phase, source in states if source == "ups"]
    off = [t for t, phase, source in states if phase == "off"]
    assert on_ups and off and min(off) > min(on_ups)
    back = [(t, phase) for t, phase, _ in states if t > 4200]
    phases = [phase for _, phase in back]
    assert phases[0] == "self-test" and "warmup" in phases and phases[-1] in ("ready", "scanning")


def test_step_until_moves_a_simulated_clock_for_an_in_process_consumer(tmp_path: Path):
    path = write_scenario(tmp_path, "duration: 10m\n")
    scenario = load_scenario(path)
    assert scenario.start is not None
    clock = SimulatedClock(scenario.start)
    run = ScenarioRun(scenario, clock)
    batch = run.step_until(scenario.start + 60)
    assert batch and all(e.time < scenario.start + 60 for e in batch)
    assert clock.now() == scenario.start + 60
    seen = []
    for event in run:
        assert clock.now() == event.time
        seen.append(event.time)
    assert seen == sorted(seen) and run.done
    assert clock.now() == scenario.start + 600


# ---------------------------------------------------------------------------- errors


def test_fleet_errors_name_the_line_and_the_key(tmp_path: Path):
    bad = SMALL_FLEET.replace(
        "scanner-1: {kind: scanner, fed_by: ups-1", "scanner-1: {kind: scanner, fed_by: ups-9"
    )
    path = tmp_path / "fleet.yaml"
    path.write_text(bad)
    with pytest.raises(
        FleetError, match=r"fleet.yaml:7: sites.alpha.devices.scanner-1.fed_by: no UPS 'ups-9'"
    ):
        load_fleet(path)
    path.write_text(SMALL_FLEET.replace("battery_ah: 38}", "battery_ah: 38, colour: red}"))
    with pytest.raises(
        FleetError, match=r"fleet.yaml:8: sites.alpha.devices.radio-1.colour: unknown key"
    ):
        load_fleet(path)
    path.write_text(SMALL_FLEET.replace("rated_power_w: 20000", "rated_power_w: lots"))
    with pytest.raises(FleetError, match=r"fleet.yaml:6: sites.alpha.devices.ups-1.rated_power_w"):
        load_fleet(path)
    path.write_text(SMALL_FLEET + "  alpha:\n    devices: {}\n")
    with pytest.raises(
        FleetError, match=r"fleet.yaml:15: alpha: duplicate key \(first on line 3\)"
    ):
        load_fleet(path)


def test_scenario_errors_name_the_line_and_the_key(tmp_path: Path):
    cases = {
        "duration: 1h\ntimeline:\n  - {at: 10 minutes, grid_down: {site: alpha}}\n":
            r"scenario.yaml:5: timeline.0.at: invalid duration '10 minutes'",
        "duration: 1h\ntimeline:\n  - {at: 1m, grid_dwn: {site: alpha}}\n":
            r"scenario.yaml:5: timeline.0.grid_dwn: unknown action",
        "duration: 1h\ntimeline:\n  - at: 1m\n    grid_down: {site: gamma}\n":
            r"scenario.yaml:6: timeline.0.grid_down: no site 'gamma'",
        "duration: 1h\ntimeline:\n  - at: 1m\n    device_crash: {site: alpha, device: x, x: 1}\n":
            r"scenario.yaml:6: timeline.0.device_crash.x: unknown key",
        "duration: 1h\ntimeline:\n  - at: 2h\n    grid_down: {site: alpha}\n":
            r"scenario.yaml:5: timeline.0.at: at 7200 s is after the end",
        "duration: 1h\nexpect:\n  - {alertname: SitePowerOutage}\n":
            r"scenario.yaml:5: expect.0: say within",
        "duration: soon\n": r"scenario.yaml:3: duration: invalid duration",
    }  # fmt: skip
    for body, message in cases.items():
        with pytest.raises(FleetError, match=message):
            load_scenario(write_scenario(tmp_path, body))


def test_scenario_fleet_prints_the_fleet_a_rehearsal_loads(tmp_path: Path) -> None:
    """`kordon scenario fleet` (the real command): a valid fleet file with the scenario's
    overrides applied, loadable as KORDON_FLEET; an unknown scenario is a clear error."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "composition", "scenario", "fleet", "battery-wear"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    (tmp_path / "fleet.yaml").write_text(done.stdout)
    fleet = load_fleet(tmp_path / "fleet.yaml")
    assert fleet.autonomy("rava-ruska", "ups-it") == 3600.0  # the scenario's override
    assert fleet == load_scenario("battery-wear").fleet
    bad = subprocess.run([sys.executable, "-m", "composition", "scenario", "fleet", "no-such"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no-such" in bad.stderr and "library has" in bad.stderr
