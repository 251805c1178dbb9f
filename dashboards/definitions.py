"""The four Kordon dashboards, as Python, so they share filters, colours and annotations.

Query conventions (they matter to the operations centre, so they are the same everywhere):

* Every query is raw InfluxQL: the contract's field names contain dots and must be quoted.
* ``$site`` and ``$device`` are multi-value variables matched as anchored regexes, which is how
  Grafana's InfluxQL interpolation expands several values (``(a|b)``) and "All".
* "Current" panels take the last value inside the dashboard's time range (``$timeFilter``),
  so they also read correctly when an operator looks back at last night's outage.
* Availability (``device_status``) is read without a time bound: a device that went offline
  before the start of the range is still offline.
* Alert events (``alerts``) are annotations on every dashboard, filtered by site only, because
  site-wide alerts (``SitePowerOutage``) carry no device.
"""

from __future__ import annotations

from dashboards.panels import (
    BOOL_READY_MAPPINGS,
    BOOL_UP_MAPPINGS,
    GREEN,
    ONLINE_MAPPINGS,
    ORANGE,
    POWER_SOURCE_MAPPINGS,
    RED,
    SCANNER_STATE_MAPPINGS,
    UPS_STATUS_MAPPINGS,
    YELLOW,
    Board,
    Json,
    alert_annotations,
    bar_gauge,
    influx,
    query_variable,
    schedule_annotation,
    stat,
    state_timeline,
    table,
    thresholds,
    timeseries,
)

SITE = '"site" =~ /^$site$/'
SITE_DEVICE = '"site" =~ /^$site$/ AND "device" =~ /^$device$/'
BY_DEVICE = 'GROUP BY "site", "device"'
OVER_TIME = 'GROUP BY time($__interval), "site", "device"'
ALIAS = "$tag_site/$tag_device"
ON_BATTERY = r"/\bOB\b/"

SITE_VARIABLE = query_variable("site", "Site", 'SHOW TAG VALUES WITH KEY = "site"')

CHARGE_STEPS = thresholds((None, RED), (20, ORANGE), (50, YELLOW), (80, GREEN))
RUNTIME_STEPS = thresholds((None, RED), (600, ORANGE), (1800, YELLOW), (3600, GREEN))
COUNT_BAD_STEPS = thresholds((None, GREEN), (1, RED))
VSWR_STEPS = thresholds((None, GREEN), (1.5, ORANGE), (2.0, RED))


def device_variable(measurement: str) -> Json:
    return query_variable(
        "device",
        "Device",
        f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "device" WHERE {SITE}',
    )


def mean_over_time(measurement: str, field: str, where: str = SITE_DEVICE) -> str:
    return (
        f'SELECT mean("{field}") FROM "{measurement}" WHERE {where} AND $timeFilter '
        f"{OVER_TIME} fill(null)"
    )


def last_over_time(measurement: str, field: str, where: str = SITE_DEVICE) -> str:
    """For strings and booleans, which ``mean`` refuses; gaps keep the previous state."""
    return (
        f'SELECT last("{field}") FROM "{measurement}" WHERE {where} AND $timeFilter '
        f"{OVER_TIME} fill(previous)"
    )


def last_value(measurement: str, field: str, where: str = SITE_DEVICE) -> str:
    return f'SELECT last("{field}") FROM "{measurement}" WHERE {where} AND $timeFilter {BY_DEVICE}'


def latest_per_device(measurement: str, field: str, alias: str, where: str) -> str:
    """Subquery: each device's latest ``field`` as ``alias``, for counting and filtering."""
    return (
        f'SELECT last("{field}") AS "{alias}" FROM "{measurement}" '
        f"WHERE {where} AND $timeFilter {BY_DEVICE}"
    )


LATEST_STATUS = (
    'SELECT last("state") AS "state" FROM "device_status" '
    f'WHERE {SITE} GROUP BY "site", "kind", "device"'
)


