"""``kordon nut-bridge``: poll one upsd and publish every UPS it serves as a Kordon device.

One TCP connection to upsd; each interval, one ``LIST VAR`` per UPS, all sent at once.
Availability follows what upsd knows: ``ERR DATA-STALE`` (the driver stopped updating),
``ERR DRIVER-NOT-CONNECTED`` (the driver is gone) and ``ERR UNKNOWN-UPS`` make that UPS
``offline``; an unreachable or misbehaving upsd makes every UPS of the bridge ``offline``
while it reconnects with backoff.
A UPS comes back ``online`` with its first good reading.

The reading's ``ts`` is the bridge's clock when upsd answered: NUT variables carry no
timestamps, and upsd serves what its driver polled moments before.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bridges.nut.protocol import (
    DEFAULT_PORT,
    UNAVAILABLE,
    NutClient,
    NutError,
    NutProtocolError,
    TlsOptions,
)
from bridges.nutnames import NutReadings
from bridges.publisher import DevicePublisher
from bridges.runtime import Backoff, until_stopped, wait_or_stop
from kordon.clock import Clock
from kordon.model.topics import NAME_PATTERN

log = logging.getLogger("bridges.nut")

PublisherFactory = Callable[[str], DevicePublisher]


@dataclass(frozen=True, slots=True)
class NutBridgeConfig:
    host: str
    site: str
    port: int = DEFAULT_PORT
    # NUT UPS name -> Kordon device name; empty: every UPS that ``LIST UPS`` shows, same name.
    ups: dict[str, str] = field(default_factory=dict)
    interval: float = 5.0
    timeout: float = 10.0
    username: str | None = None
    password: str | None = None
    tls: TlsOptions | None = None
    backoff_max: float = 30.0


def tls_options(host: str, cafile: str | None, insecure: bool) -> TlsOptions:
    """STARTTLS settings: verify upsd's certificate (system CAs or ``cafile``) unless told not to.

    upsd certificates are usually self-signed, so ``cafile`` is the common case: give it the
    upsd certificate itself.
    """
    context = ssl.create_default_context(cafile=cafile)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return TlsOptions(context, server_hostname=host)


class NutBridge:
    def __init__(self, config: NutBridgeConfig, publishers: PublisherFactory, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._make_publisher = publishers
        self._publishers: dict[str, DevicePublisher] = {}
        self._backoff = Backoff(1.0, config.backoff_max)
        self._warned: set[str] = set()
        self._readings = NutReadings(log)
        for device in config.ups.values():
            self._publisher(device)  # known UPSes are marked offline even if upsd never answers

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; then mark every UPS offline and disconnect from MQTT."""
        try:
            while not stop.is_set():
                try:
                    if await until_stopped(self._session(stop), stop):
                        break
                except (OSError, TimeoutError, NutError, NutProtocolError, ssl.SSLError) as exc:
                    self._all_offline(f"upsd {self._where()} unreachable: {_describe(exc)}")
                    delay = self._backoff.next()
                    log.warning("upsd %s: %s; retrying in %.1f s", self._where(),
                                _describe(exc), delay)
                    await wait_or_stop(stop, delay)
        finally:
            await asyncio.to_thread(self._stop_publishers)

    def _stop_publishers(self) -> None:
        # Every UPS says offline at once, then each drains and disconnects: a bridge with
        # hundreds of UPSes must not take one PUBACK round trip per UPS before the last
        # one is marked offline.
        for publisher in self._publishers.values():
            publisher.set_status(False, "bridge stopping")
        for publisher in self._publishers.values():
            publisher.stop()

    async def _session(self, stop: asyncio.Event) -> None:
        config = self.config
        if config.password is not None and config.tls is None and "plain" not in self._warned:
            self._warned.add("plain")
            log.warning("sending the NUT password without STARTTLS (use --starttls)")
        client = await NutClient.connect(
            config.host, config.port, timeout=config.timeout, tls=config.tls,
            username=config.username, password=config.password,
        )
        try:
            version = await client.version()
            log.info("connected to upsd %s%s: %s", self._where(),
                     " (TLS)" if client.tls else "", version)
            self._backoff.reset()
            while not stop.is_set():
                started = time.monotonic()
                await self.poll_once(client)
                await wait_or_stop(stop, config.interval - (time.monotonic() - started))
        finally:
            await client.close()

    # ------------------------------------------------------------------ one round
    async def poll_once(self, client: NutClient) -> None:
        wanted = self.config.ups or await self._discover(client)
        answers = await client.list_vars(list(wanted))  # pipelined: one round trip per poll
        for ups, device in wanted.items():
            publisher = self._publisher(device)
            variables = answers[ups]
            if isinstance(variables, NutError):
                exc = variables
                if exc.code not in UNAVAILABLE:
                    log.error("upsd %s: LIST VAR %s: %s", self._where(), ups, exc)
                publisher.set_status(False, f"upsd says {exc.code} for {ups}")
                continue
            if not data_ready(variables):
                log.debug("upsd %s: %s is not ready yet (ups.status %r)", self._where(), ups,
                          variables.get("ups.status"))
                continue
            readings = self._readings.readings(variables, ups)
            if not readings:
                publisher.set_status(False, f"upsd has no usable variables for {ups}")
                continue
            publisher.publish_parts(readings, self.clock.now())
            publisher.set_status(True)
        for device, publisher in self._publishers.items():
            if device not in wanted.values():
                publisher.set_status(False, "no longer listed by upsd")

    async def _discover(self, client: NutClient) -> dict[str, str]:
        names: dict[str, str] = {}
        for ups in await client.list_ups():
            if NAME_PATTERN.match(ups):
                names[ups] = ups
            elif ups not in self._warned:
                self._warned.add(ups)
                log.error("UPS name %r is not a valid device name; map it with --ups %s=NAME",
                          ups, ups)
        return names

    def _publisher(self, device: str) -> DevicePublisher:
        publisher = self._publishers.get(device)
        if publisher is None:
            publisher = self._publishers[device] = self._make_publisher(device)
            publisher.start()
        return publisher

    def _all_offline(self, reason: str) -> None:
        for publisher in self._publishers.values():
            publisher.set_status(False, reason)

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"


def data_ready(variables: dict[str, str]) -> bool:
    """Whether upsd has real data for a UPS.

    Measured: right after upsd (re)connects to a driver, and while a driver starts, upsd
    serves one variable, ``ups.status`` = ``WAIT``. Publishing that would store a reading
    with no measurements and flip the UPS ``online`` before anything is known; the bridge
    waits for the next poll instead, leaving the availability as it was.
    """
    status = variables.get("ups.status")
    return status is not None and "WAIT" not in status.split()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
