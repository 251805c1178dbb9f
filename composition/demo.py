"""``kordon demo``: the whole of Kordon in one process, with nothing else installed.

An MQTT broker of its own (unless ``KORDON_MQTT_URL`` names one: Mosquitto as a child process
when it is installed, else the embedded amqtt broker), the embedded SQLite telemetry
store (unless ``KORDON_INFLUX_URL`` names an InfluxDB), the collector, alert engine and API
roles, the default fleet, and a blackout scenario published at accelerated speed. It prints
the operations page's address, a one-off admin token and which broker runs, logs the pace the
scenario keeps (and says so when it cannot keep the asked speed), and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from composition.embedded_broker import DemoBroker, start_demo_broker
from composition.roles import Role, build_role, role_settings, stop_event_on_signals
from kordon.clock import WALL_CLOCK
from kordon.config import ApiToken, Settings
from simulators.library import default_fleet_path

log = logging.getLogger("kordon.demo")

DEMO_ROLES = ("collector", "alerts", "api")
DEFAULT_SCENARIO = "single-site-blackout"
PACE_LOG_EVERY = 15.0  # wall seconds between the scenario's pace lines


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="run everything in one process on embedded defaults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--scenario", default=DEFAULT_SCENARIO, help="library scenario to play")
    demo.add_argument("--speed", type=float, default=60.0, help="scenario speed (x real time)")
    demo.add_argument("--data-dir", help="keep state here (default: a new temporary folder)")
    demo.add_argument("--no-scenario", action="store_true", help="start idle")
    demo.set_defaults(handler=cmd_demo)


def demo_settings(settings: Settings, data_dir: Path, mqtt_url: str | None, token: str) -> Settings:
    """The user's settings with the demo's embedded parts filled in where nothing was set."""
    env = os.environ
    mqtt = settings.mqtt
    if mqtt_url is not None:
        mqtt = mqtt.model_copy(update={"url": mqtt_url, "protocol": "3.1.1"})
    influx = settings.influx
    if not env.get("KORDON_INFLUX_URL"):
        influx = influx.model_copy(update={"url": f"sqlite://{data_dir}/telemetry.db"})
    fleet = settings.fleet
    if fleet.file is None:
        fleet = fleet.model_copy(update={"file": default_fleet_path()})
    api = settings.api.model_copy(
        update={
            "tokens": [
                *settings.api.tokens,
                ApiToken(
                    name="demo", role="admin", sha256=hashlib.sha256(token.encode()).hexdigest()
                ),
            ]
        }
    )
    data = data_dir if not env.get("KORDON_DATA_DIR") else settings.data_dir
    return settings.model_copy(
        update={"mqtt": mqtt, "influx": influx, "fleet": fleet, "api": api, "data_dir": data}
    )


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="kordon-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = stop_event_on_signals("the demo")
    broker: DemoBroker | None = None
    roles: list[Role] = []
    scenario: ScenarioThread | None = None
    try:
        mqtt_url = None
        if not os.environ.get("KORDON_MQTT_URL"):
            broker = start_demo_broker(data_dir)
            mqtt_url = broker.url
        token = secrets.token_urlsafe(24)
        settings = demo_settings(settings, data_dir, mqtt_url, token)
        for name in DEMO_ROLES:
            role = build_role(name, role_settings(name, settings, list(DEMO_ROLES)), WALL_CLOCK)
            role.start()
            roles.append(role)
        host, _, port = settings.api.addr.rpartition(":")
        print(
            f"\nKordon demo is running.\n"
            f"  operations page: http://{host}:{port}/\n"
            f"  token (admin):   {token}\n"
            f"  data:            {data_dir}\n"
            f"  broker:          {settings.mqtt.url}"
            f"{f' ({broker.description})' if broker else ''}\n"
            f"  telemetry store: {settings.influx.url}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        if not args.no_scenario:
            scenario = ScenarioThread(settings, args.scenario, args.speed, stop)
            scenario.start()
        stop.wait()
    finally:
        stop.set()
        if scenario is not None:
            scenario.join(15)
        for role in reversed(roles):
            role.stop()
        if broker is not None:
            broker.stop()
    print("Kordon demo stopped.", file=sys.stderr)
    return 0


class ScenarioThread(threading.Thread):
    """Publishes a library scenario the way ``kordon simulate --speed N`` does, stoppable."""

    def __init__(self, settings: Settings, name: str, speed: float, stop: threading.Event):
        super().__init__(name="demo-scenario", daemon=True)
        self.settings = settings
        self.scenario_name = name
        self.speed = speed
        self.stop_event = stop

    def run(self) -> None:
        from simulators.engine import ScenarioRun
        from simulators.mqtt import BrokerTarget
        from simulators.pacing import choose_start
        from simulators.publish import ScenarioPublisher
        from simulators.scenario import load_scenario

        try:
            scenario = load_scenario(self.scenario_name)
            start = choose_start(
                scenario.start, scenario.duration, None, True, self.speed, time.time()
            )
            run = ScenarioRun(scenario, start=start)
            publisher = ScenarioPublisher(
                run, BrokerTarget.from_settings(self.settings.mqtt), self.speed, kind="demo"
            )
        except Exception:
            log.exception("the demo scenario failed")
            return
        # The pacer says when the publisher cannot keep the asked speed; the demo says it too.
        publisher.pacer.warn = lambda text: log.warning("scenario %s: %s", self.scenario_name, text)
        log.info(
            "playing scenario %s at %gx real time, scenario time from %s",
            self.scenario_name,
            self.speed,
            datetime.fromtimestamp(run.start, UTC).isoformat().replace("+00:00", "Z"),
        )
        pace = _PaceLog(self.scenario_name, publisher, scenario.duration)
        try:
            if publisher.play(stop=self.stop_event, progress=pace):
                log.info("scenario %s finished", self.scenario_name)
        except Exception:
            log.exception("the demo scenario failed")
        finally:
            publisher.close()


class _PaceLog:
    """A ``Progress`` for the log: every ``PACE_LOG_EVERY`` seconds, how far the scenario is,
    the speed it keeps and the messages per second it publishes."""

    def __init__(self, name: str, publisher: Any, duration: float) -> None:
        self.name = name
        self.publisher = publisher
        self.duration = duration
        self.started = time.monotonic()
        self.last = self.started
        self.last_sent = 0

    def update(self, sim_time: float, devices: int, messages: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PACE_LOG_EVERY:
            return
        from kordon.durations import format_duration

        pacer = self.publisher.pacer
        rate = (messages - self.last_sent) / max(now - self.last, 1e-9)
        self.last, self.last_sent = now, messages
        effective = pacer.effective_speed()
        log.info(
            "scenario %s: +%s of %s, speed %s of %gx, %s msg/s, %d devices%s",
            self.name,
            format_duration(sim_time - pacer.sim_start),
            format_duration(self.duration),
            f"{effective:.0f}x" if effective is not None else "-",
            pacer.speed,
            f"{rate:,.0f}",
            devices,
            f", {format_duration(pacer.lag)} behind" if pacer.lag >= 1.0 else "",
        )
