"""Battery learning in the alert engine (issue 14, part B): ReplaceBattery, depletion pages on
the learned curve, models that survive a restart, and ``kordon battery relearn`` from a real
telemetry store. The streams are the real scenario engine's (one site, one UPS)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml

from alerts.battery import MODEL_VERSION
from alerts.battery.live import BatteryLearning
from alerts.config import RulesSettings
from alerts.replay import ReplayResult, replay
from kordon.fleet import Fleet, read_yaml
from kordon.model.alerts import AlertState
from kordon.model.battery import BATTERY_MEASUREMENT
from kordon.model.kinds import DeviceKind
from kordon.model.payload import DecodeLimits, decode_telemetry
from kordon.model.rehearsal import TimedMessage
from kordon.storage.battery_store import BatteryStore
from kordon.storage.lineprotocol import encode_line
from kordon.storage.sqlite_telemetry import SqliteTelemetryStore
from kordon.storage.telemetry import HistoryRequest
from simulators.engine import ScenarioRun
from simulators.physics.battery import temperature_factor
from simulators.scenario import parse_scenario

START = "2024-12-19T12:00:00+02:00"
LEAD_S = 1800


@dataclass
class Stream:
    messages: list[TimedMessage]
    fleet: Fleet
    start: float
    end: float
    fleet_yaml: str


def stream(
    health: float, outages: list[tuple[int, int]], *, load: float = 0.5, tail: int = 1800,
    ups: dict | None = None, room_c: float = 22.0,
) -> Stream:
    device = {"kind": "ups", "battery_health": health, "base_load_w": load * 2700.0,
              **(ups or {})}
    fleet = {"name": "t", "sites": {"s": {"indoor_c": room_c, "devices": {"u": device}}}}
    last = max(at + length for at, length in outages)
    scenario = {
        "name": "battery",
        "seed": 3,
        "start": START,
        "duration": f"{LEAD_S + last + tail}s",
        "timeline": [{"at": f"{LEAD_S + at}s", "grid_down": {"site": "s", "for": f"{length}s"}}
                     for at, length in outages],
    }
    with tempfile.TemporaryDirectory() as tmp:
        fleet_path = Path(tmp) / "fleet.yaml"
        fleet_path.write_text(yaml.safe_dump(fleet))
        scenario["fleet"] = str(fleet_path)
        path = Path(tmp) / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario))
        loaded = parse_scenario(read_yaml(path))
    run = ScenarioRun(loaded)
    return Stream(list(run.delivered()), loaded.fleet, run.start, run.end, yaml.safe_dump(fleet))


def run(s: Stream, battery: BatteryLearning | None = None) -> tuple[ReplayResult, BatteryLearning]:
    battery = battery if battery is not None else BatteryLearning(s.fleet)
    result = replay(s.messages, RulesSettings(), start=s.start, end=s.end, fleet=s.fleet,
                    battery=battery)
    return result, battery


def fired(result: ReplayResult, name: str) -> list:
    return [t for t in result.transitions
            if t.labels["alertname"] == name and t.state is AlertState.FIRING]


@pytest.fixture(scope="module")
def worn() -> Stream:
    """45 % health, no RB from the firmware: a 5-minute cut (partial), then a long one."""
    return stream(0.45, [(0, 300), (5400, 3600)], ups={"firmware_rb": False})


def test_replace_battery_fires_after_the_first_discharge_with_its_evidence(worn: Stream) -> None:
    result, battery = run(worn)
    (alert,) = fired(result, "ReplaceBattery")
    first_cut_ends = worn.start + LEAD_S + 300
    assert first_cut_ends <= alert.at <= first_cut_ends + 60
    assert alert.at < worn.start + LEAD_S + 5400  # before the outage in which it fails
    text = alert.annotations["summary"] + alert.annotations["description"]
    assert "under the 80% line" in text
    # which outage (the cut at 10:30 UTC; the discharge counts from the last reading on mains)
    assert re.search(r"outage of 19 Dec 2024 10:(29|30) UTC: about 5 minutes on battery", text)
    assert "at today's load" in alert.annotations["summary"] or "load" in text
    assert alert.annotations["reason"] == "health"
    unit = battery.units[("s", "u")]
    truth = 100 * 0.45 * float(temperature_factor(22.0))
    assert unit.model is not None and unit.model.health_pct is not None
    assert abs(unit.model.health_pct - truth) <= 15


def test_depletion_page_uses_the_learned_curve_and_says_so(worn: Stream) -> None:
    result, _ = run(worn)
    pages = fired(result, "BatteryDepletionImminent")
    assert pages, "the worn battery's second outage must page"
    summary = pages[0].annotations["summary"]
    assert "learned battery curve" in summary and "UPS's own estimate" in summary
    assert "more pessimistic" in pages[0].annotations["description"]


def test_replays_give_the_same_figures_every_time(worn: Stream) -> None:
    first, a = run(worn)
    second, b = run(worn)
    model_a, model_b = a.units[("s", "u")].model, b.units[("s", "u")].model
    assert model_a is not None and model_b is not None
    assert model_a.to_dict() == model_b.to_dict()
    assert [(t.at, t.labels, t.annotations) for t in first.transitions] == [
        (t.at, t.labels, t.annotations) for t in second.transitions
    ]


def test_learned_models_survive_a_restart(worn: Stream, tmp_path: Path) -> None:
    store = BatteryStore(tmp_path / "battery.sqlite")
    _, battery = run(worn, BatteryLearning(worn.fleet, store))
    store.close()
    learned = battery.units[("s", "u")].model
    assert learned is not None
    reopened = BatteryStore(tmp_path / "battery.sqlite")
    (row,) = reopened.models()
    assert row.model_version == MODEL_VERSION
    restored = BatteryLearning(worn.fleet, reopened)
    unit = restored.units[("s", "u")]
    assert unit.model is not None and unit.model.to_dict() == learned.to_dict()
    # A restarted engine still knows the battery is worn before any new discharge.
    from alerts.config.rules import ReplaceBatteryRule
    from alerts.replace_battery import replace_battery

    active, notes = replace_battery(unit, ReplaceBatteryRule(), 80.0, None, "s/u")
    assert active and "health" in notes["summary"]
    # A model of another version is not trusted (relearn recomputes it).
    reopened.save([("s", "u", MODEL_VERSION + 1, learned.to_dict(), learned.learned_at)], 0.0)
    assert ("s", "u") not in BatteryLearning(worn.fleet, reopened).units
    reopened.close()


def test_rb_flag_fires_at_once_as_the_stated_reason() -> None:
    s = stream(0.5, [(0, 120)], tail=600)
    result, _ = run(s)
    first = fired(result, "ReplaceBattery")[0]
    assert first.at - s.start < 60
    assert first.annotations["reason"] == "rb"
    assert "reports RB" in first.annotations["summary"]


def test_autonomy_the_site_requires(tmp_path: Path) -> None:
    healthy = stream(1.0, [(0, 480)], tail=600, ups={"autonomy": "2h"})
    result, _ = run(healthy)
    (alert,) = fired(result, "ReplaceBattery")
    assert alert.annotations["reason"] == "autonomy"
    assert "2h00m the site requires" in alert.annotations["summary"]
    plain = stream(1.0, [(0, 480)], tail=600)
    assert not fired(run(plain)[0], "ReplaceBattery")


def test_relearn_recomputes_from_the_telemetry_store(worn: Stream, tmp_path: Path) -> None:
    """The stream as the collector stores it (SQLite store), then the real command."""
    url = f"sqlite:///{tmp_path / 'telemetry.sqlite'}"
    telemetry = SqliteTelemetryStore(tmp_path / "telemetry.sqlite")
    lines = []
    limits = DecodeLimits(max_future_seconds=86400.0 * 3650)
    for message in worn.messages:
        if not message.topic.endswith("/telemetry"):
            continue
        _, _, site, _kind, device, _ = message.topic.split("/")
        for reading in decode_telemetry(message.payload, DeviceKind.UPS, message.time,
                                        limits).readings:
            lines.append(encode_line("ups", {"site": site, "device": device},
                                     reading.fields, reading.ts_ns))
    telemetry.write(("\n".join(lines) + "\n").encode())
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(worn.fleet_yaml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KORDON_")}
    env |= {"KORDON_INFLUX_URL": url, "KORDON_DATA_DIR": str(tmp_path / "data"),
            "KORDON_FLEET": str(fleet_file)}
    done = subprocess.run([sys.executable, "-m", "composition", "battery", "relearn"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[1/1] s/u:" in done.stdout and "health" in done.stdout
    assert "relearned 1 of 1 UPS units" in done.stdout
    store = BatteryStore(tmp_path / "data" / "battery.sqlite")
    (row,) = store.models()
    store.close()
    _, live = run(worn)
    live_model = live.units[("s", "u")].model
    assert live_model is not None and live_model.health_pct is not None
    assert row.model["health_pct"] == pytest.approx(live_model.health_pct, abs=3)
    points = telemetry.history(HistoryRequest(
        BATTERY_MEASUREMENT, "s", "u", {"health_pct": "last"}, 0, int(worn.end * 1e9) + 1, 1
    ))["health_pct"]
    assert len(points) == row.model["discharges"]
    telemetry.close()
    shown = subprocess.run([sys.executable, "-m", "composition", "battery", "show"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert "s/u: health" in shown.stdout, shown.stderr
    assert orjson.loads(orjson.dumps(row.model))["model_version"] == MODEL_VERSION


@pytest.mark.parametrize("odd", [math.inf, math.nan, 1e300, -1.0])
def test_a_reading_at_an_absurd_time_is_ignored(odd: float) -> None:
    """An infinite time kept as the unit's last time dropped every later reading as "old";
    NaN or inf would end as ``int(learned_at * 1e9)`` of the battery_health point."""
    learning = BatteryLearning(None)
    learning.observe("s", "ups", 1_700_000_000.0, {"ups.status": "OL", "battery.charge": 100})
    learning.observe("s", "ups", odd, {"ups.status": "OB", "battery.charge": 99})
    unit = learning.observe("s", "ups", 1_700_000_010.0, {"ups.status": "OB", "ups.load": 40})
    assert unit.last_time == 1_700_000_010.0 and unit.discharging
    assert unit.current is not None and [r.time for r in unit.current] == [1_700_000_010.0]
