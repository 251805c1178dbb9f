"""``kordon snmp-bridge``: poll one UPS's SNMP agent (UPS-MIB) and publish it as a device.

One GET of every polled scalar per interval, plus a walk of the alarm table when
``upsAlarmsPresent`` is not zero. The UPS is ``offline`` while the agent does not answer
(after pysnmp's own retries), answers with an error, or reports that it lost its UPS
(``upsAlarmCommunicationsLost``); the first good poll brings it back ``online``. UDP has no
connection to re-establish, so "reconnecting" is polling again, with backoff while the agent
stays silent so a dead card is not hammered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from bridges.publisher import DevicePublisher
from bridges.runtime import Backoff, until_stopped, wait_or_stop
from bridges.snmp.client import SnmpClient, SnmpError, SnmpUnreachable
from bridges.snmp.mib import (
    ALARM_DESCR_COLUMN,
    ALARMS_PRESENT,
    COMMUNICATIONS_LOST,
    POLLED,
    alarm_name,
    to_metrics,
)
from kordon.clock import Clock

log = logging.getLogger("bridges.snmp")


@dataclass(frozen=True, slots=True)
class SnmpBridgeConfig:
    host: str
    site: str
    device: str
    port: int = 161
    interval: float = 5.0
    backoff_max: float = 60.0


class SnmpBridge:
    def __init__(
        self,
        config: SnmpBridgeConfig,
        client: SnmpClient,
        publisher: DevicePublisher,
        clock: Clock,
    ) -> None:
        self.config = config
        self.client = client
        self.publisher = publisher
        self.clock = clock
        self._backoff = Backoff(config.interval, max(config.backoff_max, config.interval))

    async def run(self, stop: asyncio.Event) -> None:
        self.publisher.start()
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    if await until_stopped(self.poll_once(), stop):
                        break
                except (SnmpUnreachable, SnmpError) as exc:
                    self.publisher.set_status(False, f"agent {self._where()}: {exc}")
                    self.client.forget_agent()
                    delay = self._backoff.next()
                    log.debug("agent %s: %s; polling again in %.1f s", self._where(), exc, delay)
                    await wait_or_stop(stop, delay - (time.monotonic() - started))
                    continue
                self._backoff.reset()
                await wait_or_stop(stop, self.config.interval - (time.monotonic() - started))
        finally:
            self.client.close()
            await asyncio.to_thread(self.publisher.stop)

    async def poll_once(self) -> None:
        values = await self.client.get(POLLED)
        if not values:
            raise SnmpError("the agent has none of the UPS-MIB objects")
        alarms: list[str] = []
        present = values.get(ALARMS_PRESENT)
        if isinstance(present, int) and present > 0:
            rows = await self.client.walk(ALARM_DESCR_COLUMN)
            alarms = [alarm_name(str(value)) for _oid, value in rows]
        when = self.clock.now()
        if COMMUNICATIONS_LOST in alarms:
            self.publisher.set_status(False, "the agent lost communication with its UPS")
            return
        metrics = to_metrics(values, alarms)
        if not metrics:
            raise SnmpError("no usable UPS-MIB values")
        self.publisher.publish(metrics, when)
        self.publisher.set_status(True)

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"
