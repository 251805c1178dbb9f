"""The live engine on a 600x stream, in process, against ``scenario verify``: every alert
transition of the scenario paired within the bound (one evaluation interval times the speed).

The real-process runs (``test_scenario_time.py``, ``bench/replay_fidelity.py``) cost minutes a
scenario; in process a day takes seconds, so the scenarios that stress the timeline most run
here whole: rolling cuts with depletion flaps and the schedule forecast, worn batteries
(``scheduled-cuts-hourly`` passes too, in 100 s: left to ``bench/replay_fidelity.py``).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from alerts.config import RulesSettings
from alerts.engine import Transition
from simulators.engine import ScenarioRun
from simulators.scenario import load_scenario
from testkit.instream import play_in_process
from testkit.verified import VerifiedScenarios

SPEED = 600.0
BOUND = RulesSettings().evaluation_interval * SPEED
# The watermark of a streamed site lags its readings by the transit allowance (2 s at speed):
# what verify decides in the last such stretch the live engine has not judged yet at the end.
TAIL = 2.0 * SPEED + BOUND


def _by_alert(transitions: list[Transition], until: float) -> dict[tuple[str, ...], list[float]]:
    found: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for t in transitions:
        if t.at <= until:
            key = (t.labels["alertname"], t.labels.get("site", ""), t.labels.get("device", ""),
                   t.state.value)
            found[key].append(t.at)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rolling-outages", "battery-wear"])
def test_a_600x_stream_pages_as_verify(name: str, verified: VerifiedScenarios) -> None:
    scenario = load_scenario(name)
    messages = list(ScenarioRun(scenario).delivered())  # the simulation verify ran too
    live, start, end = play_in_process(scenario, SPEED, messages)
    expected = _by_alert(verified.result(name).transitions, end - TAIL)
    got = _by_alert(live, end)
    differences = []
    for key, times in sorted(expected.items()):
        seen = got.get(key, [])
        if len(seen) < len(times):
            differences.append(f"{'/'.join(key)}: verify {len(times)}, live {len(seen)} "
                               f"at {[round(t - start) for t in seen]} vs "
                               f"{[round(t - start) for t in times]}")
            continue
        for want, have in zip(times, seen, strict=False):
            if abs(have - want) > BOUND:
                differences.append(f"{'/'.join(key)} at {want - start:.0f} s: live "
                                   f"{have - want:+.0f} s")
    extra = [f"{'/'.join(k)}: live {len(v)}, verify {len(expected.get(k, []))}"
             for k, v in got.items()
             if len([t for t in v if t <= end - TAIL]) > len(expected.get(k, []))]
    assert not differences and not extra, "\n".join(differences + extra)
