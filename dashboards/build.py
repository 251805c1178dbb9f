"""Write (or verify) ``dashboards/*.json`` from :mod:`dashboards.definitions`.

Run ``python -m dashboards.build`` after changing a definition and commit the JSON: Grafana
provisioning and ``kordon dashboards push`` read the JSON, never the Python. ``--check`` fails
when the committed JSON is stale, which is what the tests run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboards.definitions import DASHBOARDS
from dashboards.panels import Json


def render(dashboard: Json) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    return {name: render(factory()) for name, factory in DASHBOARDS.items()}


def stale(folder: Path) -> list[str]:
    """File names whose content differs from what the definitions generate."""
    out = []
    for name, text in rendered().items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


# The JSON lies beside the definitions, so the folder is known without asking.
HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None, default_dir: Path | None = HERE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=default_dir, required=default_dir is None)
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.dir)
        for name in names:
            print(f"{args.dir / name}: stale; run python -m dashboards.build", file=sys.stderr)
        return 1 if names else 0
    for name, text in rendered().items():
        path = args.dir / name
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{path}: {'written' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
