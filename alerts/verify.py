"""Check expectations against what the real engine did with a stream: ``scenario verify``.

The role ``promtool test rules`` plays for Prometheus: a stream of timed messages (a
scenario run, fed by the composition layer, composition/verify.py) runs fast-forward through
the real engine on the stream's clock, and every expectation is checked against the alert
transitions:

``within``     a matching alert fires between ``after`` and ``after + within``;
``never``      no matching alert fires at or after ``after``;
``resolve_by`` every matching alert that fired has resolved by that time (and one fired).

Times count from the start of the scenario. Labels match when the alert carries them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alerts.config import RulesSettings
from alerts.replay import ReplayResult, replay
from kordon.durations import format_duration
from kordon.fleet import Fleet
from kordon.model.alerts import AlertState
from kordon.model.rehearsal import Expectation, TimedMessage
from kordon.schedule import SiteSchedules


@dataclass(frozen=True, slots=True)
class Check:
    scenario: str
    expectation: str
    ok: bool
    detail: str


def _describe(e: Expectation) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
    what = f"{e.alertname}{{{labels}}}" if labels else e.alertname
    if e.never:
        return f"{what} never" + (f" after {format_duration(e.after)}" if e.after else "")
    parts = []
    if e.within is not None:
        parts.append(f"fires {format_duration(e.after)}..{format_duration(e.after + e.within)}")
    if e.resolve_by is not None:
        parts.append(f"resolved by {format_duration(e.resolve_by)}")
    return f"{what} " + ", ".join(parts)


def check(
    scenario_name: str, expectations: Sequence[Expectation], result: ReplayResult
) -> list[Check]:
    checks = []
    for e in expectations:
        matching = [
            t for t in result.transitions
            if t.labels.get("alertname") == e.alertname
            and all(t.labels.get(k) == v for k, v in e.labels.items())
        ]
        fired = [t.at - result.start for t in matching if t.state is AlertState.FIRING]
        problems = []
        if e.never:
            late = [t for t in fired if t >= e.after]
            if late:
                problems.append(f"fired at {format_duration(late[0])}")
        if e.within is not None:
            window = [t for t in fired if e.after <= t <= e.after + e.within]
            if not window:
                problems.append(
                    f"first fired at {format_duration(fired[0])}" if fired else "never fired"
                )
        if e.resolve_by is not None:
            last: dict[str, tuple[float, AlertState]] = {}
            for t in matching:
                last[t.fingerprint] = (t.at - result.start, t.state)
            if not last:
                problems.append("never fired, so nothing resolved")
            for _fp, (at, state) in sorted(last.items()):
                if state is not AlertState.RESOLVED:
                    problems.append("still firing at the end")
                    break
                if at > e.resolve_by:
                    problems.append(f"resolved only at {format_duration(at)}")
                    break
        ok = not problems
        detail = "; ".join(problems) if problems else (
            f"fired at {format_duration(fired[0])}" if fired else "did not fire"
        )
        checks.append(Check(scenario_name, _describe(e), ok, detail))
    return checks


def verify(
    name: str,
    messages: Iterable[TimedMessage],
    expectations: Sequence[Expectation],
    rules: RulesSettings,
    *,
    start: float,
    end: float,
    fleet: Fleet | None = None,
    schedules: SiteSchedules | None = None,
) -> list[Check]:
    """Replay ``messages`` (``start`` to ``end``) through a fresh engine and check them."""
    result = replay(messages, rules, start=start, end=end, fleet=fleet, schedules=schedules)
    return check(name, expectations, result)


def table(checks: list[Check]) -> str:
    rows = [("scenario", "expectation", "result", "detail")] + [
        (c.scenario, c.expectation, "ok" if c.ok else "FAIL", c.detail) for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(row[i].ljust(widths[i]) for i in range(3)) + "  " + row[3] for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)
