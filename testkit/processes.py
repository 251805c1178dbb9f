"""Kordon itself as a child process, so tests can SIGKILL and restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from testkit.waiting import end_process, wait_until

LIVE: set[KordonProcess] = set()


class KordonProcess:
    """``python -m composition ARGS`` with its output in ``workdir/kordon.log``.

    Every instance is remembered in :data:`LIVE` so a test that fails half-way cannot leave
    a collector running into the next test (see ``tests/conftest.py``).
    """

    def __init__(self, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.env.pop("KORDON_CONFIG", None) if "KORDON_CONFIG" not in env else None
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "kordon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_line: str | None = None, timeout: float = 30) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "composition", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        LIVE.add(self)
        if ready_line:
            wait_until(
                lambda: self.log_since(offset).find(ready_line) >= 0 or self._dead(),
                timeout=timeout,
                what=f"kordon to log {ready_line!r}",
            )
            if self._dead():
                raise RuntimeError(f"kordon exited early:\n{self.tail_log()}")

    def _dead(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def log_since(self, offset: int) -> str:
        """What the log gained past ``offset`` (a size of :attr:`log_path` read before)."""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail_log(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        code = end_process(self.process, sig, timeout)
        self.process = None
        LIVE.discard(self)
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


MakeProcess = Callable[..., KordonProcess]
"""The type of the factory fixtures ``make_collector`` and ``make_alerts`` (tests/conftest.py)."""
