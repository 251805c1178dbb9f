"""Small builders for Grafana dashboard JSON (schema version 39, Grafana 10.4 / 11).

Why builders rather than hand-written JSON: four dashboards share the same data source, site
filter, annotations, colours for power states and layout rules. Written once here, a change
(say, a new UPS status flag colour) reaches every panel that shows it, and the generated JSON
stays diff-able because keys and ids come out in a stable order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboards import DATASOURCE_UID

Json = dict[str, Any]

SCHEMA_VERSION = 39
GRID_WIDTH = 24
DATASOURCE: Json = {"type": "influxdb", "uid": DATASOURCE_UID}
GRAFANA_DATASOURCE: Json = {"type": "grafana", "uid": "-- Grafana --"}

# Grafana's palette names, so the dashboards follow the light and dark themes.
GREEN, YELLOW, ORANGE, RED, BLUE, PURPLE, GREY = (
    "green",
    "yellow",
    "orange",
    "red",
    "blue",
    "purple",
    "text",
)


def influx(query: str, ref: str = "A", alias: str = "", fmt: str = "time_series") -> Json:
    """A raw InfluxQL target; raw because the contract's dotted field names need quoting."""
    target: Json = {
        "datasource": dict(DATASOURCE),
        "query": query,
        "rawQuery": True,
        "refId": ref,
        "resultFormat": fmt,
    }
    if alias:
        target["alias"] = alias
    return target


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def value_map(values: dict[str, tuple[str, str]]) -> Json:
    """Exact-value mapping: raw value -> (display text, colour)."""
    options = {
        raw: {"color": color, "index": index, "text": text}
        for index, (raw, (text, color)) in enumerate(values.items())
    }
    return {"type": "value", "options": options}


def regex_maps(patterns: list[tuple[str, str, str]]) -> list[Json]:
    """Regex mappings in priority order: (pattern, text, colour); the first match wins."""
    return [
        {
            "type": "regex",
            "options": {
                "pattern": pattern,
                "result": {"color": color, "index": index, "text": text},
            },
        }
        for index, (pattern, text, color) in enumerate(patterns)
    ]


# NUT ups.status is a set of flags; the most serious one decides the colour.
UPS_STATUS_MAPPINGS = regex_maps(
    [
        (r".*\bOFF\b.*", "output off", RED),
        (r".*\bLB\b.*", "battery low", RED),
        (r".*\bOVER\b.*", "overload", RED),
        (r".*\bOB\b.*", "on battery", ORANGE),
        (r".*\bBYPASS\b.*", "bypass", YELLOW),
        (r".*\bRB\b.*", "replace battery", YELLOW),
        (r".*\bOL\b.*", "on line", GREEN),
    ]
)
POWER_SOURCE_MAPPINGS = [
    value_map(
        {
            "mains": ("mains", GREEN),
            "generator": ("generator", YELLOW),
            "ups": ("UPS", ORANGE),
            "battery": ("battery", ORANGE),
            "none": ("no power", RED),
        }
    )
]
SCANNER_STATE_MAPPINGS = [
    value_map(
        {
            "scanning": ("scanning", BLUE),
            "ready": ("ready", GREEN),
            "warmup": ("warm-up", YELLOW),
            "standby": ("standby", PURPLE),
            "off": ("off", GREY),
            "fault": ("fault", RED),
        }
    )
]
BOOL_UP_MAPPINGS = [value_map({"true": ("up", GREEN), "false": ("down", RED)})]
BOOL_READY_MAPPINGS = [value_map({"true": ("ready", GREEN), "false": ("not ready", GREY)})]
ONLINE_MAPPINGS = [value_map({"online": ("online", GREEN), "offline": ("offline", RED)})]


def _field_config(
    unit: str = "",
    *,
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    steps: Json | None = None,
    mappings: list[Json] | None = None,
    color_mode: str = "palette-classic",
    custom: Json | None = None,
) -> Json:
    defaults: Json = {"color": {"mode": color_mode}, "mappings": mappings or []}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    defaults["thresholds"] = steps or thresholds((None, GREEN))
    if custom:
        defaults["custom"] = custom
    return {"defaults": defaults, "overrides": []}


