"""The NUT Devices Dumps Library served as live UPSes: one real upsd, one dummy-ups per dump.

``shared/data/nut-ddl`` holds 677 ``upsc`` dumps of real units. It is not part of the
repository: CI copies ``shared/`` beside the clone, so it is looked for in ``shared/data``
of the repository's parent folder (and of the folders above it, for git worktrees), or at
``KORDON_NUT_DDL``. Callers skip with :data:`MISSING` as the reason when it is absent.

A ``.dev`` file is served by ``dummy-ups`` in its "dummy-once" mode: read once, then held.
What upsd serves is the truth the bridge must publish, not the file: dummy-ups strips the
library's inline ``#BAD``/``#COMMENT`` notes, replaces ``driver.*`` with its own, and the
driver core adds ``device.*`` twins of ``ups.*`` identity variables.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testkit import free_port
from testkit.bridges import NUT_BIN, nut_request
from testkit.waiting import end_process, wait_until

ROOT = Path(__file__).resolve().parents[1]
MISSING = (
    "the NUT Devices Dumps Library is absent: put shared/data/nut-ddl beside the repository "
    "(the repository's parent folder holds shared/), or set KORDON_NUT_DDL"
)


def library_root() -> Path | None:
    """``nut-ddl`` next to the repository (or above it), or ``KORDON_NUT_DDL``; ``None``."""
    explicit = os.environ.get("KORDON_NUT_DDL")
    if explicit:
        path = Path(explicit)
        return path if path.is_dir() else None
    for folder in ROOT.parents:
        candidate = folder / "shared" / "data" / "nut-ddl"
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class Dump:
    ups: str  # NUT UPS name and Kordon device name: short, so upsd's socket paths stay short
    path: Path

    @property
    def label(self) -> str:
        return f"{self.ups} ({self.path.parent.name}/{self.path.name})"


def dumps(root: Path) -> list[Dump]:
    """Every ``.dev`` file, in a stable order, each with a UPS name ``ddl000``..."""
    return [Dump(f"ddl{i:03d}", path) for i, path in enumerate(sorted(root.rglob("*.dev")))]


def batches(items: list[Dump], size: int) -> Iterator[list[Dump]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LibraryServer:
    """upsd plus one ``dummy-ups`` per dump, all in one upsd (many UPS sections)."""

    def __init__(self, folder: Path, items: list[Dump], *, maxage: int = 30) -> None:
        self.folder = folder
        self.state = folder / "s"  # short: upsd talks to drivers over sockets in here
        self.state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.items = items
        self.env = {**os.environ, "NUT_CONFPATH": str(folder), "NUT_STATEPATH": str(self.state)}
        sections = [
            f"[{item.ups}]\n  driver = dummy-ups\n  port = {_quoted(str(item.path))}\n"
            f"  desc = {_quoted(item.label)}\n"
            for item in items
        ]
        (folder / "ups.conf").write_text("\n".join(sections))
        (folder / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {self.port}\nMAXAGE {maxage}\n")
        (folder / "upsd.users").write_text("")
        (folder / "upsd.users").chmod(0o600)
        self.drivers: dict[str, subprocess.Popen[bytes]] = {}
        self.upsd: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with (self.folder / log_name).open("ab") as log:
            return subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    def start(self, timeout: float = 120) -> LibraryServer:
        for item in self.items:
            self.drivers[item.ups] = self._spawn(
                [str(NUT_BIN / "dummy-ups"), "-a", item.ups, "-u", "root", "-F"],
                f"driver-{item.ups}.log",
            )
        self.upsd = self._spawn([str(NUT_BIN / "upsd"), "-u", "root", "-F"], "upsd.log")
        wait_until(self._answers, 30, what="upsd to listen")
        wait_until(self._all_serving, timeout, interval=0.2,
                   what=f"upsd to serve all {len(self.items)} dumps")
        return self

    def _answers(self) -> bool:
        if self.upsd is not None and self.upsd.poll() is not None:
            raise RuntimeError(f"upsd exited: {(self.folder / 'upsd.log').read_text()}")
        try:
            return bool(nut_request(self.port, "VER"))
        except OSError:
            return False

    def _all_serving(self) -> bool:
        for name, driver in self.drivers.items():
            if driver.poll() is not None:
                log = (self.folder / f"driver-{name}.log").read_text(errors="replace")
                raise RuntimeError(f"dummy-ups for {name} exited: {log}")
        lines = nut_request(self.port, *(f"GET VAR {item.ups} ups.status" for item in self.items),
                            timeout=10)
        answers = [line for line in lines if line.startswith(("VAR ", "ERR "))]
        return len(answers) == len(self.items) and all(
            line.startswith("VAR ") and '"WAIT"' not in line for line in answers
        )

    def variables(self, ups: str) -> dict[str, str]:
        """What upsd serves for ``ups`` (``LIST VAR``), read with the test's own probe."""
        from bridges.nut.protocol import split_words

        served: dict[str, str] = {}
        for line in nut_request(self.port, f"LIST VAR {ups}", timeout=10):
            if line.startswith("VAR "):
                _, _, name, value = split_words(line)
                served[name] = value
        return served

    def all_variables(self) -> dict[str, dict[str, str]]:
        """:meth:`variables` of every UPS, over one connection."""
        from bridges.nut.protocol import split_words

        served: dict[str, dict[str, str]] = {item.ups: {} for item in self.items}
        lines = nut_request(self.port, *(f"LIST VAR {item.ups}" for item in self.items),
                            timeout=30)
        for line in lines:
            if line.startswith("VAR "):
                _, ups, name, value = split_words(line)
                served[ups][name] = value
        return served

    def stop(self) -> None:
        if self.upsd is not None:
            end_process(self.upsd, timeout=10)
            self.upsd = None
        for driver in self.drivers.values():
            end_process(driver, timeout=10)
