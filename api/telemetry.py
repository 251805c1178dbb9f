"""History queries: every parameter checked here, before any store sees it.

This module builds no query text. It turns a request into a
:class:`~kordon.storage.telemetry.HistoryRequest` of checked pieces, and the configured store
(InfluxDB or the embedded SQLite store) asks its own question from that: metric names must be
known metrics of the device's kind or match the collector's pattern for unknown ones, times
and steps are parsed into integers within limits, the aggregation is one of four words (words
and flags always take ``last``), and site and device come from the API's own device index.
The stores quote every identifier and literal anyway. A store that refuses the question
(``StoreRejected``) answers 422; one that is unavailable is the route's 503.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.problems import Problem, invalid_parameter
from kordon.durations import parse_duration
from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS, SEQ_FIELD, MetricType
from kordon.model.payload import UNKNOWN_METRIC_NAME
from kordon.storage.telemetry import HistoryRequest, StoreRejected, TelemetryStore

AGGREGATIONS = ("mean", "min", "max", "last")
MAX_METRICS = 8
_TARGET_POINTS = 360
_NICE_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)
_NUMERIC = (MetricType.FLOAT, MetricType.INT)
_MIN_TS = 946_684_800.0  # 2000-01-01, as the collector's lower bound
_MAX_TS = 4_102_444_800.0  # 2100-01-01


def parse_time(name: str, text: str, now: float) -> float:
    """RFC 3339, epoch seconds, ``now``, or ``now-6h`` / ``-6h`` relative to now."""
    value = text.strip()
    relative = value.removeprefix("now")
    if value == "now":
        result = now
    elif relative.startswith("-") and (value.startswith("now") or value.startswith("-")):
        try:
            result = now - parse_duration(relative[1:])
        except ValueError as exc:
            raise invalid_parameter(name, str(exc), text) from None
    else:
        try:
            result = float(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise invalid_parameter(
                    name,
                    "not a time; use RFC 3339 (2026-11-28T10:00:00Z), epoch seconds, 'now' "
                    "or a relative time such as 'now-6h'",
                    text,
                ) from None
            if moment.tzinfo is None:
                raise invalid_parameter(
                    name, "give a UTC offset, e.g. a trailing Z", text
                ) from None
            result = moment.timestamp()
    if not math.isfinite(result) or not _MIN_TS <= result <= _MAX_TS:
        raise invalid_parameter(name, "must lie between 2000 and 2100", text)
    return result


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    kind: DeviceKind
    site: str
    device: str
    metrics: tuple[str, ...]
    start: float
    end: float
    step: int
    agg: str

    def aggregation_for(self, metric: str) -> str:
        spec = METRICS[self.kind].get(metric)
        if spec is not None and spec.type not in _NUMERIC and self.agg != "last":
            return "last"  # words and flags have no mean: show the state the step ended in
        return self.agg

    def request(self) -> HistoryRequest:
        return HistoryRequest(
            measurement=self.kind.value,
            site=self.site,
            device=self.device,
            metrics={metric: self.aggregation_for(metric) for metric in self.metrics},
            start_ns=int(self.start * 1e9),
            end_ns=int(self.end * 1e9),
            step_s=self.step,
        )


def check_metric(kind: DeviceKind, name: str) -> str:
    if name in METRICS[kind] or name == SEQ_FIELD:
        return name
    if UNKNOWN_METRIC_NAME.match(name):
        return name
    known = ", ".join(sorted(METRICS[kind]))
    raise invalid_parameter(
        "metric",
        f"{name[:80]!r} is not a metric name; a {kind.value} has {known} (other names must "
        f"match {UNKNOWN_METRIC_NAME.pattern})",
        name,
    )


def nice_step(span: float) -> int:
    wanted = span / _TARGET_POINTS
    for step in _NICE_STEPS:
        if step >= wanted:
            return step
    return math.ceil(wanted / 86400) * 86400


def build_query(
    *,
    kind: DeviceKind,
    site: str,
    device: str,
    metrics: list[str],
    start: str | None,
    end: str | None,
    step: str | None,
    agg: str,
    now: float,
    max_points: int,
    max_range: float,
) -> HistoryQuery:
    if not metrics:
        raise invalid_parameter("metric", "name at least one metric, e.g. metric=battery.charge")
    if len(metrics) > MAX_METRICS:
        raise invalid_parameter("metric", f"at most {MAX_METRICS} metrics per query")
    names = tuple(dict.fromkeys(check_metric(kind, m) for m in metrics))
    if agg not in AGGREGATIONS:
        raise invalid_parameter("agg", f"must be one of {', '.join(AGGREGATIONS)}", agg)
    end_ts = parse_time("end", end, now) if end else now
    start_ts = parse_time("start", start, now) if start else end_ts - 6 * 3600
    if start_ts >= end_ts:
        raise invalid_parameter("start", "must be before end")
    span = end_ts - start_ts
    if span > max_range:
        raise invalid_parameter(
            "start",
            f"the range is longer than the limit of {max_range / 86400:g} days; "
            "ask for a shorter one",
        )
    if step:
        try:
            seconds = parse_duration(step)
        except ValueError as exc:
            raise invalid_parameter("step", str(exc), step) from None
        if seconds < 1 or seconds != int(seconds):
            raise invalid_parameter("step", "must be a whole number of seconds, at least 1s", step)
        step_s = int(seconds)
        if span / step_s > max_points:
            raise invalid_parameter(
                "step",
                f"{step} over this range gives {math.ceil(span / step_s)} points, more than "
                f"{max_points}; use step={nice_step(span * _TARGET_POINTS / max_points)}s or "
                "more, or a shorter range",
                step,
            )
    else:
        step_s = nice_step(span)
    return HistoryQuery(kind, site, device, names, start_ts, end_ts, step_s, agg)


def run_query(store: TelemetryStore, query: HistoryQuery) -> dict[str, list[list[Any]]]:
    """metric -> [[epoch ms, value], ...] in time order."""
    try:
        return store.history(query.request())
    except StoreRejected as exc:
        raise Problem(
            422,
            "query-rejected",
            "The store refused the query",
            f"The telemetry store refused the history query: {exc.message}; a metric that "
            "holds text needs agg=last",
        ) from None
