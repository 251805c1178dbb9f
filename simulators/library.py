"""The library shipped with the simulators: scenario files and the fleets they run on.

Paths only, no parsing, so the composition layer can point the API's scenario catalogue and
``kordon demo`` at them without loading the simulators' physics.
"""

from __future__ import annotations

from pathlib import Path

LIBRARY = Path(__file__).resolve().parent / "scenarios"
FLEETS = Path(__file__).resolve().parent / "fleets"


def library_dir() -> Path:
    """The folder of library scenarios (one YAML file per scenario, named by its stem)."""
    return LIBRARY


def library() -> dict[str, Path]:
    """Library scenarios by name (file stem)."""
    return {path.stem: path for path in sorted(LIBRARY.glob("*.yaml"))}


def default_fleet_path() -> Path:
    """The fleet shipped with the simulators: western border crossings of Ukraine."""
    return FLEETS / "default.yaml"