def overview() -> Json:
    board = Board(
        uid="kordon-overview",
        title="Kordon / Operations overview",
        description="Every site at a glance: power source, outages, UPS autonomy, devices "
        "offline and alerts.",
        variables=[SITE_VARIABLE],
        annotations=alert_annotations(SITE),
    )
    board.add(
        stat(
            "UPS on battery",
            [
                influx(
                    f'SELECT count("status") FROM ({latest_per_device("ups", "ups.status", "status", SITE)}) '  # noqa: E501
                    f'WHERE "status" =~ {ON_BATTERY}'
                )
            ],
            description="UPS units whose latest ups.status has the OB flag: sites on battery.",
            steps=COUNT_BAD_STEPS,
            no_value="0",
        ),
        stat(
            "Shortest time to empty",
            [
                influx(
                    'SELECT min("runtime") FROM '
                    f"({latest_per_device('ups', 'battery.runtime', 'runtime', SITE)})"
                )
            ],
            "s",
            description="The lowest battery.runtime reported by any UPS: the next site to go "
            "dark if the grid does not return.",
            steps=RUNTIME_STEPS,
        ),
        stat(
            "Devices offline",
            [influx(f'SELECT count("state") FROM ({LATEST_STATUS}) WHERE "state" = \'offline\'')],
            description="Devices whose last availability message is offline (last will or "
            "clean shutdown).",
            steps=COUNT_BAD_STEPS,
            no_value="0",
        ),
        stat(
            "Alerts fired",
            [
                influx(
                    'SELECT count("summary") FROM "alerts" '
                    f"WHERE {SITE} AND \"state\" = 'firing' AND $timeFilter"
                )
            ],
            description="Alert notifications that fired in the time range.",
            steps=thresholds((None, GREEN), (1, ORANGE)),
            no_value="0",
        ),
    )
    board.row("Power")
    board.add(
        state_timeline(
            "UPS mains status",
            [influx(last_over_time("ups", "ups.status", SITE), alias=ALIAS)],
            UPS_STATUS_MAPPINGS,
            description="NUT ups.status of every UPS: on line, on battery, battery low.",
        ),
        state_timeline(
            "Power source of scanners and radio base stations",
            [
                influx(
                    'SELECT last("power.source") FROM "scanner", "radio" '
                    f"WHERE {SITE} AND $timeFilter {OVER_TIME} fill(previous)",
                    alias=f"$m {ALIAS}",
                )
            ],
            POWER_SOURCE_MAPPINGS,
        ),
        table(
            "Active outages: UPS on battery now",
            [
                influx(
                    'SELECT "status", "charge", "runtime" FROM ('
                    'SELECT last("ups.status") AS "status", last("battery.charge") AS "charge", '
                    'last("battery.runtime") AS "runtime" FROM "ups" '
                    f"WHERE {SITE} AND $timeFilter {BY_DEVICE}) "
                    f'WHERE "status" =~ {ON_BATTERY} {BY_DEVICE}',
                    fmt="table",
                )
            ],
            mappings=UPS_STATUS_MAPPINGS,
            width=24,
            height=6,
        ),
    )
    board.row("UPS autonomy")
    board.add(
        bar_gauge(
            "UPS battery charge",
            [influx(last_value("ups", "battery.charge", SITE), alias=ALIAS)],
            "percent",
            steps=CHARGE_STEPS,
            minimum=0,
            maximum=100,
        ),
        bar_gauge(
            "UPS time to empty",
            [influx(last_value("ups", "battery.runtime", SITE), alias=ALIAS)],
            "s",
            description="battery.runtime: the UPS's own estimate of the runtime left at the "
            "present load.",
            steps=RUNTIME_STEPS,
            minimum=0,
        ),
        timeseries(
            "UPS time to empty over time",
            [influx(mean_over_time("ups", "battery.runtime", SITE), alias=ALIAS)],
            "s",
            minimum=0,
            width=24,
        ),
    )
    board.row("Devices and alerts")
    board.add(
        table(
            "Offline devices",
            [
                influx(
                    f'SELECT "state" FROM ({LATEST_STATUS}) WHERE "state" = \'offline\' '
                    'GROUP BY "site", "kind", "device"',
                    fmt="table",
                )
            ],
            mappings=ONLINE_MAPPINGS,
            width=8,
        ),
        bar_gauge(
            "Alerts fired by name",
            [
                influx(
                    'SELECT count("summary") FROM "alerts" '
                    f"WHERE {SITE} AND \"state\" = 'firing' AND $timeFilter "
                    'GROUP BY "alertname"',
                    alias="$tag_alertname",
                )
            ],
            "short",
            steps=thresholds((None, ORANGE)),
            minimum=0,
            width=6,
        ),
        table(
            "Alert events",
            [
                influx(
                    'SELECT "alertname", "state", "severity", "site", "device", "summary" '
                    f'FROM "alerts" WHERE {SITE} AND $timeFilter ORDER BY time DESC LIMIT 200',
                    fmt="table",
                )
            ],
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "firing": {"color": RED, "index": 0, "text": "firing"},
                        "resolved": {"color": GREEN, "index": 1, "text": "resolved"},
                    },
                }
            ],
            width=10,
        ),
    )
    return board.json()


