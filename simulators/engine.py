"""Run a scenario: step the fleet's physics tick by tick and emit what the devices would send.

No broker is needed::

    from simulators.engine import ScenarioRun
    from simulators.scenario import load_scenario

    run = ScenarioRun(load_scenario("single-site-blackout"))
    for event in run:           # SimEvent(time, topic, payload, retain, qos, action, ...)
        ...                     # every event, connection changes included, in time order
    run.delivered()             # only what a subscriber of the broker would receive,
                                # as kordon.model.rehearsal.TimedMessage

``kordon scenario verify`` feeds :meth:`ScenarioRun.delivered` to the alert engine on the
scenario's clock (composition/verify.py); ``simulators.publish`` plays the events into a broker.
A consumer that evaluates between steps takes the run in slices instead::

    while not run.done:
        batch = run.step_until(run.now + 60)

Time moves by ``scenario.tick`` (10 s by default). Each device reports every ``interval``, at its
own fixed offset inside the tick, as unsynchronised devices do. Timeline events take effect at
the tick that contains them. A :class:`~kordon.clock.SimulatedClock` passed in is moved to each
event's time before the event is yielded, so a consumer on the same clock sees event time.

Same scenario, seed and start: the same events, byte for byte.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from kordon.clock import Clock, SimulatedClock
from kordon.fleet import OWN_GENERATOR_FEED, SITE_FEED, DeviceEntry, RadioParams, ScannerParams
from kordon.model.kinds import DeviceKind
from kordon.model.rehearsal import TimedMessage
from kordon.model.topics import status_topic, telemetry_topic
from simulators.devices import DeviceRef
from simulators.events import OFFLINE, ONLINE, Action, SimEvent
from simulators.payloads import (
    JSON_BOOL,
    TEMPLATES,
    decimal_texts,
    malformed_payload,
    render,
    render_record_lines,
)
from simulators.physics.profiles import RADIO_DUTY, VEHICLE_TRAFFIC, at_hour
from simulators.physics.radio import RadioBank
from simulators.physics.scanner import PHASE_NAMES, WIRE_STATES, ScannerBank
from simulators.physics.site import PowerFeed, Source
from simulators.physics.ups import STATUS_TEXT, UpsBank
from simulators.scenario import Scenario
from simulators.timeline import Op, compile_timeline

DEFAULT_START = datetime(2024, 12, 14, 6, 0, tzinfo=UTC).timestamp()  # 08:00 in Kyiv
NOISE_ROWS = 6  # independent noise values per device and tick
WILL_AFTER_KEEPALIVES = 1.5  # MQTT: the broker gives up after one and a half keep-alives
SCANNER_SOURCES = np.array(["none", "mains", "generator", "ups"], dtype=object)
RADIO_SOURCES = np.array(["none", "mains", "battery"], dtype=object)
_UPS_FEED_SOURCE = 3  # scanner fed by a UPS that is on battery


class ScenarioRun:
    """Iterate over a scenario's events. See the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock | None = None,
        *,
        start: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.fleet = fleet = scenario.fleet
        self.clock = clock if isinstance(clock, SimulatedClock) else None
        if start is None:
            start = scenario.start
        if start is None:
            start = clock.now() if clock is not None else DEFAULT_START
        self.tick = scenario.tick
        self.start = float(np.floor(start / self.tick) * self.tick) if start % self.tick else start
        self.end = self.start + scenario.duration
        self.seed = scenario.seed if seed is None else seed
        try:
            self._zone: ZoneInfo | None = ZoneInfo(fleet.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self._zone = None

        seeds = np.random.SeedSequence(self.seed).spawn(8)
        rng_layout, rng_sites, rng_scan, rng_radio, *self._noise = (
            np.random.default_rng(s) for s in seeds
        )
        self.messages = 0
        self._build_devices(rng_layout)
        self._build_power(rng_sites)
        self.ups = UpsBank(
            [e.params for e in self._entries[DeviceKind.UPS]], self._ups_design_load()
        )  # type: ignore[misc]
        self.scanners = ScannerBank(
            [e.params for e in self._entries[DeviceKind.SCANNER]],
            rng_scan,  # type: ignore[misc]
        )
        self.radios = RadioBank(
            [e.params for e in self._entries[DeviceKind.RADIO]],
            rng_radio,  # type: ignore[misc]
        )
        self._ops: list[Op] = compile_timeline(scenario, self.start)
        self._op_index = 0
        self._tick_index = 0
        self._scheduled: list[tuple[float, int, SimEvent, int]] = []  # (time, n, event, token)
        self._counter = itertools.count()
        self._pending_will: dict[int, int] = {}
        self._buffer: deque[SimEvent] = deque()
        self._malformed_count = 0

    # ------------------------------------------------------------------ construction
    def _build_devices(self, rng: np.random.Generator) -> None:
        fleet = self.fleet
        self.site_names = list(fleet.sites)
        site_index = {name: i for i, name in enumerate(self.site_names)}
        self._entries: dict[DeviceKind, list[DeviceEntry]] = {kind: [] for kind in DeviceKind}
        entries = list(fleet.devices())
        # global order: UPS units, then scanners, then radios, each in file order
        ordered = [e for kind in DeviceKind for e in entries if e.kind is kind]
        for entry in ordered:
            self._entries[entry.kind].append(entry)
        self.devices: list[DeviceRef] = []
        for index, e in enumerate(ordered):
            self.devices.append(
                DeviceRef(
                    index=index,
                    site=e.site,
                    kind=e.kind,
                    device=e.device,
                    telemetry_topic=telemetry_topic(e.site, e.kind, e.device),
                    status_topic=status_topic(e.site, e.kind, e.device),
                    client_id=f"kordon-sim/{e.site}/{e.kind.value}/{e.device}"[:64],
                    keepalive=e.params.keepalive,
                )
            )
        self._by_name = {(d.site, d.device): d for d in self.devices}
        n = len(self.devices)
        self._slices = {}
        base = 0
        for kind in DeviceKind:
            count = len(self._entries[kind])
            self._slices[kind] = slice(base, base + count)
            base += count
        self.device_site = np.array([site_index[d.site] for d in self.devices], dtype=np.int64)
        params = [e.params for e in ordered]
        self.interval_ticks = np.array(
            [max(1, round(p.interval / self.tick)) for p in params], dtype=np.int64
        )
        self.phase = np.array([int(rng.integers(k)) for k in self.interval_ticks], dtype=np.int64)
        offsets_ms = rng.integers(0, int(self.tick * 1000), size=n)
        self.offset = offsets_ms / 1000.0
        self._order_key = offsets_ms * (n + 1) + np.arange(n)  # unique: stable merge order
        self._offset_whole = (offsets_ms // 1000).astype(np.int64)
        self._offset_fraction = [repr(ms % 1000 / 1000)[1:] for ms in offsets_ms.tolist()]
        self.keepalive = np.array([p.keepalive for p in params])
        self._topics = [d.telemetry_topic for d in self.devices]
        self._clients = [d.client_id for d in self.devices]
        # connection state
        self.alive = np.zeros(n, dtype=bool)  # the device's controller runs
        self.comm_up = np.zeros(n, dtype=bool)  # connected to the broker
        self.power_off = np.zeros(n, dtype=bool)  # switched off by an operator (clean)
        # what feeds each scanner, an index of SCANNER_SOURCES (0: none), as of the last step
        self.scanner_source = np.zeros(len(self._entries[DeviceKind.SCANNER]), dtype=np.int64)
        self.hung = np.zeros(n, dtype=bool)
        self.crashed = np.zeros(n, dtype=bool)
        self.rebooted = np.zeros(n, dtype=bool)
        self.net_ok = np.ones(len(self.site_names), dtype=bool)
        self.seq = np.zeros(n, dtype=np.int64)

    def _build_power(self, rng: np.random.Generator) -> None:
        fleet = self.fleet
        self.feeds = [PowerFeed(s.grid, s.generator, rng) for s in fleet.sites.values()]
        self.outdoor_c = np.array([s.ambient_c for s in fleet.sites.values()], dtype=float)
        self.indoor_c = np.array([s.indoor_c for s in fleet.sites.values()], dtype=float)
        ups_entries = self._entries[DeviceKind.UPS]
        ups_index = {(e.site, e.device): i for i, e in enumerate(ups_entries)}
        self.ups_site = np.array([self.site_names.index(e.site) for e in ups_entries], dtype=int)
        self.ups_indoor = np.array([e.params.indoor for e in ups_entries], dtype=bool)  # type: ignore[union-attr]

        def feed_of(e: DeviceEntry) -> int:
            fed = e.params.fed_by
            if fed == SITE_FEED:
                return -1
            if fed == OWN_GENERATOR_FEED:
                return -2
            return ups_index[(e.site, fed)]

        scanners = self._entries[DeviceKind.SCANNER]
        radios = self._entries[DeviceKind.RADIO]
        self.scanner_site = np.array([self.site_names.index(e.site) for e in scanners], dtype=int)
        self.radio_site = np.array([self.site_names.index(e.site) for e in radios], dtype=int)
        self.scanner_feed = np.array([feed_of(e) for e in scanners], dtype=int)
        self.radio_feed = np.array([feed_of(e) for e in radios], dtype=int)
        self.own_generators: dict[int, PowerFeed] = {}
        for i, e in enumerate(scanners):
            params = e.params
            assert isinstance(params, ScannerParams)
            if params.fed_by == OWN_GENERATOR_FEED and params.generator is not None:
                self.own_generators[i] = PowerFeed(None, params.generator, rng, grid_up=False)

    def _ups_design_load(self) -> np.ndarray:
        """Typical load of each UPS: what it is sized for, and what its charger is sized by."""
        ups = self._entries[DeviceKind.UPS]
        load = np.zeros(len(ups))
        index = {(e.site, e.device): i for i, e in enumerate(ups)}
        for e in self.fleet.devices():
            target = index.get((e.site, e.params.fed_by))
            if target is None:
                continue
            if isinstance(e.params, ScannerParams):
                load[target] += e.params.power.ready
            elif isinstance(e.params, RadioParams):
                load[target] += e.params.plant_voltage * (
                    e.params.standby_current + 0.3 * e.params.tx_current
                )
        for i, e in enumerate(ups):
            load[i] += e.params.base_load_w  # type: ignore[union-attr]
        return np.maximum(load, 0.1 * np.array([e.params.rated_power_w for e in ups]))  # type: ignore[union-attr]

    # ------------------------------------------------------------------ public API
    @property
    def now(self) -> float:
        """Simulated time of the next tick."""
        return self.start + self._tick_index * self.tick

    @property
    def done(self) -> bool:
        return self.now >= self.end and not self._buffer

    def device(self, site: str, device: str) -> DeviceRef:
        return self._by_name[(site, device)]

    def devices_online(self) -> int:
        return int(self.comm_up.sum())

    def __iter__(self) -> Iterator[SimEvent]:
        return self.events()

    def events(self) -> Iterator[SimEvent]:
        """Every remaining event, in time order, moving a simulated clock along."""
        clock = self.clock
        while True:
            while self._buffer:
                event = self._buffer.popleft()
                if clock is not None and event.time > clock.now():
                    clock.set(event.time)
                yield event
            if self.now >= self.end:
                break
            self._buffer.extend(self._step())
        if clock is not None and clock.now() < self.end:
            clock.set(self.end)

    def delivered(self) -> Iterator[TimedMessage]:
        """The remaining messages a subscriber of the broker would receive (publishes and last
        wills), in time order: the input of an in-process alert engine."""
        for event in self.events():
            if event.on_wire:
                yield TimedMessage(event.time, event.topic, event.payload)

    def batches(self) -> Iterator[list[SimEvent]]:
        """The events tick by tick (the recorder's fast path); does not move the clock."""
        if self._buffer:
            yield list(self._buffer)
            self._buffer.clear()
        while self.now < self.end:
            yield self._step()

    def record_chunks(self) -> Iterator[bytes]:
        """The rest of the run as JSON-lines chunks, one per tick: the recorder's fast path.

        Telemetry goes straight from the columns to record lines without SimEvent objects;
        the bytes equal what :class:`~simulators.record.Recorder` writes for the same events
        (a test checks it). Does not move the clock.
        """
        from simulators.record import encode_line

        if self._buffer:
            yield b"".join(encode_line(e) for e in self._buffer)
            self._buffer.clear()
        while self.now < self.end:
            events, lines = self._step(as_lines=True)  # type: ignore[misc]
            if events:
                times = [float(line[5 : line.index(",")]) for line in lines]
                merged = sorted(
                    [(e.time, 0, encode_line(e).decode()) for e in events]
                    + [(t, 1, line) for t, line in zip(times, lines, strict=True)],
                    key=lambda item: (item[0], item[1]),
                )
                yield "".join(line for _, _, line in merged).encode()
            else:
                yield "".join(lines).encode()

    def step_until(self, until: float) -> list[SimEvent]:
        """Events with ``time < until``; the simulated clock (if any) is left at ``until``."""
        until = min(until, self.end)
        out: list[SimEvent] = []
        while True:
            while self._buffer and self._buffer[0].time < until:
                out.append(self._buffer.popleft())
            if self._buffer or self.now >= until:
                break
            self._buffer.extend(self._step())
        if self.clock is not None and until > self.clock.now():
            self.clock.set(until)
        return out

    # ------------------------------------------------------------------ scenario hooks
    # (called by timeline ops)
    def site_feed(self, site: str) -> PowerFeed:
        return self.feeds[self.site_names.index(site)]

    def scanner_generator(self, site: str, device: str) -> PowerFeed | None:
        ref = self.device(site, device)
        return self.own_generators.get(ref.index - self._slices[DeviceKind.SCANNER].start)

    def local_index(self, ref: DeviceRef) -> int:
        return ref.index - self._slices[ref.kind].start

    def set_network(self, site: str, up: bool) -> None:
        self.net_ok[self.site_names.index(site)] = up

    def set_temperature(self, site: str, outdoor: float | None, indoor: float | None) -> None:
        index = self.site_names.index(site)
        if outdoor is not None:
            self.outdoor_c[index] = outdoor
        if indoor is not None:
            self.indoor_c[index] = indoor

    def schedule_op(self, when: float, apply: Callable[[ScenarioRun, float], None]) -> None:
        """Add an operation at ``when`` (for effects that end later, e.g. a fault's repair)."""
        op = Op(when, len(self._ops) + 1_000_000, apply, "scheduled")
        bisect.insort(self._ops, op, lo=self._op_index, key=lambda o: (o.time, o.order))

    def schedule(self, event: SimEvent) -> None:
        heapq.heappush(self._scheduled, (event.time, next(self._counter), event, -1))

    def send_malformed(self, ref: DeviceRef, variant: str, text: str | None, when: float) -> None:
        if not self.comm_up[ref.index]:
            return
        seq = int(self.seq[ref.index])
        if text is not None:
            payload = text.encode()
        else:
            payload = malformed_payload(
                variant, ref.kind, round(when, 3), seq, self._malformed_count
            )
        self._malformed_count += 1
        self.schedule(
            SimEvent(when, ref.telemetry_topic, payload, False, 1, Action.PUBLISH, ref.client_id)
        )

    # ------------------------------------------------------------------ one tick
    def _local_hour(self, when: float) -> float:
        if self._zone is None:
            return ((when + 7200.0) % 86400.0) / 3600.0
        moment = datetime.fromtimestamp(when, self._zone)
        return moment.hour + moment.minute / 60.0 + moment.second / 3600.0

    def _apply_ops(self, tick_end: float) -> None:
        ops = self._ops
        while self._op_index < len(ops) and ops[self._op_index].time < tick_end:
            op = ops[self._op_index]
            self._op_index += 1
            op.apply(self, op.time)

    def _step(self, as_lines: bool = False) -> list[SimEvent]:
        dt = self.tick
        now = self.now
        tick_end = now + dt
        self._apply_ops(tick_end)
        hour = self._local_hour(now)
        traffic = at_hour(VEHICLE_TRAFFIC, hour)
        duty = at_hour(RADIO_DUTY, hour)

        for feed in self.feeds:
            feed.step(dt)
        for feed in self.own_generators.values():
            feed.step(dt)
        site_source = np.array([int(f.source) for f in self.feeds], dtype=np.int64)
        site_on = site_source != Source.NONE

        # loads seen by each UPS, from the state its devices were left in last tick
        ups_n = self.ups.count
        scanner_draw = self.scanners.power_draw()
        fed = self.scanner_feed >= 0
        load = np.bincount(self.scanner_feed[fed], weights=scanner_draw[fed], minlength=ups_n)
        rfed = self.radio_feed >= 0
        load = load + np.bincount(
            self.radio_feed[rfed], weights=self.radios.ac_draw_w()[rfed], minlength=ups_n
        )
        ups_sl = self._slices[DeviceKind.UPS]
        room = np.where(
            self.ups_indoor, self.indoor_c[self.ups_site], self.outdoor_c[self.ups_site]
        )
        self.ups.step(
            dt,
            input_ok=site_on[self.ups_site],
            fed_load_w=load[:ups_n],
            switched_off=self.power_off[ups_sl],
            battery_temp_c=room,
            room_temp_c=room,
        )

        scanner_powered, scanner_source = self._scanner_power(site_on, site_source)
        sc_sl = self._slices[DeviceKind.SCANNER]
        self.scanners.step(
            dt,
            powered=scanner_powered & ~self.power_off[sc_sl],
            traffic=traffic,
            outdoor_c=self.outdoor_c[self.scanner_site],
            room_c=self.indoor_c[self.scanner_site],
        )
        self.scanner_source = np.where(scanner_powered, scanner_source, 0)

        ra_sl = self._slices[DeviceKind.RADIO]
        radio_ac = np.where(
            self.radio_feed >= 0,
            self.ups.output_on[np.maximum(self.radio_feed, 0)] if ups_n else False,
            site_on[self.radio_site],
        )
        self.radios.switched_off = self.power_off[ra_sl].copy()
        self.radios.step(dt, radio_ac, duty, traffic, self.indoor_c[self.radio_site])

        events = self._lifecycle(now)
        telemetry = self._telemetry(now, as_lines)
        self._tick_index += 1
        events.extend(self._pop_scheduled(tick_end))
        self.messages += len(events) + len(telemetry)
        if as_lines:
            return events, telemetry  # type: ignore[return-value]
        if events:
            return sorted(events + telemetry, key=_time)  # type: ignore[operator]
        return telemetry  # type: ignore[return-value]

    def _scanner_power(
        self, site_on: np.ndarray, site_source: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        feed = self.scanner_feed
        n = len(feed)
        powered = np.zeros(n, dtype=bool)
        source = np.zeros(n, dtype=np.int64)
        by_site = feed == -1
        powered[by_site] = site_on[self.scanner_site[by_site]]
        source[by_site] = site_source[self.scanner_site[by_site]]
        by_ups = feed >= 0
        if by_ups.any():
            ups = feed[by_ups]
            powered[by_ups] = self.ups.output_on[ups]
            on_battery = ~self.ups.input_ok[ups]
            source[by_ups] = np.where(on_battery, _UPS_FEED_SOURCE, site_source[self.ups_site[ups]])
        for index, generator in self.own_generators.items():
            powered[index] = generator.powered
            source[index] = int(Source.GENERATOR)
        return powered, source

    # ------------------------------------------------------------------ connections
    def _lifecycle(self, now: float) -> list[SimEvent]:
        kinds = (
            (DeviceKind.UPS, self.ups.alive()),
            (DeviceKind.SCANNER, self.scanners.controller_on),
            (DeviceKind.RADIO, self.radios.alive()),
        )
        alive = np.concatenate([a for _, a in kinds]) & ~self.power_off
        booted = (alive & ~self.alive) | self.rebooted
        self.seq[booted] = 0
        self.rebooted[:] = False
        clean = np.zeros(len(alive), dtype=bool)
        clean[self._slices[DeviceKind.SCANNER]] = self.scanners.clean_shutdown
        clean |= self.power_off
        self.alive = alive
        up = alive & ~self.hung & ~self.crashed & self.net_ok[self.device_site]
        changed = np.flatnonzero(up != self.comm_up)
        self.comm_up = up
        events: list[SimEvent] = []
        for index in changed.tolist():
            ref = self.devices[index]
            if up[index]:
                token = self._pending_will.pop(index, None)
                if token is not None:  # reconnect before the broker gave up: takeover
                    events.append(self._will(ref, now))
                    self._scheduled = [s for s in self._scheduled if s[3] != token]
                    heapq.heapify(self._scheduled)
                events.append(
                    SimEvent(now, ref.status_topic, b"", False, 1, Action.CONNECT, ref.client_id)
                )
                events.append(
                    SimEvent(now, ref.status_topic, ONLINE, True, 1, Action.PUBLISH, ref.client_id)
                )
            elif self.crashed[index]:
                events.append(
                    SimEvent(now, ref.status_topic, b"", False, 1, Action.CRASH, ref.client_id)
                )
                events.append(self._will(ref, now))
            elif clean[index] and not self.hung[index]:
                events.append(
                    SimEvent(now, ref.status_topic, OFFLINE, True, 1, Action.PUBLISH, ref.client_id)
                )
                events.append(
                    SimEvent(now, ref.status_topic, b"", False, 1, Action.DISCONNECT, ref.client_id)
                )
            else:
                events.append(
                    SimEvent(now, ref.status_topic, b"", False, 1, Action.HANG, ref.client_id)
                )
                when = now + WILL_AFTER_KEEPALIVES * ref.keepalive
                token = next(self._counter)
                self._pending_will[index] = token
                heapq.heappush(self._scheduled, (when, token, self._will(ref, when), token))
        return events

    def _will(self, ref: DeviceRef, when: float) -> SimEvent:
        return SimEvent(when, ref.status_topic, OFFLINE, True, 1, Action.WILL, ref.client_id)

    def _pop_scheduled(self, tick_end: float) -> list[SimEvent]:
        out = []
        while self._scheduled and self._scheduled[0][0] < tick_end:
            _, _, event, token = heapq.heappop(self._scheduled)
            if token >= 0:
                if self._pending_will.get(self._by_client(event)) != token:
                    continue
                self._pending_will.pop(self._by_client(event))
            out.append(event)
        return out

    def _by_client(self, event: SimEvent) -> int:
        if not hasattr(self, "_client_index"):
            self._client_index = {d.client_id: d.index for d in self.devices}
        return self._client_index[event.client_id]

    # ------------------------------------------------------------------ telemetry
    def _telemetry(self, now: float, as_lines: bool) -> list[SimEvent] | list[str]:
        """This tick's readings: SimEvents, or finished record lines for the recorder."""
        due = (self._tick_index - self.phase) % self.interval_ticks == 0
        producing = due & self.alive & ~self.hung & ~self.crashed
        sending = producing & self.comm_up
        seq_now = self.seq.copy()
        self.seq += producing
        if not sending.any():
            for kind in DeviceKind:  # keep the noise streams in step whatever is sent
                self._kind_noise(kind)
            return []
        ts = np.round(now + self.offset, 3)
        ts_text = self._timestamp_texts(now, ts)
        indices: list[np.ndarray] = []
        rendered: list[bytes] | list[str] = []
        for kind, columns_of in (
            (DeviceKind.UPS, self._ups_columns),
            (DeviceKind.SCANNER, self._scanner_columns),
            (DeviceKind.RADIO, self._radio_columns),
        ):
            sl = self._slices[kind]
            local = np.flatnonzero(sending[sl])
            noise = self._kind_noise(kind)
            if local.size == 0:
                continue
            glob = local + sl.start
            indices.append(glob)
            glob_list = glob.tolist()
            stamps = [ts_text[g] for g in glob_list]
            columns = (stamps, seq_now[glob], *columns_of(local, noise[:, local]))
            if as_lines:
                topics = [self._topics[g] for g in glob_list]
                rendered.extend(render_record_lines(TEMPLATES[kind], topics, columns))  # type: ignore[arg-type]
            else:
                rendered.extend(render(TEMPLATES[kind], columns))  # type: ignore[arg-type]
        glob_all = np.concatenate(indices)
        order = np.argsort(self._order_key[glob_all], kind="stable")
        if as_lines:
            return [rendered[i] for i in order.tolist()]  # type: ignore[misc]
        glob = glob_all[order].tolist()
        ts_list = ts[glob].tolist()
        pick = operator.itemgetter(*glob)
        topics = pick(self._topics) if len(glob) > 1 else (self._topics[glob[0]],)
        clients = pick(self._clients) if len(glob) > 1 else (self._clients[glob[0]],)
        payloads = [rendered[i] for i in order.tolist()]
        return list(map(SimEvent, ts_list, topics, payloads, _FALSES, _ONES, _PUBLISHES, clients))

    def _timestamp_texts(self, now: float, ts: np.ndarray) -> list[str]:
        """``repr`` of every device's timestamp this tick, without a float ``repr`` each.

        A timestamp is the tick's whole second plus the device's fixed offset, so its text is
        one of ten whole-second strings joined to the device's fraction string, which equals
        ``repr`` of the rounded float (at this magnitude three decimals are exact in ``repr``).
        """
        if now != int(now) or abs(now) > 1e12:
            return list(map(repr, ts.tolist()))
        whole = int(now) + self._offset_whole
        return [f"{w}{f}" for w, f in zip(whole.tolist(), self._offset_fraction, strict=True)]

    def _kind_noise(self, kind: DeviceKind) -> np.ndarray:
        sl = self._slices[kind]
        return self._noise[_KIND_ORDER[kind]].standard_normal((NOISE_ROWS, sl.stop - sl.start))

    def _ups_columns(self, idx: np.ndarray, noise: np.ndarray) -> tuple[Any, ...]:
        u = self.ups
        site = self.ups_site[idx]
        volts = np.array([f.voltage() for f in self.feeds])[site]
        freq = np.array([f.frequency() for f in self.feeds])[site]
        has_input = u.input_ok[idx]
        on_generator = np.array([f.source is Source.GENERATOR for f in self.feeds])[site]
        vnoise = np.where(on_generator, 3.0, 1.5)
        fnoise = np.where(on_generator, 0.15, 0.02)
        in_v = np.where(has_input, volts + vnoise * noise[0], 0.0)
        in_f = np.where(has_input, freq + fnoise * noise[1], 0.0)
        out_on = u.output_on[idx]
        load = u.load_w[idx]
        return (
            STATUS_TEXT[u.status[idx]],
            decimal_texts(np.clip(u.reported[idx] * 100.0, 0.0, 100.0), 1),
            np.rint(u.runtime_estimate[idx]).astype(np.int64),
            decimal_texts(u.battery_voltage[idx] + 0.02 * np.sqrt(u.blocks[idx]) * noise[2], 2),
            decimal_texts(in_v, 1),
            decimal_texts(in_f, 2),
            decimal_texts(np.where(out_on, 230.0 + 0.3 * noise[3], 0.0), 1),
            decimal_texts(
                np.maximum(load / u.rated_w[idx] * 100.0 * (1 + 0.01 * noise[4]), 0.0), 1
            ),
            np.rint(np.maximum(load * (1 + 0.01 * noise[4]), 0.0)).astype(np.int64),
            decimal_texts(u.temperature[idx] + 0.1 * noise[5], 1),
        )

    def _scanner_columns(self, idx: np.ndarray, noise: np.ndarray) -> tuple[Any, ...]:
        s = self.scanners
        state = s.state[idx]
        draw = s.power_draw()[idx]
        return (
            WIRE_STATES[state],
            PHASE_NAMES[state],
            SCANNER_SOURCES[self.scanner_source[idx]],
            np.rint(np.maximum(draw * (1 + 0.02 * noise[0]), 0.0)).astype(np.int64),
            [JSON_BOOL[v] for v in s.xray_ready()[idx].tolist()],
            s.scans_total[idx],
            decimal_texts(s.cabinet[idx] + 0.1 * noise[1], 1),
            s.fault_code[idx],
        )

    def _radio_columns(self, idx: np.ndarray, noise: np.ndarray) -> tuple[Any, ...]:
        r = self.radios
        source = np.where(r.ac_ok[idx], 1, 2)
        terminals = r.terminals[idx]
        rssi = np.where(terminals > 0.5, -82.0 + 3.0 * noise[0], -118.0 + 1.0 * noise[0])
        registered = np.maximum(np.rint(terminals + np.sqrt(terminals) * noise[1]), 0.0)
        return (
            RADIO_SOURCES[source],
            decimal_texts(r.supply_v[idx] + 0.02 * noise[2], 2),
            decimal_texts(r.soc[idx] * 100.0, 1),
            decimal_texts(np.maximum(r.tx_w[idx] * (1 + 0.03 * noise[3]), 0.0), 1),
            decimal_texts(np.maximum(r.vswr[idx] + 0.01 * noise[4], 1.0), 2),
            decimal_texts(rssi, 1),
            decimal_texts(r.pa_temp[idx] + 0.2 * noise[5], 1),
            [JSON_BOOL[v] for v in r.backhaul_up[idx].tolist()],
            registered.astype(np.int64),
        )


_KIND_ORDER = {kind: number for number, kind in enumerate(DeviceKind)}
_FALSES = itertools.repeat(False)
_ONES = itertools.repeat(1)
_PUBLISHES = itertools.repeat(Action.PUBLISH)


def _time(event: SimEvent) -> float:
    return event.time
