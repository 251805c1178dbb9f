"""Regenerate the dashboard JSON in this folder: ``python dashboards/build.py [--check]``.

The dashboards are defined in ``kordon/dashboards/definitions.py``; this script only writes
them here so that the JSON (what Grafana reads) is committed and reviewable.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kordon.dashboards.build import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default_dir=Path(__file__).resolve().parent))