@dataclass
class Panel:
    """One panel before layout: the builder assigns ``id`` and ``gridPos``."""

    body: Json
    width: int
    height: int


def timeseries(
    title: str,
    targets: list[Json],
    unit: str = "",
    *,
    description: str = "",
    minimum: float | None = None,
    maximum: float | None = None,
    steps: Json | None = None,
    bars: bool = False,
    show_thresholds: bool = False,
    width: int = 12,
    height: int = 8,
) -> Panel:
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 60 if bars else 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "thresholdsStyle": {"mode": "line+area" if show_thresholds else "off"},
    }
    return Panel(
        {
            "type": "timeseries",
            "title": title,
            "description": description,
            "datasource": dict(DATASOURCE),
            "targets": targets,
            "fieldConfig": _field_config(
                unit, minimum=minimum, maximum=maximum, steps=steps, custom=custom
            ),
            "options": {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "none"},
            },
        },
        width,
        height,
    )


def state_timeline(
    title: str,
    targets: list[Json],
    mappings: list[Json],
    *,
    description: str = "",
    width: int = 24,
    height: int = 8,
) -> Panel:
    return Panel(
        {
            "type": "state-timeline",
            "title": title,
            "description": description,
            "datasource": dict(DATASOURCE),
            "targets": targets,
            "fieldConfig": _field_config(
                mappings=mappings,
                color_mode="thresholds",
                custom={"fillOpacity": 80, "lineWidth": 0},
            ),
            "options": {
                "alignValue": "left",
                "mergeValues": True,
                "rowHeight": 0.9,
                "showValue": "auto",
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                "tooltip": {"mode": "single", "sort": "none"},
            },
        },
        width,
        height,
    )


def stat(
    title: str,
    targets: list[Json],
    unit: str = "",
    *,
    description: str = "",
    steps: Json | None = None,
    mappings: list[Json] | None = None,
    no_value: str = "",
    decimals: int | None = None,
    width: int = 6,
    height: int = 4,
) -> Panel:
    config = _field_config(
        unit, decimals=decimals, steps=steps, mappings=mappings, color_mode="thresholds"
    )
    if no_value:
        config["defaults"]["noValue"] = no_value
    return Panel(
        {
            "type": "stat",
            "title": title,
            "description": description,
            "datasource": dict(DATASOURCE),
            "targets": targets,
            "fieldConfig": config,
            "options": {
                "colorMode": "background",
                "graphMode": "none",
                "justifyMode": "auto",
                "orientation": "auto",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/", "values": False},
                "textMode": "auto",
            },
        },
        width,
        height,
    )


def bar_gauge(
    title: str,
    targets: list[Json],
    unit: str,
    *,
    description: str = "",
    steps: Json | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    width: int = 12,
    height: int = 8,
) -> Panel:
    return Panel(
        {
            "type": "bargauge",
            "title": title,
            "description": description,
            "datasource": dict(DATASOURCE),
            "targets": targets,
            "fieldConfig": _field_config(
                unit, minimum=minimum, maximum=maximum, steps=steps, color_mode="thresholds"
            ),
            "options": {
                "displayMode": "gradient",
                "orientation": "horizontal",
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "showUnfilled": True,
            },
        },
        width,
        height,
    )


def table(
    title: str,
    targets: list[Json],
    *,
    description: str = "",
    mappings: list[Json] | None = None,
    width: int = 12,
    height: int = 8,
) -> Panel:
    return Panel(
        {
            "type": "table",
            "title": title,
            "description": description,
            "datasource": dict(DATASOURCE),
            "targets": targets,
            "fieldConfig": _field_config(
                mappings=mappings,
                color_mode="thresholds",
                custom={"cellOptions": {"type": "color-text"}, "filterable": True},
            ),
            "options": {"showHeader": True, "cellHeight": "sm"},
        },
        width,
        height,
    )


