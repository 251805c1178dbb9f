"""Replay fidelity: a scenario through the live stack at speed N against ``scenario verify``.

The verify side runs the scenario's stream through the real engine in process on its own
clock (:func:`composition.verify.replay_scenario`, what ``kordon scenario verify`` runs). The
live side is a real Mosquitto, a real ``kordon run --roles alerts`` process (default rules and
routes, the default fleet, transitions written to a real InfluxDB, pages to a real webhook
receiver) and a real publisher process: ``kordon simulate SCENARIO --speed N`` for a whole
scenario, or ``kordon replay FILE --speed N`` for a window of its recording. Both sides' alert
transitions are paired per alert (fingerprint) and instance; each live transition must come
within one evaluation interval times the speed of its verify time.

Shared by ``tests/alerts/test_scenario_time.py`` and ``bench/replay_fidelity.py``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from testkit.alerts import alerts_process
from testkit.processes import KordonProcess
from testkit.receivers import WebhookReceiver
from testkit.servers import InfluxServer, MosquittoServer
from testkit.verified import VerifiedScenarios
from testkit.waiting import wait_until

EVALUATION_INTERVAL = 1.0  # the default rules.evaluation_interval, wall seconds


@dataclass(frozen=True, slots=True)
class Case:
    scenario: str
    speed: float
    window: tuple[float, float] | None = None  # (from, to) seconds of the scenario: replay

    @property
    def mode(self) -> str:
        return "simulate" if self.window is None else "replay"

    @property
    def bound(self) -> float:
        """Scenario seconds a live transition may differ from its verify time."""
        return EVALUATION_INTERVAL * self.speed

    def label(self) -> str:
        if self.window is None:
            return f"{self.scenario} (whole)"
        a, b = self.window
        return f"{self.scenario} {_hm(a)}-{_hm(b)}"


@dataclass(frozen=True, slots=True)
class Fired:
    """One alert transition, ``at`` seconds from the start of the stream."""

    fingerprint: str
    name: str
    where: str
    state: str  # firing | resolved
    at: float
    settled: bool = False  # ended by a change of clock (live side only)


@dataclass(slots=True)
class Row:
    name: str
    where: str
    state: str
    verify: float | None
    live: float | None
    note: str = ""

    @property
    def diff(self) -> float | None:
        if self.verify is None or self.live is None:
            return None
        return self.live - self.verify


@dataclass(slots=True)
class Outcome:
    case: Case
    rows: list[Row] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)  # webhook bodies, in order
    # What the engine decided after the stream's end, in the stream's own time (outbox
    # payloads whose group time passed the end, and every settle notice): a busy engine
    # may deliver a page it decided before the end after the publisher exited, which is no
    # page "after the stop"; judging by arrival order would call it one.
    pages_after_stop: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # outbox payloads, with sentAt
    start: float = 0.0  # the live stream's start (scenario epoch seconds)
    wall_seconds: float = 0.0
    messages: int = 0

    def ok(self) -> bool:
        bound = self.case.bound
        return all(
            r.diff is not None and abs(r.diff) <= bound for r in self.rows
        )

    def worst(self) -> float:
        diffs = [abs(r.diff) for r in self.rows if r.diff is not None]
        return max(diffs) if diffs else 0.0


# ---------------------------------------------------------------------- the verify side
def verify_side(
    case: Case, recording: Path | None = None, verified: VerifiedScenarios | None = None
) -> tuple[list[Fired], float, float]:
    """(transitions, stream start, stream end) of the in-process engine on the stream's clock;
    a whole scenario's answer is taken from ``verified`` when given (computed once a run)."""
    from alerts.config import RulesSettings
    from alerts.replay import replay
    from composition.verify import replay_scenario
    from simulators.scenario import load_scenario

    scenario = load_scenario(case.scenario)
    rules = RulesSettings()
    if case.window is None:
        if verified is not None:
            result = verified.result(case.scenario)
        else:
            result = replay_scenario(scenario, rules)
        start = result.start
    else:
        assert recording is not None
        messages, start, end = recorded_messages(recording)
        result = replay(messages, rules, start=start, end=end, fleet=scenario.fleet)
        start = scenario_start(case.scenario)
    fired = [
        Fired(t.fingerprint, t.labels.get("alertname", ""), _where(t.labels), t.state.value,
              t.at - start)
        for t in result.transitions
    ]
    return fired, result.start, result.end


