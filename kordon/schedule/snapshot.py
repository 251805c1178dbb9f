"""The foresight snapshot: what the alerts role last forecast, for the API to show.

The alerts role computes each UPS's verdict against its site's scheduled cuts; the API runs as
another role (often another process, or host with a shared data dir) and never imports the
engine. They share one small JSON file, ``$KORDON_DATA_DIR/foresight.json``, written whole by
the alerts role after each evaluation (at most once a second, and at least once a minute as a
heartbeat) and read by the API when its modification time changes. The file is replaced with a
rename after an fsync of the new copy, so a reader sees the old document or the new one, never
half of one. It is derived state: lost or deleted, the next evaluation writes it again.

Schema (``version`` 1)::

    {"version": 1,
     "written_at": <wall clock, epoch s>,      # staleness is judged on this
     "evaluated_at": <engine time, epoch s>,   # the latest site's "now" of the forecast
     "sites": {<site>: {"outlook": Outlook.to_dict(),
                        "ups": [Verdict.to_dict(), ...],
                        "evaluated_at": <the site's time>}}}  # its stream's scenario time
                                                              # or the wall's; optional

A site's own ``evaluated_at`` wins over the document's (sites on a simulated stream and real
ones can share an engine, each on its own clock); readers fall back to the document's.

``Outlook.to_dict`` is :mod:`kordon.schedule.model`'s; ``Verdict.to_dict`` is the alerts
role's (``alerts/foresight/evaluator.py``): ``cuts`` per UPS with ``verdict``, ``soc_start``,
``soc_end``, ``needed`` (shares of the battery), ``runs_out_at``, ``short_s`` and
``shedding_carries``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

SNAPSHOT_FILE = "foresight.json"
SNAPSHOT_VERSION = 1


def snapshot_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / SNAPSHOT_FILE


def write_snapshot(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = json.dumps(document, sort_keys=True, allow_nan=False).encode()
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class SnapshotReader:
    """The latest snapshot, re-read only when the file changed (a stat per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._document: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any] | None:
        """The document, or None when there is none (yet) or it is not one this reads."""
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._document = None, None
                return None
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                try:
                    document = json.loads(self.path.read_bytes())
                except (OSError, ValueError):
                    return self._document  # replaced under us: the next call reads it
                ok = isinstance(document, dict) and document.get("version") == SNAPSHOT_VERSION
                self._document = document if ok else None
                self._stamp = stamp
            return self._document