def query_variable(name: str, label: str, query: str, *, include_all: bool = True) -> Json:
    """A multi-value variable from ``SHOW TAG VALUES``; "All" expands to every value."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "query": query,
        "definition": query,
        "refresh": 2,  # on time range change: new devices appear without a reload
        "multi": True,
        "includeAll": include_all,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "skipUrlSync": False,
    }


def alert_annotations(where: str) -> list[Json]:
    """Alert events (measurement ``alerts``) as annotations: firing in red, resolved in green."""

    def one(name: str, state: str, colour: str) -> Json:
        query = (
            'SELECT "summary", "description", "alertname", "device", "severity" '
            f'FROM "alerts" WHERE {where} AND "state" = \'{state}\' AND $timeFilter'
        )
        return {
            "name": name,
            "datasource": dict(DATASOURCE),
            "enable": True,
            "hide": False,
            "iconColor": colour,
            "query": query,
            "target": {"query": query, "rawQuery": True, "refId": "Anno"},
            "titleColumn": "alertname",
            "textColumn": "summary",
            "tagsColumn": "alertname,device,severity",
        }

    builtin: Json = {
        "name": "Annotations & Alerts",
        "builtIn": 1,
        "datasource": dict(GRAFANA_DATASOURCE),
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "type": "dashboard",
    }
    return [
        builtin,
        one("Alerts firing", "firing", "red"),
        one("Alerts resolved", "resolved", "green"),
    ]


def schedule_annotation(where: str, panel_ids: list[int]) -> Json:
    """Planned cuts (measurement ``outage_schedule``, written by the alerts role) as regions
    from each cut's start to its end (``time_end``, epoch ms), on the given panels only.

    A cut that began up to 12 h before the range still shades its part of it."""
    query = (
        'SELECT "summary", "time_end", "group" FROM "outage_schedule" '
        f"WHERE {where} AND \"status\" = 'planned' "
        "AND time >= ${__from}ms - 12h AND time <= ${__to}ms"
    )
    return {
        "name": "Scheduled cuts",
        "datasource": dict(DATASOURCE),
        "enable": True,
        "hide": False,
        "iconColor": PURPLE,
        "query": query,
        "target": {"query": query, "rawQuery": True, "refId": "Anno"},
        "titleColumn": "group",
        "textColumn": "summary",
        "tagsColumn": "group",
        "timeEndColumn": "time_end",
        "filter": {"exclude": False, "ids": panel_ids},
    }


@dataclass
class Board:
    """A dashboard under construction: panels flow left to right, rows start a new line."""

    uid: str
    title: str
    description: str
    variables: list[Json]
    annotations: list[Json]
    tags: list[str] = field(default_factory=lambda: ["kordon"])
    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_height: int = 0

    def _newline(self) -> None:
        self._y += self._row_height
        self._x = 0
        self._row_height = 0

    def row(self, title: str) -> Board:
        if self._x:
            self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": len(self.panels) + 1,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
            }
        )
        self._y += 1
        return self

    def add(self, *panels: Panel) -> Board:
        for panel in panels:
            if self._x + panel.width > GRID_WIDTH:
                self._newline()
            body = {"id": len(self.panels) + 1, **panel.body}
            body["gridPos"] = {"h": panel.height, "w": panel.width, "x": self._x, "y": self._y}
            self.panels.append(body)
            self._x += panel.width
            self._row_height = max(self._row_height, panel.height)
        return self

    def panel_id(self, title: str) -> int:
        return next(int(p["id"]) for p in self.panels if p.get("title") == title)

    def json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,  # shared crosshair: outages line up across panels
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "links": [
                {
                    "title": "Kordon",
                    "type": "dashboards",
                    "tags": ["kordon"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "icon": "external link",
                    "targetBlank": False,
                    "tooltip": "",
                    "url": "",
                }
            ],
            "annotations": {"list": self.annotations},
            "templating": {"list": self.variables},
            "panels": self.panels,
        }
