"""The scenario library (read as data) and scenario runs (``kordon simulate`` subprocesses).

The API never imports the simulators: the composition layer hands it the library's folder
(``api.scenarios_dir`` overrides it; with neither, the library is empty and nothing can be
run). It reads the YAML files there for their name, description and duration, and runs a
scenario the way a technician would, as
``python -m composition simulate FILE --speed N`` in a process of its own. A run therefore talks to
the rest of Kordon through the broker like real devices, and stopping it (SIGTERM, then
SIGKILL) cannot disturb the API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from api.state import iso
from kordon.clock import Clock
from kordon.model.topics import NAME_PATTERN

log = logging.getLogger("api.scenarios")

_KEEP_RUNS = 50
_TAIL_LINES = 40


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    name: str
    title: str
    description: str
    duration: str | None
    fleet: str | None
    expects: list[str]
    path: Path

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "duration": self.duration,
            "fleet": self.fleet,
            "expects": self.expects,
        }


def read_library(folder: Path | None) -> dict[str, ScenarioInfo]:
    """Scenario files by name. A file that does not parse is listed with the problem, not
    hidden: the technician who broke it needs to see that."""
    if folder is None or not folder.is_dir():
        return {}
    found: dict[str, ScenarioInfo] = {}
    for path in sorted(folder.glob("*.yaml")):
        if not NAME_PATTERN.match(path.stem):
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            data = {"description": f"cannot be read: {exc}"}
        if not isinstance(data, dict):
            data = {"description": "not a scenario file (the top level is not a mapping)"}
        description = str(data.get("description") or "").strip()
        expects = []
        for item in data.get("expect") or []:
            if isinstance(item, dict) and item.get("alertname"):
                expects.append(str(item["alertname"]))
        duration = data.get("duration")
        found[path.stem] = ScenarioInfo(
            name=path.stem,
            title=str(data.get("name") or path.stem),
            description=description,
            duration=str(duration) if duration is not None else None,
            fleet=str(data["fleet"]) if data.get("fleet") is not None else None,
            expects=sorted(set(expects)),
            path=path,
        )
    return found


@dataclass(slots=True)
class Run:
    id: str
    scenario: str
    speed: float
    started_by: str
    started_at: float
    log_path: Path
    process: subprocess.Popen[bytes]
    ended_at: float | None = None
    state: str = "running"
    exit_code: int | None = None
    stop_requested: bool = False
    _tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))

    def poll(self) -> None:
        if self.state != "running":
            return
        code = self.process.poll()
        if code is None:
            return
        self.exit_code = code
        self.ended_at = time.time()
        if self.stop_requested:
            self.state = "stopped"
        else:
            self.state = "finished" if code == 0 else "failed"

    def tail(self) -> list[str]:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 16384))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return text.splitlines()[-_TAIL_LINES:]

    def public(self, with_log: bool = False) -> dict[str, Any]:
        self.poll()
        data: dict[str, Any] = {
            "id": self.id,
            "scenario": self.scenario,
            "speed": self.speed,
            "state": self.state,
            "started_by": self.started_by,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "exit_code": self.exit_code,
            "log": self.tail() if with_log else [],
        }
        return data


class TooManyRuns(Exception):
    pass


class ScenarioRunner:
    """Starts, tracks and stops scenario runs; keeps the last few for the page to show."""

    def __init__(
        self,
        library: Path | None,
        workdir: Path,
        clock: Clock,
        max_runs: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:
        self.library_dir = library
        self.workdir = workdir
        self.clock = clock
        self.max_runs = max_runs
        self.env = env
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def library(self) -> dict[str, ScenarioInfo]:
        return read_library(self.library_dir)

    def runs(self) -> list[Run]:
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.poll()
        return sorted(runs, key=lambda r: r.started_at, reverse=True)

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def start(self, info: ScenarioInfo, speed: float, started_by: str) -> Run:
        with self._lock:
            for existing in self._runs.values():
                existing.poll()
            running = [r for r in self._runs.values() if r.state == "running"]
            if len(running) >= self.max_runs:
                raise TooManyRuns(
                    f"{len(running)} scenario run(s) already going (limit {self.max_runs}): "
                    f"stop one first ({', '.join(r.id for r in running)})"
                )
            run_id = uuid.uuid4().hex[:12]
            self.workdir.mkdir(parents=True, exist_ok=True)
            log_path = self.workdir / f"{run_id}.log"
            command = [
                sys.executable,
                "-m",
                "composition",
                "simulate",
                str(info.path),
                "--speed",
                f"{speed:g}",
            ]
            env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
            with log_path.open("wb") as out:
                process = subprocess.Popen(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            run = Run(run_id, info.name, speed, started_by, time.time(), log_path, process)
            self._runs[run_id] = run
            finished = [r for r in self._runs.values() if r.state != "running"]
            for old in sorted(finished, key=lambda r: r.started_at)[
                : max(0, len(self._runs) - _KEEP_RUNS)
            ]:
                self._runs.pop(old.id, None)
        log.info(
            "scenario %s started as run %s at speed %g by %s", info.name, run_id, speed, started_by
        )
        return run

    def stop(self, run: Run, timeout: float = 10.0) -> None:
        run.poll()
        if run.state != "running":
            return
        run.stop_requested = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.process.pid, signal.SIGTERM)
        try:
            run.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()
        run.poll()
        log.info("scenario run %s stopped", run.id)

    def stop_all(self, timeout: float = 10.0) -> None:
        for run in self.runs():
            self.stop(run, timeout)
