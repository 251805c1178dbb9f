"""Sites, devices, device detail and telemetry history."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import VIEWER
from api.problems import Problem, not_found
from api.routes import NOT_FOUND, PROBLEM_RESPONSES, UNAVAILABLE, context
from api.schemas import (
    DEVICE_ID,
    NAME,
    Clock,
    Device,
    DeviceDetail,
    DeviceStateName,
    Site,
    Telemetry,
)
from api.state import iso
from api.telemetry import AGGREGATIONS, build_query, run_query
from kordon.model.kinds import DeviceKind
from kordon.model.metrics import METRICS
from kordon.storage.telemetry import StoreError

router = APIRouter(prefix="/api/v1", dependencies=[Depends(VIEWER)], responses=PROBLEM_RESPONSES)

DevicePath = Annotated[
    str,
    Path(
        pattern=DEVICE_ID,
        description="site:device, or a device name that only one site uses",
        examples=["chop:ups-scan-1"],
    ),
]


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _resolve(request: Request, ident: str) -> str:
    matches = context(request).states.resolve(ident)
    if not matches:
        raise not_found(
            "device",
            f"no device {ident!r} has sent data or is in the fleet file; GET /api/v1/devices "
            "lists them",
        )
    if len(matches) > 1:
        raise Problem(
            409,
            "ambiguous-device",
            "Ambiguous device name",
            f"{len(matches)} sites have a device {ident!r}; name it as one of "
            f"{', '.join(matches[:10])}",
            candidates=matches[:50],
        )
    return matches[0]


def _alert_counts(request: Request) -> dict[str, dict[str, int]]:
    backend = context(request).alerts
    if backend is None:
        return {}
    try:
        return backend.counts_by_site()  # type: ignore[no-any-return]
    except Exception:  # the board must show power state even if the alert store is down
        return {}


@router.get("/sites", response_model=list[Site], summary="Sites and how they are powered")
def list_sites(request: Request) -> Response:
    counts = _alert_counts(request)
    sites = context(request).states.sites()
    for site in sites:
        site["alerts"] = counts.get(site["site"], {"firing": 0, "critical": 0})
    return _json(sites)


@router.get(
    "/clock",
    response_model=Clock,
    summary="The stream clocks heard: which sites follow a scenario's time, at what speed",
)
def get_clock(request: Request) -> Response:
    clocks = context(request).states.clocks
    streams = [
        {
            "stream": s["stream"],
            "state": s["state"],
            "sites": s["sites"],
            "owns": s["owns"],
            "speed": s["speed"],
            "sim": iso(s["sim"]),
            "heard_ago": round(s["heard_ago"], 3),
        }
        for s in clocks.streams()
    ]
    return _json({"wall": iso(clocks.now()), "streams": streams})


@router.get("/devices", response_model=list[Device], summary="Devices and their current state")
async def list_devices(
    request: Request,
    site: Annotated[str | None, Query(pattern=NAME)] = None,
    kind: DeviceKind | None = None,
    state: DeviceStateName | None = None,
) -> Response:
    states = context(request).states
    if site is None and kind is None and state is None:
        return Response(states.encoded_views(), media_type="application/json")
    views = states.views()
    kind_value = kind.value if kind is not None else None
    return _json(
        [
            v
            for v in views
            if (site is None or v["site"] == site)
            and (kind_value is None or v["kind"] == kind_value)
            and (state is None or v["state"] == state)
        ]
    )


@router.get(
    "/devices/{device}",
    response_model=DeviceDetail,
    responses={**NOT_FOUND, 409: NOT_FOUND[404] | {"description": "ambiguous device name"}},
    summary="A device: latest metrics, availability, power, time to empty, active alerts",
)
def get_device(request: Request, device: DevicePath) -> Response:
    ctx = context(request)
    device_id = _resolve(request, device)
    view = ctx.states.view(device_id)
    detail = ctx.states.detail(device_id)
    if view is None or detail is None:
        raise not_found("device", f"device {device_id!r} disappeared; reload the list")
    state, latest = detail
    specs = METRICS[state.kind]
    metrics = {
        name: {**entry, "unit": specs[name].unit if name in specs else ""}
        for name, entry in latest.items()
    }
    alerts: list[dict[str, Any]] = []
    if ctx.alerts is not None:
        try:
            alerts = ctx.alerts.device_alerts(state.site, state.device)
        except Exception:
            alerts = []
    return _json({**view, "metrics": metrics, "alerts": alerts})


@router.get(
    "/devices/{device}/telemetry",
    response_model=Telemetry,
    responses={**NOT_FOUND, **UNAVAILABLE},
    summary="History of one or more metrics, downsampled with GROUP BY time()",
)
def get_telemetry(
    request: Request,
    device: DevicePath,
    metric: Annotated[
        list[str],
        Query(description="metric name; repeat for several", max_length=64, min_length=1),
    ],
    start: Annotated[
        str | None,
        Query(max_length=40, description="RFC 3339, epoch seconds or now-6h; default end-6h"),
    ] = None,
    end: Annotated[str | None, Query(max_length=40, description="default now")] = None,
    step: Annotated[
        str | None, Query(max_length=16, description="e.g. 60s; default about 360 points")
    ] = None,
    agg: Annotated[str, Query(description=f"one of {', '.join(AGGREGATIONS)}")] = "mean",
) -> Response:
    ctx = context(request)
    device_id = _resolve(request, device)
    found = ctx.states.detail(device_id)
    if found is None:
        raise not_found("device", f"device {device_id!r} disappeared; reload the list")
    state, _ = found
    cfg = ctx.settings.api
    query = build_query(
        kind=state.kind,
        site=state.site,
        device=state.device,
        metrics=metric,
        start=start,
        end=end,
        step=step,
        agg=agg,
        now=ctx.states.clocks.now(state.site),  # "now" is the site's time (a stream's)
        max_points=cfg.max_points,
        max_range=cfg.max_range,
    )
    try:
        points = run_query(ctx.influx.get(), query)
    except StoreError as exc:
        raise Problem(
            503,
            "store-unavailable",
            "History store unavailable",
            f"InfluxDB did not answer the history query ({exc}); try again shortly",
        ) from None
    specs = METRICS[state.kind]
    return _json(
        {
            "device": device_id,
            "kind": state.kind.value,
            "start": iso(query.start),
            "end": iso(query.end),
            "step": query.step,
            "series": [
                {
                    "metric": name,
                    "unit": specs[name].unit if name in specs else "",
                    "aggregation": query.aggregation_for(name),
                    "points": points[name],
                }
                for name in query.metrics
            ],
        }
    )