def ups_detail() -> Json:
    board = Board(
        uid="kordon-ups",
        title="Kordon / UPS detail",
        description="One or more UPS units in depth: charge, runtime, voltages, load, status.",
        variables=[SITE_VARIABLE, device_variable("ups")],
        annotations=alert_annotations(SITE),
    )
    board.add(
        stat(
            "Status",
            [influx(last_value("ups", "ups.status"), alias=ALIAS)],
            mappings=UPS_STATUS_MAPPINGS,
        ),
        stat(
            "Charge",
            [influx(last_value("ups", "battery.charge"), alias=ALIAS)],
            "percent",
            steps=CHARGE_STEPS,
        ),
        stat(
            "Time to empty",
            [influx(last_value("ups", "battery.runtime"), alias=ALIAS)],
            "s",
            steps=RUNTIME_STEPS,
        ),
        stat(
            "Load",
            [influx(last_value("ups", "ups.load"), alias=ALIAS)],
            "percent",
            steps=thresholds((None, GREEN), (80, ORANGE), (100, RED)),
        ),
    )
    board.add(
        state_timeline(
            "Status over time",
            [influx(last_over_time("ups", "ups.status"), alias=ALIAS)],
            UPS_STATUS_MAPPINGS,
            height=6,
        ),
        timeseries(
            "Battery charge",
            [influx(mean_over_time("ups", "battery.charge"), alias=ALIAS)],
            "percent",
            description="Shaded in purple: the site's scheduled cuts (outage schedule, written "
            "by the alerts role; docs/schedules.md). Stretch the range into the future to see "
            "the cuts ahead.",
            minimum=0,
            maximum=100,
        ),
        timeseries(
            "Runtime left (time to empty)",
            [influx(mean_over_time("ups", "battery.runtime"), alias=ALIAS)],
            "s",
            minimum=0,
        ),
        timeseries(
            "Input and output voltage",
            [
                influx(mean_over_time("ups", "input.voltage"), "A", f"{ALIAS} input"),
                influx(mean_over_time("ups", "output.voltage"), "B", f"{ALIAS} output"),
            ],
            "volt",
            description="Input falls to 0 V when the grid goes; output must stay.",
        ),
        timeseries(
            "Load",
            [influx(mean_over_time("ups", "ups.load"), alias=ALIAS)],
            "percent",
            minimum=0,
            steps=thresholds((None, GREEN), (80, ORANGE), (100, RED)),
            show_thresholds=True,
        ),
        timeseries(
            "Real power",
            [influx(mean_over_time("ups", "ups.realpower"), alias=ALIAS)],
            "watt",
            minimum=0,
        ),
        timeseries(
            "Battery voltage",
            [influx(mean_over_time("ups", "battery.voltage"), alias=ALIAS)],
            "volt",
        ),
        timeseries(
            "Input frequency",
            [influx(mean_over_time("ups", "input.frequency"), alias=ALIAS)],
            "hertz",
        ),
        timeseries(
            "Temperature",
            [influx(mean_over_time("ups", "ups.temperature"), alias=ALIAS)],
            "celsius",
        ),
        timeseries(
            "Battery health (learned)",
            [influx(last_over_time("battery_health", "health_pct"), alias=ALIAS)],
            "percent",
            description="Capacity as % of rated, learned by the alerts role from each "
            "discharge (a point per finished discharge; `kordon battery relearn` rewrites "
            "them from history). Under 80 %, ReplaceBattery fires.",
            minimum=0,
            maximum=110,
            steps=thresholds((None, RED), (80, GREEN)),
            show_thresholds=True,
            width=24,
        ),
        table(
            "Scheduled cuts ahead",
            [
                influx(
                    'SELECT "summary", "duration_s", "definite" FROM "outage_schedule" '
                    f"WHERE {SITE} AND \"status\" = 'planned' "
                    'AND time >= now() - 6h AND time <= now() + 48h GROUP BY "site", "group"',
                    fmt="table",
                )
            ],
            description="Planned cuts of the sites' queue groups from 6 h ago to 48 h ahead, "
            "as the alerts role read them from the schedule sources. A site whose schedule is "
            "unknown lists none: see the operations page for why (unknown is not 'no cuts').",
            width=24,
            height=6,
        ),
    )
    board.annotations.append(
        schedule_annotation(SITE, [board.panel_id("Battery charge")])
    )
    return board.json()


