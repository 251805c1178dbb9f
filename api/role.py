"""``kordon run --roles api``: the REST API and the operations page, served by uvicorn.

uvicorn runs in a thread of its own (its event loop serves every request; blocking work such
as InfluxDB queries goes to its thread pool), so the API can share a process with the
collector and the alert engine, as ``kordon run --roles collector,alerts,api`` asks.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import uvicorn

from api.alerts import open_backend
from api.app import create_app
from api.auth import TokenBook
from api.battery import BatteryModels
from api.context import ApiContext
from api.foresight import Foresights
from api.live import LiveFollower
from api.scenarios import ScenarioRunner
from api.state import DeviceStates
from api.stats import ApiStats
from kordon import metrics
from kordon.clock import Clock
from kordon.config import ConfigError, Settings, split_host_port
from kordon.fleet import Fleet, FleetError, load_fleet
from kordon.storage.stores import TelemetryStores
from kordon.storage.telemetry import StoreError

log = logging.getLogger("api")
_REBUILD_EVERY = 0.5  # seconds: how stale the shared device list may be


def _fleet(settings: Settings) -> Fleet | None:
    if settings.fleet.file is None:
        return None
    try:
        return load_fleet(settings.fleet.file)
    except FleetError as exc:
        raise ConfigError(f"fleet.file: {exc}") from None


def _scenario_env(settings: Settings) -> dict[str, str]:
    """A run publishes to the broker this API follows, whatever the run's own environment."""
    return {"KORDON_MQTT_URL": settings.mqtt.url, "KORDON_DATA_DIR": str(settings.data_dir)}


class ApiRole:
    """The API role. ``scenario_library`` is the folder of scenario files the page lists and
    runs (``api.scenarios_dir`` takes precedence); without either, scenarios are off."""

    name = "api"

    def __init__(
        self, settings: Settings, clock: Clock, *, scenario_library: Path | None = None
    ) -> None:
        self.settings = settings
        cfg = settings.api
        self.host, self.port = split_host_port(cfg.addr)
        fleet = _fleet(settings)
        states = DeviceStates(clock, fleet, offline_after=cfg.offline_after)
        stats = ApiStats()
        self.context = ApiContext(
            settings=settings,
            clock=clock,
            tokens=TokenBook(cfg.tokens),
            states=states,
            influx=TelemetryStores(settings.influx),
            scenarios=ScenarioRunner(
                cfg.scenarios_dir or scenario_library,
                settings.data_dir / "api" / "runs",
                clock,
                max_runs=cfg.max_scenario_runs,
                env=_scenario_env(settings),
            ),
            stats=stats,
            alerts=open_backend(settings, clock),
            live=LiveFollower(settings.mqtt, states, clock) if cfg.live else None,
        )
        stats.gauge("kordon_api_devices", "devices the API knows", lambda: len(states.views()))
        stats.gauge(
            "kordon_api_state_refresh_age_seconds",
            "seconds since current state was last read from InfluxDB",
            lambda: time.monotonic() - states.last_refresh if states.last_refresh else -1.0,
        )
        battery = BatteryModels(settings.data_dir)
        self.context.extra["battery"] = battery
        states.learned = battery.get
        # Schedule foresight: the alerts role's foresight.json (docs/schedules.md)
        self.context.extra["foresight"] = Foresights(settings.data_dir, fleet)
        self.app = create_app(self.context)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=self.host,
                port=self.port,
                log_config=None,  # keep kordon's logging; no access log (it would be noise)
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=5,
                ssl_certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
                ssl_keyfile=str(cfg.tls_key) if cfg.tls_key else None,
            )
        )
        self._thread = threading.Thread(target=self._serve, name="api-http", daemon=True)
        self._refresher = threading.Thread(target=self._refresh_loop, name="api-state", daemon=True)
        self._stop = threading.Event()
        self._serve_error: BaseException | None = None

    def _serve(self) -> None:
        try:
            self._server.run()
        except BaseException as exc:  # uvicorn exits with SystemExit when it cannot bind
            self._serve_error = exc

    def _refresh_once(self) -> None:
        try:
            self.context.states.refresh(self.context.influx.get(), self.settings.api.state_lookback)
            if self.context.states.last_refresh_error:
                log.info("current state read from InfluxDB again")
            self.context.states.last_refresh_error = None
        except StoreError as exc:
            if self.context.states.last_refresh_error is None:
                log.warning("cannot read current state from InfluxDB: %s", exc)
            self.context.states.last_refresh_error = str(exc)

    def _refresh_loop(self) -> None:
        next_refresh = time.monotonic() + self.settings.api.refresh_interval
        while not self._stop.wait(_REBUILD_EVERY):
            if time.monotonic() >= next_refresh:
                self._refresh_once()
                next_refresh = time.monotonic() + self.settings.api.refresh_interval
            self.context.states.rebuild()

    def start(self) -> None:
        metrics.register("api", self.context.stats)
        if not len(self.context.tokens):
            log.warning(
                "api.tokens is empty: every endpoint but /healthz answers 401; "
                "mint a token with `kordon token create --role admin --name NAME`"
            )
        self._refresh_once()
        self.context.states.rebuild(force=True)
        if self.context.live is not None:
            self.context.live.start()
        self._refresher.start()
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    f"api.addr: cannot listen on {self.settings.api.addr} "
                    f"({self._serve_error!r}); is another process using the port?"
                )
            time.sleep(0.02)
        scheme = "https" if self.settings.api.tls_cert else "http"
        log.info("API and operations page on %s://%s:%d/", scheme, self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.context.scenarios.stop_all(min(timeout, 10.0))
        if self.context.live is not None:
            self.context.live.stop()
        if self._refresher.is_alive():
            self._refresher.join(timeout)
        if self.context.alerts is not None:
            self.context.alerts.close()
        self.context.influx.close()
        self.context.extra["battery"].close()
        metrics.unregister("api")

    def healthy(self) -> bool:
        return self._thread.is_alive() and self._server.started


def build(settings: Settings, clock: Clock, *, scenario_library: Path | None = None) -> ApiRole:
    return ApiRole(settings, clock, scenario_library=scenario_library)
