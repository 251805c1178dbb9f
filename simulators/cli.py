"""``kordon simulate`` and ``kordon replay``.

Heavy imports (NumPy, paho) happen inside the handlers so ``kordon --help`` stays fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any


def _stop_on_sigterm() -> None:
    """SIGTERM (the API's "Stop" of a run, systemd, docker stop) ends a publisher like Ctrl-C:
    devices powered off, the stream clock "stopped" and its retained message cleared, rather
    than dying and leaving last wills behind."""
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def register(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run a scenario: publish to the broker, or record to a file",
        description="Run a scenario (a path or a library name) and publish each simulated "
        "device over its own MQTT connection, with last wills, or record the stream.",
    )
    simulate.add_argument("scenario", help="scenario file, or a name from simulators/scenarios/")
    pace = simulate.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None, help="N times real time (default 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    simulate.add_argument("--record", metavar="FILE", help="write JSON lines instead of publishing")
    simulate.add_argument("--seed", type=int, help="replace the scenario's seed")
    simulate.add_argument(
        "--start",
        help="simulated start time (RFC 3339 or 'now'); default: see docs/simulators.md",
    )
    simulate.add_argument("--fleet", help="fleet file to use instead of the scenario's")
    simulate.add_argument("--quiet", action="store_true", help="no progress line")
    simulate.set_defaults(handler=cmd_simulate)

    replay = commands.add_parser(
        "replay",
        help="publish a recorded stream with its original spacing",
        description="Publish a file written by 'kordon simulate --record' or captured with "
        "mosquitto_sub -v -t 'kordon/v1/#', keeping the original spacing scaled by --speed.",
    )
    replay.add_argument("file")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="N times the original pace")
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    replay.add_argument("--quiet", action="store_true", help="no progress line")
    replay.set_defaults(handler=cmd_replay)


def _fail(message: str) -> int:
    print(f"kordon: {message}", file=sys.stderr)
    return 2


def cmd_simulate(args: argparse.Namespace, settings: Any) -> int:
    from kordon.fleet import FleetError, load_fleet
    from simulators.engine import ScenarioRun
    from simulators.pacing import choose_start
    from simulators.scenario import load_scenario

    try:
        fleet = load_fleet(args.fleet) if args.fleet else None
        scenario = load_scenario(args.scenario, fleet)
    except FleetError as exc:
        return _fail(str(exc))
    speed = None if args.fast else (args.speed if args.speed is not None else 1.0)
    live = not args.record
    try:
        start = choose_start(
            scenario.start, scenario.duration, args.start, live, speed, time.time()
        )
    except ValueError as exc:
        return _fail(str(exc))
    run = ScenarioRun(scenario, start=start, seed=args.seed)
    if args.record:
        return _record(run, args.record, args.quiet)
    return _publish(run, settings, speed, args.quiet)


def _record(run: Any, path: str, quiet: bool) -> int:
    from simulators.pacing import Progress
    from simulators.record import Recorder

    progress = Progress(run.end - run.start, run.start)
    with open(path, "wb", buffering=1 << 20) as stream, Recorder(stream) as recorder:
        for chunk in run.record_chunks():
            recorder.write_chunk(chunk)
            if not quiet:
                progress.update(run.now, run.devices_online(), recorder.lines)
    if not quiet:
        progress.update(run.end, run.devices_online(), recorder.lines, force=True)
        progress.finish()
    return 0


def _publish(run: Any, settings: Any, speed: float | None, quiet: bool) -> int:
    from simulators.mqtt import BrokerTarget, BrokerUnavailable
    from simulators.pacing import Progress
    from simulators.publish import ScenarioPublisher

    _stop_on_sigterm()
    publisher = ScenarioPublisher(run, BrokerTarget.from_settings(settings.mqtt), speed)
    progress = Progress(run.end - run.start, run.start, pacer=publisher.pacer)
    try:
        publisher.play(progress=None if quiet else progress)
    except BrokerUnavailable as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("\nkordon simulate: interrupted; powering the devices off", file=sys.stderr)
    finally:
        publisher.close()
        if not quiet:
            progress.finish()
    return 0


def cmd_replay(args: argparse.Namespace, settings: Any) -> int:
    from simulators.clock_announce import ClockAnnouncer
    from simulators.events import Action
    from simulators.mqtt import BrokerTarget, BrokerUnavailable, ReplayPublisher
    from simulators.pacing import Pacer, Progress
    from simulators.record import ReplayFormatError, read_stream

    speed = None if args.fast else args.speed
    try:
        items = read_stream(args.file)
        first = next(items, None)
    except (OSError, ReplayFormatError) as exc:
        return _fail(str(exc))
    if first is None:
        return _fail(f"{args.file}: nothing to replay")
    _stop_on_sigterm()
    try:
        publisher = ReplayPublisher(
            BrokerTarget.from_settings(settings.mqtt), settings.mqtt.client_id_for("replay")
        )
    except BrokerUnavailable as exc:
        return _fail(str(exc))
    origin = first.time
    pacer: Any = None
    progress: Any = None
    clock: ClockAnnouncer | None = None
    sent = 0
    last_time = origin
    try:
        import itertools

        for item in itertools.chain([first], items):
            if item.action not in (Action.PUBLISH, Action.WILL):
                continue  # connection events: a single replay connection cannot act them out
            when = item.time if item.time is not None else last_time
            if when is not None:
                if pacer is None:
                    pacer = Pacer(speed, when)
                    progress = Progress(0.0, when, pacer=pacer)
                    clock = ClockAnnouncer.start(publisher.connections, "replay", [], speed, when)
                wait = pacer.delay(when)
                if wait > 0:
                    publisher.connections.wait(wait)
                last_time = when
            if clock is not None:
                clock.tick(last_time, item.topic)
            publisher.publish(item.topic, item.payload, item.qos, item.retain)
            sent += 1
            if progress is not None and not args.quiet:
                progress.update(when or 0.0, 1, sent)
    except ReplayFormatError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("\nkordon replay: interrupted", file=sys.stderr)
    finally:
        if clock is not None:
            clock.stop()
        publisher.close()
        if progress is not None and not args.quiet:
            progress.finish()
    print(f"kordon replay: {sent:,} messages published", file=sys.stderr)
    return 0
