"""``kordon battery relearn``: every UPS's battery model recomputed from stored history.

The alerts role learns as discharges happen; this command does the same from what the
telemetry store holds (InfluxDB or SQLite, through the store seam), so a new model version
applies to old data, and a battery model lost with its data directory comes back. Per UPS: the
days that hold readings (one count query), then each day's readings, then the learner
(``alerts.battery``) over all of them; the health after each discharge is written again as
``battery_health`` points (the Grafana panel of health over time), and the model is saved
where the alerts role and the API read it (``battery.sqlite``). Stop the alerts role first (or
restart it after): it keeps its own models in memory and saves them at its next discharge.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from kordon.config import Settings

if TYPE_CHECKING:
    from alerts.battery import Reading
    from kordon.storage.telemetry import TelemetryStore

DAY = 86400
METRICS = (
    "ups.status",
    "battery.charge",
    "battery.runtime",
    "battery.voltage",
    "ups.load",
    "ups.realpower",
    "ups.temperature",
)


def register(commands: argparse._SubParsersAction) -> None:
    battery = commands.add_parser("battery", help="learned battery models of the UPS units")
    actions = battery.add_subparsers(dest="battery_command", required=True)
    relearn = actions.add_parser(
        "relearn",
        help="recompute every UPS's battery model from stored history",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    relearn.add_argument("--site", help="only this site")
    relearn.add_argument("--device", help="only this UPS (with --site)")
    relearn.add_argument("--dry-run", action="store_true",
                         help="print what would be learned, write nothing")
    relearn.set_defaults(handler=_relearn)
    show = actions.add_parser("show", help="print the stored battery models")
    show.set_defaults(handler=_show)


def _units(settings: Settings, args: argparse.Namespace) -> list[tuple[str, str]]:
    """UPS units of the fleet file and every UPS the alert engine has seen."""
    from kordon.fleet import load_fleet
    from kordon.model.kinds import DeviceKind
    from kordon.storage.alert_store import AlertStore

    found: set[tuple[str, str]] = set()
    if settings.fleet.file is not None:
        fleet = load_fleet(settings.fleet.file)
        found |= {(e.site, e.device) for e in fleet.devices() if e.kind is DeviceKind.UPS}
    store = AlertStore.in_data_dir(settings.data_dir)
    try:
        found |= {(k.site, k.device) for k in store.known_devices() if k.kind == "ups"}
    finally:
        store.close()
    units = sorted(found)
    if args.site:
        units = [u for u in units if u[0] == args.site]
    if args.device:
        units = [u for u in units if u[1] == args.device]
    return units


def read_history(store: TelemetryStore, site: str, device: str, end_ns: int) -> list[Reading]:
    """Every stored reading of one UPS, day by day (only the days that hold any)."""
    from alerts.battery import Reading
    from kordon.storage.telemetry import HistoryRequest

    days = store.history(
        HistoryRequest("ups", site, device, {"ups.status": "count"}, 0, end_ns, DAY)
    ).get("ups.status", [])
    readings: list[Reading] = []
    for day_ms, count in days:
        if not count:
            continue
        start_ns = int(day_ms) * 1_000_000
        points = store.history(
            HistoryRequest("ups", site, device, dict.fromkeys(METRICS, "last"), start_ns,
                           start_ns + DAY * 1_000_000_000, 1)
        )
        rows: dict[int, dict[str, Any]] = {}
        for metric, series in points.items():
            for ms, value in series:
                rows.setdefault(int(ms), {})[metric] = value
        readings.extend(Reading.from_metrics(ms / 1000.0, rows[ms]) for ms in sorted(rows))
    return readings


def _relearn(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.battery import MODEL_VERSION, analyse, combine, ordered, rated_curve, segment
    from alerts.battery.learn import infer_blocks
    from alerts.battery.live import health_line, installed_at, seed_of
    from kordon.fleet import FleetError, UpsParams, load_fleet
    from kordon.storage.battery_store import BatteryStore
    from kordon.storage.stores import open_telemetry_store
    from kordon.storage.telemetry import StoreError

    try:
        fleet = load_fleet(settings.fleet.file) if settings.fleet.file is not None else None
    except FleetError as exc:
        print(f"kordon battery relearn: fleet.file: {exc}", file=sys.stderr)
        return 2
    units = _units(settings, args)
    if not units:
        print("kordon battery relearn: no UPS units known (fleet file or alert store)",
              file=sys.stderr)
        return 1
    store = open_telemetry_store(settings.influx)
    models = BatteryStore.in_data_dir(settings.data_dir)
    end_ns = int((time.time() + 2 * DAY) * 1e9)
    failed = 0
    try:
        for number, (site, device) in enumerate(units, 1):
            head = f"[{number}/{len(units)}] {site}/{device}:"
            params = None
            if fleet is not None and site in fleet.sites:
                found = fleet.sites[site].devices.get(device)
                params = found if isinstance(found, UpsParams) else None
            seed, since = seed_of(params), installed_at(params)
            try:
                readings = read_history(store, site, device, end_ns)
            except StoreError as exc:
                print(f"{head} cannot read history: {exc}", flush=True)
                failed += 1
                continue
            if since is not None:
                readings = [r for r in readings if r.time >= since]
            stream = ordered(readings)
            discharges = segment(stream)
            rated, source = rated_curve(seed, stream, discharges)
            blocks = infer_blocks(seed, stream)
            count = "load" if source == "nameplate" else "charge"
            evidence = [e for d in discharges
                        if (e := analyse(d, rated, blocks, seed.peukert, count)) is not None]
            lines = []
            model = combine(evidence, rated, seed, source)
            for i in range(1, len(evidence) + 1):  # health as it stood after each discharge
                step = combine(evidence[:i], rated, seed, source)
                if step.health_pct is not None:
                    lines.append(health_line(step, site, device))
            if model.health_pct is None:
                print(f"{head} {len(stream):,} readings, {len(discharges)} discharges, "
                      "no usable evidence", flush=True)
                continue
            print(f"{head} {len(stream):,} readings, {len(discharges)} discharges -> health "
                  f"{model.health_pct:.0f}% (confidence {model.confidence:.2f}, "
                  f"{model.discharges} used, rated curve: {model.rated_source})", flush=True)
            if args.dry_run:
                continue
            models.save([(site, device, MODEL_VERSION, model.to_dict(), model.learned_at)],
                        model.learned_at or 0.0)
            if lines:
                try:
                    store.write(("\n".join(lines) + "\n").encode())
                except StoreError as exc:
                    print(f"{head} health history not written: {exc}", flush=True)
                    failed += 1
    finally:
        store.close()
        models.close()
    print(f"relearned {len(units) - failed} of {len(units)} UPS units "
          f"(model version {MODEL_VERSION})")
    return 1 if failed else 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from kordon.durations import approx_duration
    from kordon.model.battery import curve_at
    from kordon.storage.battery_store import BatteryStore

    models = BatteryStore.in_data_dir(settings.data_dir)
    try:
        rows = models.models()
    finally:
        models.close()
    if not rows:
        print("no battery models stored yet")
    for row in rows:
        m = row.model
        health = m.get("health_pct")
        print(f"{row.site}/{row.device}: health "
              f"{'-' if health is None else f'{health:.0f}%'}, confidence "
              f"{m.get('confidence', 0):.2f}, {m.get('discharges', 0)} discharges, "
              f"{approx_duration(curve_at(m['curve'], 50.0))} at 50% load "
              f"(model version {row.model_version})")
    return 0
