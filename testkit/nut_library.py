"""The NUT Devices Dumps Library: its dumps, to serve as live UPSes (one upsd, a dummy-ups each).

``shared/data/nut-ddl`` holds 677 ``upsc`` dumps of real units. It is not part of the
repository: CI copies ``shared/`` beside the clone, so it is looked for in ``shared/data``
of the repository's parent folder (and of the folders above it, for git worktrees), or at
``KORDON_NUT_DDL``. Callers skip with :data:`MISSING` as the reason when it is absent.
:meth:`testkit.bridges.NutServer.from_dumps` serves dumps as live UPSes.

A ``.dev`` file is served by ``dummy-ups`` in its "dummy-once" mode: read once, then held.
What upsd serves is the truth the bridge must publish, not the file: dummy-ups strips the
library's inline ``#BAD``/``#COMMENT`` notes, replaces ``driver.*`` with its own, and the
driver core adds ``device.*`` twins of ``ups.*`` identity variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
