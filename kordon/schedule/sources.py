"""Schedule sources: read a file or URL on an interval, keep the last good copy durably.

A source that cannot be read, answers with an error or with something that does not parse
keeps serving its last good copy until that copy is older than ``max_age``; from then on its
groups are **unknown**, never "no cuts". The copy (the raw bytes and when they were read) is
written to ``<data_dir>/schedules/`` with a rename, so a restart during an outage of the
publisher's site still knows today's schedule. Each change of a source's health is logged
once (failing, recovered), not once per poll.

Times: ``fetched_at`` and staleness are on the service's clock (the wall clock live), while
the cuts are looked up at the caller's ``now`` (the stream's time), so a scenario replayed on
its own clock still reads a fresh schedule.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx

from kordon.clock import WALL_CLOCK, Clock
from kordon.durations import approx_duration
from kordon.fleet import Fleet, ScheduleSourceParams
from kordon.schedule.formats import ScheduleFormatError, parse
from kordon.schedule.model import KYIV, Outlook, Schedule, unknown

log = logging.getLogger("kordon.schedule")

MAX_BYTES = 4 * 1024 * 1024  # a schedule is a few KiB; anything this large is not one


class SiteSchedules(Protocol):
    """What the forecast, the page and ``kordon schedule show`` ask of schedules."""

    def outlook(self, site: str, now: float) -> Outlook: ...


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    ok: bool
    fetched_at: float | None  # last good read, service clock
    error: str | None
    updated_at: float | None  # the publisher's own update time, if the format has one


class ScheduleSource:
    """One published schedule."""

    def __init__(
        self,
        name: str,
        params: ScheduleSourceParams,
        *,
        cache_dir: Path | None,
        base_dir: Path | None = None,
        timezone: str = KYIV,
        clock: Clock = WALL_CLOCK,
        client: httpx.Client | None = None,
    ) -> None:
        self.name = name
        self.params = params
        self.timezone = params.timezone or timezone
        self.clock = clock
        self.cache_dir = cache_dir
        self.base_dir = base_dir
        self._client = client
        self._lock = threading.Lock()
        self.schedule: Schedule | None = None
        self.fetched_at: float | None = None
        self.error: str | None = None
        self._raw: bytes | None = None
        self._failing = False
        self.next_refresh = 0.0
        self._load_cache()

    # ---------------------------------------------------------------- reading
    @property
    def is_url(self) -> bool:
        return self.params.url.startswith(("http://", "https://"))

    def _path(self) -> Path:
        path = Path(self.params.url.removeprefix("file://"))
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def _read(self) -> bytes:
        if self.is_url:
            client = self._client or httpx.Client(timeout=10.0, follow_redirects=True)
            try:
                response = client.get(self.params.url)
            finally:
                if self._client is None:
                    client.close()
            if response.status_code != 200:
                raise OSError(f"HTTP {response.status_code} from {self._where()}")
            data = response.content
        else:
            data = self._path().read_bytes()
        if len(data) > MAX_BYTES:
            raise ScheduleFormatError(f"{len(data)} bytes: too large for a schedule")
        return data

    def _where(self) -> str:
        if not self.is_url:
            return str(self._path())
        url = httpx.URL(self.params.url)
        return f"{url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"

    def refresh(self) -> bool:
        """Read the source once. Returns True when a new schedule was taken."""
        now = self.clock.now()
        self.next_refresh = now + self.params.refresh
        try:
            data = self._read()
            schedule = parse(data, self.params.format, self.timezone, self.params.group)
        except (OSError, httpx.HTTPError, ScheduleFormatError) as exc:
            reason = _reason(exc)
            with self._lock:
                self.error = reason
                first = not self._failing
                self._failing = True
            if first:
                kept = (
                    "keeping the copy read at " + _clock_text(self.fetched_at)
                    if self.fetched_at is not None else "no copy to fall back on: unknown"
                )
                log.warning("schedule source %s (%s) failed: %s; %s until it reads again",
                            self.name, self._where(), reason, kept)
            return False
        with self._lock:
            changed = data != self._raw
            self.schedule, self._raw, self.fetched_at, self.error = schedule, data, now, None
            recovered = self._failing
            self._failing = False
        if recovered:
            log.info("schedule source %s reads again", self.name)
        self._store(data, now)
        return changed

    # ---------------------------------------------------------------- durable copy
    def _cache_paths(self) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.name}.data", self.cache_dir / f"{self.name}.meta.json"

    def _store(self, data: bytes, fetched_at: float) -> None:
        paths = self._cache_paths()
        if paths is None:
            return
        data_path, meta_path = paths
        data_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"fetched_at": fetched_at, "format": self.params.format, "url": self._where()}
        for path, body in ((data_path, data), (meta_path, json.dumps(meta).encode())):
            tmp = path.with_suffix(path.suffix + ".tmp")
            with open(tmp, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)

    def _load_cache(self) -> None:
        paths = self._cache_paths()
        if paths is None or not paths[0].exists() or not paths[1].exists():
            return
        try:
            data = paths[0].read_bytes()
            meta = json.loads(paths[1].read_text())
            schedule = parse(data, self.params.format, self.timezone, self.params.group)
        except (OSError, ValueError) as exc:
            log.warning("schedule source %s: ignoring its cached copy: %s", self.name, exc)
            return
        self.schedule, self._raw, self.fetched_at = schedule, data, float(meta["fetched_at"])

    # ---------------------------------------------------------------- answers
    def state(self) -> SourceState:
        with self._lock:
            updated = self.schedule.updated_at if self.schedule else None
            return SourceState(self.name, self.error is None and self.schedule is not None,
                               self.fetched_at, self.error, updated)

    def outlook(self, group: str, now: float) -> Outlook:
        with self._lock:
            schedule, fetched_at, error = self.schedule, self.fetched_at, self.error
        if schedule is None or fetched_at is None:
            why = f"source {self.name} unreadable: {error}" if error else (
                f"source {self.name} not read yet")
            return unknown(why, self.name, group)
        age = self.clock.now() - fetched_at
        if age > self.params.max_age:
            why = f"source {self.name} stale: last good read {_ago(age)} ago"
            if error:
                why += f" ({error})"
            return unknown(why, self.name, group)
        return schedule.outlook(group, now).with_origin(self.name, group)


class ScheduleService:
    """Every schedule source of a fleet, refreshed on its interval by one thread."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        data_dir: Path | None,
        base_dir: Path | None = None,
        clock: Clock = WALL_CLOCK,
        client: httpx.Client | None = None,
    ) -> None:
        cache = data_dir / "schedules" if data_dir is not None else None
        self.fleet = fleet
        self.clock = clock
        self.sources = {
            name: ScheduleSource(name, params, cache_dir=cache, base_dir=base_dir,
                                 timezone=fleet.timezone, clock=clock, client=client)
            for name, params in fleet.schedules.items()
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh_due(self) -> None:
        now = self.clock.now()
        for source in self.sources.values():
            if source.next_refresh <= now:
                source.refresh()

    def refresh_all(self) -> None:
        for source in self.sources.values():
            source.refresh()

    def start(self) -> ScheduleService:
        if self.sources and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="kordon-schedules",
                                            daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh_due()
            due = min(s.next_refresh for s in self.sources.values())
            self._stop.wait(max(1.0, due - self.clock.now()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def outlook(self, site: str, now: float) -> Outlook:
        conf = self.fleet.sites.get(site)
        if conf is None or conf.schedule is None:
            return unknown("no schedule source for this site in the fleet file")
        source = self.sources[conf.schedule.source]
        return source.outlook(conf.schedule_group, now)

    def states(self) -> list[SourceState]:
        return [s.state() for s in self.sources.values()]


class StaticSchedules:
    """One schedule that never goes stale, for every site by its group: what a scenario's
    schedule file is to ``scenario verify`` and the simulator."""

    def __init__(self, schedule: Schedule, groups: Mapping[str, str], name: str = "scenario"):
        self.schedule = schedule
        self.groups = dict(groups)
        self.name = name

    @classmethod
    def for_fleet(cls, schedule: Schedule, fleet: Fleet, name: str = "scenario",
                  sites: Iterable[str] | None = None) -> StaticSchedules:
        chosen = list(sites) if sites is not None else list(fleet.sites)
        return cls(schedule, {s: fleet.sites[s].schedule_group for s in chosen}, name)

    def outlook(self, site: str, now: float) -> Outlook:
        group = self.groups.get(site)
        if group is None:
            return unknown("no schedule for this site", self.name)
        return self.schedule.outlook(group, now).with_origin(self.name, group)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPError):
        return f"unreachable ({type(exc).__name__})"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"malformed: {exc}"


def _ago(seconds: float) -> str:
    return approx_duration(seconds)


def _clock_text(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
