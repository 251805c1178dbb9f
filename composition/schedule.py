"""``kordon schedule show [SITE]``: the next scheduled cuts of each site of the fleet.

Reads every schedule source of the fleet file once (the last good copies in
``$KORDON_DATA_DIR/schedules`` stand in for a source that cannot be read) and prints, per
site, its group, what is known (``known``, ``unknown`` and why, ``emergency``) and the cuts
of the next 36 hours in the fleet's time zone.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from kordon.config import Settings


def register(commands: argparse._SubParsersAction) -> None:
    schedule = commands.add_parser("schedule", help="outage schedules of the fleet's sites")
    actions = schedule.add_subparsers(dest="schedule_command", required=True)
    show = actions.add_parser("show", help="print the next scheduled cuts per site")
    show.add_argument("site", nargs="?", help="one site (default: every site)")
    show.add_argument("--fleet", help="fleet file (default: fleet.file / KORDON_FLEET)")
    show.add_argument("--at", type=float, default=None,
                      help="epoch seconds to look from (default: now)")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from kordon.clock import WALL_CLOCK
    from kordon.fleet import FleetError, load_fleet
    from kordon.schedule import ScheduleService

    path = args.fleet or settings.fleet.file
    if path is None:
        print("kordon schedule show: no fleet file; set fleet.file or KORDON_FLEET, or "
              "pass --fleet", file=sys.stderr)
        return 2
    try:
        fleet = load_fleet(path)
    except FleetError as exc:
        print(f"kordon schedule show: {exc}", file=sys.stderr)
        return 2
    if args.site is not None and args.site not in fleet.sites:
        print(f"kordon schedule show: no site {args.site!r}; the fleet has: "
              f"{', '.join(fleet.sites)}", file=sys.stderr)
        return 2
    service = ScheduleService(fleet, data_dir=Path(settings.data_dir),
                              base_dir=Path(path).resolve().parent, clock=WALL_CLOCK)
    service.refresh_all()
    now = args.at if args.at is not None else WALL_CLOCK.now()
    print(render(service, fleet, now, [args.site] if args.site else list(fleet.sites)))
    return 0


def render(service, fleet, now: float, sites: list[str]) -> str:  # type: ignore[no-untyped-def]
    zone = ZoneInfo(fleet.timezone)

    def clock(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, zone).strftime("%a %d %b %H:%M")

    lines = []
    for site in sites:
        outlook = service.outlook(site, now)
        head = f"{site} (group {outlook.group or fleet.sites[site].schedule_group}"
        head += f", {outlook.source})" if outlook.source else ")"
        if outlook.status.value != "known":
            lines.append(f"{head}: {outlook.status.value.upper()} - {outlook.reason}")
            continue
        until = f"known until {clock(outlook.known_until)}" if outlook.known_until else ""
        cuts = [c for c in outlook.cuts if c.end > now]
        if not cuts:
            lines.append(f"{head}: no cuts planned ({until})")
            continue
        lines.append(f"{head}: {len(cuts)} cut(s), {until}")
        for cut in cuts:
            hours = cut.duration / 3600
            maybe = "" if cut.definite else " (possible)"
            now_mark = "  <- now" if cut.start <= now < cut.end else ""
            lines.append(f"    {clock(cut.start)} - {clock(cut.end)}  {hours:.1f} h{maybe}"
                         f"{now_mark}")
    return "\n".join(lines)