def scanners() -> Json:
    board = Board(
        uid="kordon-scanners",
        title="Kordon / Scanners",
        description="Cargo X-ray scanners: state, throughput, power.",
        variables=[SITE_VARIABLE, device_variable("scanner")],
        annotations=alert_annotations(SITE),
    )
    board.add(
        state_timeline(
            "Scanner state",
            [influx(last_over_time("scanner", "scanner.state"), alias=ALIAS)],
            SCANNER_STATE_MAPPINGS,
        ),
        state_timeline(
            "Power source",
            [influx(last_over_time("scanner", "power.source"), alias=ALIAS)],
            POWER_SOURCE_MAPPINGS,
            height=6,
        ),
        timeseries(
            "Scans per hour",
            [
                influx(
                    'SELECT non_negative_difference(max("scans.total")) FROM "scanner" '
                    f'WHERE {SITE_DEVICE} AND $timeFilter GROUP BY time(1h), "site", "device"',
                    alias=ALIAS,
                )
            ],
            "short",
            description="Scans completed in each hour, from the scans.total counter (a reset "
            "after a controller swap counts as zero, not as a negative).",
            bars=True,
            minimum=0,
        ),
        stat(
            "Scans in range",
            [
                influx(
                    'SELECT sum("scans") FROM (SELECT non_negative_difference(max("scans.total")) '
                    f'AS "scans" FROM "scanner" WHERE {SITE_DEVICE} AND $timeFilter '
                    f"{OVER_TIME}) {BY_DEVICE}",
                    alias=ALIAS,
                )
            ],
            "short",
            steps=thresholds((None, "blue")),
            width=12,
            height=8,
        ),
        timeseries(
            "Power draw",
            [influx(mean_over_time("scanner", "power.draw"), alias=ALIAS)],
            "watt",
            minimum=0,
        ),
        timeseries(
            "Cabinet temperature",
            [influx(mean_over_time("scanner", "cabinet.temperature"), alias=ALIAS)],
            "celsius",
            steps=thresholds((None, GREEN), (40, ORANGE), (50, RED)),
            show_thresholds=True,
        ),
        state_timeline(
            "X-ray ready",
            [influx(last_over_time("scanner", "xray.ready"), alias=ALIAS)],
            BOOL_READY_MAPPINGS,
            width=12,
        ),
        table(
            "Fault codes",
            [
                influx(
                    'SELECT "fault.code", "scanner.state", "power.source" FROM "scanner" '
                    f"WHERE {SITE_DEVICE} AND $timeFilter AND \"fault.code\" != '' "
                    f"{BY_DEVICE} ORDER BY time DESC LIMIT 100",
                    fmt="table",
                )
            ],
            mappings=SCANNER_STATE_MAPPINGS,
            width=12,
        ),
    )
    return board.json()


