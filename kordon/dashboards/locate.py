"""Where the dashboard JSON is: an explicit folder, the repository checkout, or the install.

Why several places: developers run from a checkout (``dashboards/`` next to ``kordon/``), the
container image and ``pip install`` put the files under ``<prefix>/share/kordon/dashboards``
(setuptools data-files), and an operator may keep customised copies elsewhere (``--dir``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2] / "dashboards"
_INSTALLED = Path(sys.prefix) / "share" / "kordon" / "dashboards"


class DashboardsNotFound(FileNotFoundError):
    pass


def candidates() -> list[Path]:
    return [_CHECKOUT, _INSTALLED]


def dashboards_dir(explicit: Path | None = None) -> Path:
    """The folder holding ``*.json`` dashboards; an explicit folder must exist."""
    if explicit is not None:
        if not explicit.is_dir():
            raise DashboardsNotFound(f"{explicit} is not a folder")
        return explicit
    for folder in candidates():
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    looked = ", ".join(str(folder) for folder in candidates())
    raise DashboardsNotFound(f"no dashboards found (looked in {looked}); pass --dir FOLDER")


def dashboard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))
