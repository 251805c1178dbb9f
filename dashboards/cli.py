"""``kordon dashboards check`` and ``kordon dashboards push``.

Heavy imports (grafana-client) happen inside the handlers, so ``kordon --help`` stays fast and
``check`` works where grafana-client is not installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from dashboards import FOLDER_TITLE, FOLDER_UID
from kordon.config import Settings


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("dashboards", help="check or push the Grafana dashboards")
    actions = group.add_subparsers(dest="dashboards_command", required=True)

    check = actions.add_parser("check", help="validate the dashboard JSON without a server")
    check.add_argument("--dir", type=Path, help="dashboards folder (default: the shipped ones)")
    check.set_defaults(handler=_cmd_check)

    push = actions.add_parser(
        "push", help="create or update the data source and dashboards in Grafana by uid"
    )
    push.add_argument("--grafana-url", required=True, help="e.g. http://grafana:3000")
    push.add_argument(
        "--token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service account token (default: $GRAFANA_TOKEN; or user:pass in the URL)",
    )
    push.add_argument(
        "--influx-url",
        help="InfluxDB URL as Grafana reaches it (default: influx.url of the configuration)",
    )
    push.add_argument("--dir", type=Path, help="dashboards folder (default: the shipped ones)")
    push.add_argument("--folder-uid", default=FOLDER_UID)
    push.add_argument("--folder-title", default=FOLDER_TITLE)
    push.add_argument("--force", action="store_true", help="re-send data source secrets (rotation)")
    push.add_argument("--dry-run", action="store_true", help="report what would change")
    push.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    push.set_defaults(handler=_cmd_push)


def _folder(args: argparse.Namespace) -> Path | None:
    from dashboards.locate import DashboardsNotFound, dashboards_dir

    try:
        return dashboards_dir(args.dir)
    except DashboardsNotFound as exc:
        print(f"kordon dashboards: {exc}", file=sys.stderr)
        return None


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.check import check_folder
    from dashboards.locate import dashboard_files

    folder = _folder(args)
    if folder is None:
        return 2
    problems = check_folder(folder)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {folder}", file=sys.stderr)
        return 1
    print(f"{len(dashboard_files(folder))} dashboards in {folder}: ok")
    return 0


def _cmd_push(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.check import check_folder
    from dashboards.push import InfluxSource, Pusher, connect, health, load_dashboards

    folder = _folder(args)
    if folder is None:
        return 2
    problems = check_folder(folder)
    if problems:  # a broken dashboard must not reach the operations centre
        for problem in problems:
            print(problem, file=sys.stderr)
        print("kordon dashboards push: fix the problems above first", file=sys.stderr)
        return 1
    source = InfluxSource.from_settings(settings.influx, args.influx_url)
    try:
        api = connect(args.grafana_url, args.token, args.timeout)
        info = health(api)
        print(f"grafana {args.grafana_url}: version {info.get('version', '?')}")
        pusher = Pusher(
            api,
            folder_uid=args.folder_uid,
            folder_title=args.folder_title,
            force=args.force,
            dry_run=args.dry_run,
        )
        changes = pusher.push(source.datasource(), load_dashboards(folder))
    except Exception as exc:  # grafana-client raises its own and niquests' errors
        print(f"kordon dashboards push: {_explain(exc)}", file=sys.stderr)
        return 1
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    print(f"{'would push' if args.dry_run else 'pushed'}: {summary}")
    return 0


def _explain(exc: Any) -> str:
    status = getattr(exc, "status_code", None)
    if status == 401:
        return "Grafana refused the credentials (401): check --token or user:pass in the URL"
    if status == 403:
        return "the token lacks permission (403): it needs the Editor or Admin role"
    if status is not None:
        return f"Grafana answered {status}: {getattr(exc, 'message', exc)}"
    return f"{type(exc).__name__}: {exc}"