def radio_network() -> Json:
    board = Board(
        uid="kordon-radio",
        title="Kordon / Radio network",
        description="Radio base stations: DC plant, battery, transmitter, antenna, backhaul.",
        variables=[SITE_VARIABLE, device_variable("radio")],
        annotations=alert_annotations(SITE),
    )
    board.add(
        stat(
            "Backhaul down",
            [
                influx(
                    'SELECT count("up") FROM '
                    f"({latest_per_device('radio', 'backhaul.up', 'up', SITE_DEVICE)}) "
                    'WHERE "up" = false'
                )
            ],
            description="Base stations whose latest reading says the backhaul link is down: "
            "their terminals are cut off from the core network.",
            steps=COUNT_BAD_STEPS,
            no_value="0",
        ),
        stat(
            "On battery",
            [
                influx(
                    'SELECT count("source") FROM '
                    f"({latest_per_device('radio', 'power.source', 'source', SITE_DEVICE)}) "
                    "WHERE \"source\" != 'mains'"
                )
            ],
            steps=COUNT_BAD_STEPS,
            no_value="0",
        ),
        stat(
            "Lowest battery charge",
            [
                influx(
                    'SELECT min("charge") FROM '
                    f"({latest_per_device('radio', 'battery.charge', 'charge', SITE_DEVICE)})"
                )
            ],
            "percent",
            steps=CHARGE_STEPS,
        ),
        stat(
            "Terminals registered",
            [
                influx(
                    'SELECT sum("terminals") FROM '
                    f"({latest_per_device('radio', 'terminals.registered', 'terminals', SITE_DEVICE)})"  # noqa: E501
                )
            ],
            "short",
            steps=thresholds((None, "blue")),
        ),
    )
    board.add(
        state_timeline(
            "Backhaul",
            [influx(last_over_time("radio", "backhaul.up"), alias=ALIAS)],
            BOOL_UP_MAPPINGS,
            height=6,
        ),
        state_timeline(
            "Power source",
            [influx(last_over_time("radio", "power.source"), alias=ALIAS)],
            POWER_SOURCE_MAPPINGS,
            height=6,
        ),
        timeseries(
            "Supply voltage",
            [influx(mean_over_time("radio", "supply.voltage"), alias=ALIAS)],
            "volt",
            description="DC plant voltage: it sags as the batteries discharge.",
        ),
        timeseries(
            "Battery charge",
            [influx(mean_over_time("radio", "battery.charge"), alias=ALIAS)],
            "percent",
            minimum=0,
            maximum=100,
        ),
        timeseries(
            "TX power",
            [influx(mean_over_time("radio", "tx.power"), alias=ALIAS)],
            "watt",
            minimum=0,
        ),
        timeseries(
            "VSWR",
            [influx(mean_over_time("radio", "tx.vswr"), alias=ALIAS)],
            "none",
            description="Antenna standing-wave ratio: above 1.5 check the feeder, above 2 the "
            "transmitter protects itself by cutting power.",
            minimum=1,
            steps=VSWR_STEPS,
            show_thresholds=True,
        ),
        timeseries(
            "RSSI",
            [influx(mean_over_time("radio", "rx.rssi"), alias=ALIAS)],
            "dBm",
        ),
        timeseries(
            "PA temperature",
            [influx(mean_over_time("radio", "pa.temperature"), alias=ALIAS)],
            "celsius",
        ),
        timeseries(
            "Terminals registered",
            [influx(mean_over_time("radio", "terminals.registered"), alias=ALIAS)],
            "short",
            minimum=0,
            width=24,
        ),
    )
    return board.json()


DASHBOARDS = {
    "overview.json": overview,
    "ups.json": ups_detail,
    "scanners.json": scanners,
    "radio.json": radio_network,
}