def _scenario_fleet(name: str) -> str:
    """``kordon scenario fleet NAME``'s output."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "composition", "scenario", "fleet", name],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout


def scenario_start(name: str) -> float:
    from simulators.engine import ScenarioRun
    from simulators.scenario import load_scenario

    return ScenarioRun(load_scenario(name)).start


def record_window(name: str, window: tuple[float, float], path: Path) -> int:
    """Record the scenario and keep the lines in ``window`` (seconds from its start)."""
    from simulators.engine import ScenarioRun
    from simulators.scenario import load_scenario

    run = ScenarioRun(load_scenario(name))
    low, high = run.start + window[0], run.start + window[1]
    kept = 0
    with path.open("wb") as out:
        for chunk in run.record_chunks():
            for line in chunk.splitlines():
                if not line:
                    continue
                t = orjson.loads(line)["t"]
                if low <= t < high:
                    out.write(line + b"\n")
                    kept += 1
            if run.now >= high:
                break
    return kept


def recorded_messages(path: Path) -> tuple[list[Any], float, float]:
    """What ``kordon replay`` publishes of a recording, as timed messages."""
    from kordon.model.rehearsal import TimedMessage
    from simulators.events import Action
    from simulators.record import read_stream

    messages = [
        TimedMessage(item.time, item.topic, item.payload)
        for item in read_stream(path)
        if item.action in (Action.PUBLISH, Action.WILL) and item.time is not None
    ]
    return messages, messages[0].time, messages[-1].time


# ---------------------------------------------------------------------- the live side
def live_side(
    case: Case,
    workdir: Path,
    influx: InfluxServer,
    recording: Path | None = None,
    broker: MosquittoServer | None = None,
) -> tuple[list[Fired], list[dict[str, Any]], list[dict[str, Any]], float, float]:
    """Run the case through broker, alerts process and publisher; returns (transitions
    relative to the stream's start, pages, pages after the publisher stopped, wall seconds).

    A broker of its own unless given one: a previous run's retained statuses must not be the
    first thing a fresh engine hears."""
    from simulators.pacing import choose_start
    from simulators.scenario import load_scenario

    own = broker is None
    if broker is None:
        broker = MosquittoServer(workdir / "mosquitto")
        broker.start()
    hook = WebhookReceiver().start()
    database = f"fid_{uuid.uuid4().hex[:10]}"
    engine = alerts_process(
        workdir, broker, f'notify:\n  webhook_url: "{hook.url()}"\n', influx=influx,
        database=database, rules="", name="alerts",
    )
    # The scenario's fleet (its overrides applied), as an operator rehearsing it would load
    # it: requirements such as a UPS's autonomy are configuration, not physics.
    fleet_file = workdir / "fleet.yaml"
    fleet_file.write_text(_scenario_fleet(case.scenario))
    engine.env["KORDON_FLEET"] = str(fleet_file)
    publisher: KordonProcess | None = None
    try:
        engine.start(ready_line="alerts ready")
        speed = f"{case.speed:g}"
        env = {"KORDON_MQTT_URL": broker.url,
               "KORDON_MQTT_CLIENT_ID": f"pub-{uuid.uuid4().hex[:6]}"}
        if case.window is None:
            scenario = load_scenario(case.scenario)
            start = choose_start(scenario.start, scenario.duration, None, True, case.speed,
                                 time.time())
            assert start is not None
            iso = datetime.fromtimestamp(start, UTC).isoformat()
            args = ["simulate", case.scenario, "--speed", speed, "--quiet", "--start", iso]
        else:
            assert recording is not None
            start = scenario_start(case.scenario)
            args = ["replay", str(recording), "--speed", speed, "--quiet"]
        publisher = KordonProcess(args, env, workdir / "publisher")
        began = time.monotonic()
        publisher.start()
        assert publisher.process is not None
        publisher.process.wait()
        wall = time.monotonic() - began
        stopped_at = len(hook.bodies())
        # The stream's end settles every site it played; wait for the engine to say so.
        sites = _sites_of(case, recording)
        wait_until(
            lambda: all(f"site {s} left the scenario clock" in engine.log_text() for s in sites),
            timeout=30, what="the engine to settle every site of the stream",
        )
        # Whatever the outbox still holds is delivered within its first attempt.
        wait_until(lambda: _outbox_empty(workdir), timeout=30, what="the outbox to drain")
        engine.stop()  # flushes the InfluxDB annotations
        try:
            rows = influx.query("SELECT * FROM alerts", database)
        except RuntimeError as exc:  # no transition at all: the database was never created
            if "database not found" not in str(exc):
                raise
            rows = []
        fired = [
            Fired(
                row.get("fingerprint", ""), row.get("alertname", ""),
                row.get("device") or row.get("site", ""), row.get("state", ""),
                row["time"] / 1e9 - start, bool(row.get("note")),
            )
            for row in rows
        ]
        fired.sort(key=lambda f: f.at)
        bodies = hook.bodies()
        return fired, bodies, bodies[stopped_at:], wall, start
    finally:
        if publisher is not None:
            publisher.stop()
        engine.stop()
        hook.stop()
        if own:
            broker.stop()


def _outbox_empty(workdir: Path) -> bool:
    import sqlite3

    path = workdir / "data" / "alerts.sqlite"
    with sqlite3.connect(path) as db:
        (left,) = db.execute(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND given_up_at IS NULL"
        ).fetchone()
    return left == 0


def _sites_of(case: Case, recording: Path | None) -> list[str]:
    from simulators.scenario import load_scenario

    if recording is None:
        return list(load_scenario(case.scenario).fleet.sites)
    sites = set()
    with recording.open("rb") as lines:
        for line in lines:
            topic = orjson.loads(line).get("topic", "")
            parts = topic.split("/")
            if len(parts) > 2:
                sites.add(parts[2])
    return sorted(sites)


# ---------------------------------------------------------------------- pairing
def compare(case: Case, verified: list[Fired], live: list[Fired]) -> list[Row]:
    """Pair the i-th transition of each (alert, state) on both sides.

    A live alert still firing when the stream stopped is ended by the change of clock
    (``settled``); it pairs with a verify alert still firing at the end, or resolving after
    the live stream had stopped."""
    rows: list[Row] = []
    keys: dict[tuple[str, str], tuple[str, str]] = {}
    sides: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for f in verified:
        keys[(f.fingerprint, f.state)] = (f.name, f.where)
        sides.setdefault((f.fingerprint, f.state), ([], []))[0].append(f.at)
    settled: dict[str, Fired] = {}
    for f in live:
        if f.settled:
            settled[f.fingerprint] = f
            continue
        keys[(f.fingerprint, f.state)] = (f.name, f.where)
        sides.setdefault((f.fingerprint, f.state), ([], []))[1].append(f.at)
    for key, (ver, liv) in sides.items():
        name, where = keys[key]
        fp, state = key
        for i in range(max(len(ver), len(liv))):
            v = ver[i] if i < len(ver) else None
            w = liv[i] if i < len(liv) else None
            note = ""
            if state == "resolved" and w is None and fp in settled:
                note = "live: ended by the stream's stop"
                w = settled.pop(fp).at
            rows.append(Row(name, where, state, v, w, note))
    for fp, f in settled.items():
        firing = sides.get((fp, "firing"), ([], []))[0]
        resolved = sides.get((fp, "resolved"), ([], []))[0]
        if len(firing) > len(resolved):
            continue  # verify: still firing at the end; live: ended when the stream stopped
        rows.append(Row(f.name, f.where, "resolved", None, f.at, "live: ended by a switch"))
    rows.sort(key=lambda r: (min(x for x in (r.verify, r.live) if x is not None), r.name))
    return rows


def run_case(
    case: Case, workdir: Path, influx: InfluxServer, broker: MosquittoServer | None = None,
    verified: VerifiedScenarios | None = None,
) -> Outcome:
    workdir.mkdir(parents=True, exist_ok=True)
    recording = None
    if case.window is not None:
        recording = workdir / "window.jsonl"
        record_window(case.scenario, case.window, recording)
    verified_side, verify_start, verify_end = verify_side(case, recording, verified)
    live, pages, _arrived_after, wall, start = live_side(case, workdir, influx, recording, broker)
    # The stream's end on the live stream's clock: a whole scenario was published from
    # ``start``; a window keeps its recording's timestamps, as verify read them.
    stream_end = verify_end if case.window is not None else start + (verify_end - verify_start)
    sent = outbox_payloads(workdir)
    after = [p for p in sent
             if p["groupKey"].startswith("settle:") or p.get("sentAt", 0.0) > stream_end]
    outcome = Outcome(case, compare(case, verified_side, live), pages=pages, pages_after_stop=after,
                      sent=sent, start=start, wall_seconds=wall)
    return outcome


def outbox_payloads(workdir: Path) -> list[dict[str, Any]]:
    """What the engine queued, in order, with Kordon's ``sentAt`` (the group's time)."""
    import sqlite3

    with sqlite3.connect(workdir / "data" / "alerts.sqlite") as db:
        rows = db.execute("SELECT payload FROM outbox ORDER BY id").fetchall()
    return [orjson.loads(payload) for (payload,) in rows]


# ---------------------------------------------------------------------- text
def _where(labels: dict[str, str]) -> str:
    return labels.get("device") or labels.get("site", "")


def _hm(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rest = divmod(round(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}"


def table(outcomes: list[Outcome]) -> str:
    head = ("scenario", "speed", "via", "alert", "state", "verify", "live", "diff", "bound", "ok")
    lines = [head]
    for o in outcomes:
        c = o.case
        for r in o.rows:
            diff = r.diff
            ok = diff is not None and abs(diff) <= c.bound
            lines.append((
                c.label(), f"{c.speed:g}x", c.mode, f"{r.name} {r.where}", r.state + (
                    "*" if r.note else ""),
                _hm(r.verify), _hm(r.live), "-" if diff is None else f"{diff:+.0f}s",
                f"{c.bound:g}s", "ok" if ok else "NO",
            ))
        if not o.rows:
            lines.append((c.label(), f"{c.speed:g}x", c.mode, "(no alerts on either side)",
                          "", "", "", "", f"{c.bound:g}s", "ok"))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    out = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
           for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
