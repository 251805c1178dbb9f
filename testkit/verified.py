"""``kordon scenario verify``'s answer for a library scenario, computed once per test run.

Verifying a day of a library scenario costs 10-40 s of CPU (the simulation and the engine on
its clock), and several tests compare against the same answer: the library check, the 600x
in-process stream, the live stack's fidelity runs. The answer is deterministic (the blackout
test proves it by replaying twice), so the first test that needs it computes it and the others
read it, across pytest-xdist workers too: each answer is a pickle in a folder the workers
share, written under a per-scenario file lock, so two workers never compute the same one.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.replay import ReplayResult


class VerifiedScenarios:
    """Verify answers (default rules and receivers) kept in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def result(self, name: str) -> ReplayResult:
        """The verify answer of library scenario ``name``."""
        answer = self.folder / f"{name}.pickle"
        with (self.folder / f"{name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if answer.exists():
                return pickle.loads(answer.read_bytes())
            result = _verify(name)
            partial = answer.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(pickle.dumps(result))
            partial.replace(answer)
            return result


def _verify(name: str) -> ReplayResult:
    from alerts.config import RulesSettings
    from composition.verify import replay_scenario
    from simulators.scenario import load_scenario

    return replay_scenario(load_scenario(name), RulesSettings())


def shared_folder(basetemp: Path) -> Path:
    """Where this run's answers live: ``KORDON_VERIFIED_DIR`` when set (``scripts/test.sh``
    sets a fresh one for its two pytest runs, so the second reads what the first computed),
    else beside the workers' own temporary folders under pytest-xdist (``basetemp`` is
    ``.../pytest-N/popen-gwK``), else in ``basetemp``."""
    if os.environ.get("KORDON_VERIFIED_DIR"):
        return Path(os.environ["KORDON_VERIFIED_DIR"])
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return basetemp.parent / "verified"
    return basetemp / "verified"
