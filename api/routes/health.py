"""Liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import socket
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from api.auth import VIEWER
from api.auth import Principal as AuthPrincipal
from api.problems import Problem
from api.routes import PROBLEM_RESPONSES, UNAVAILABLE, context
from api.schemas import Health, Principal, Readiness
from kordon import metrics

router = APIRouter()


@router.get("/healthz", response_model=Health, summary="Alive (no token needed)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _broker_reachable(request: Request) -> tuple[bool, str]:
    ctx = context(request)
    if ctx.live is not None:
        ok = ctx.live.connected.is_set()
        return ok, "live subscription connected" if ok else "live subscription disconnected"
    mqtt = ctx.settings.mqtt
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=1.0):
            return True, f"{mqtt.host}:{mqtt.port} accepts connections"
    except OSError as exc:
        return False, f"{mqtt.host}:{mqtt.port}: {exc.strerror or exc}"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={**PROBLEM_RESPONSES, **UNAVAILABLE},
    dependencies=[Depends(VIEWER)],
    summary="Broker and stores reachable",
)
def readyz(request: Request) -> JSONResponse:
    ctx = context(request)
    checks: dict[str, Any] = {}
    broker_ok, broker_detail = _broker_reachable(request)
    checks["broker"] = {"ok": broker_ok, "detail": broker_detail}
    influx_ok = ctx.influx.get().ping()
    checks["influxdb"] = {
        "ok": influx_ok,
        "detail": "answers /ping" if influx_ok else f"no answer from {ctx.settings.influx.url}",
    }
    if ctx.alerts is not None:
        alerts_ok, detail = ctx.alerts.check()
        checks["alert_store"] = {"ok": alerts_ok, "detail": detail}
    else:
        checks["alert_store"] = {"ok": False, "detail": "not available in this build"}
    ready = broker_ok and influx_ok and checks["alert_store"]["ok"]
    if not ready:
        failing = ", ".join(name for name, check in checks.items() if not check["ok"])
        raise Problem(
            503, "not-ready", "Not ready", f"unreachable: {failing}; see checks", checks=checks
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    dependencies=[Depends(VIEWER)],
    responses={
        **PROBLEM_RESPONSES,
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
    },
    response_class=Response,
    summary="Prometheus text format: this process's roles' counters",
)
def prometheus_metrics(request: Request) -> Response:
    if not context(request).settings.api.metrics:
        raise Problem(404, "not-found", "Metrics off", "api.metrics is false in the config")
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get(
    "/openapi.json",
    dependencies=[Depends(VIEWER)],
    include_in_schema=False,
)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get(
    "/api/v1/whoami",
    response_model=Principal,
    responses=PROBLEM_RESPONSES,
    summary="The token's holder and role (the page shows only what the role may do)",
)
async def whoami(principal: Annotated[AuthPrincipal, Depends(VIEWER)]) -> dict[str, str]:
    return {"name": principal.name, "role": principal.role.name.lower()}
