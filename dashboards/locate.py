"""Where the dashboard JSON is: an explicit folder, this package's own folder, or the install.

Why several places: the JSON is written beside its definitions (``dashboards/``) and ships as
this package's data; the container image and ``pip install`` also put the files under
``<prefix>/share/kordon/dashboards`` (setuptools data-files) for Grafana's provisioning, and an
operator may keep customised copies elsewhere (``--dir``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED = Path(sys.prefix) / "share" / "kordon" / "dashboards"


class DashboardsNotFound(FileNotFoundError):
    pass


def candidates() -> list[Path]:
    return [_PACKAGE, _INSTALLED]


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
