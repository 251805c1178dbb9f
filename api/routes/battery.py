"""Learned battery health per UPS: health, runtime at today's load, the discharges behind it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from api.auth import VIEWER
from api.battery import view
from api.problems import not_found
from api.routes import NOT_FOUND, PROBLEM_RESPONSES, context
from api.schemas import DEVICE_ID, BatteryHealth

router = APIRouter(prefix="/api/v1", dependencies=[Depends(VIEWER)], responses=PROBLEM_RESPONSES)


def _views(request: Request) -> list[dict[str, Any]]:
    ctx = context(request)
    models = ctx.extra.get("battery")
    if models is None:
        return []
    out = []
    for stored in sorted(models.all(), key=lambda m: (m.site, m.device)):
        ident = f"{stored.site}:{stored.device}"
        found = ctx.states.detail(ident)
        values = found[0].values if found is not None else {}
        out.append(view(stored, values, ident))
    return out


@router.get(
    "/batteries",
    response_model=list[BatteryHealth],
    summary="Learned battery health of every UPS that has discharged",
)
def batteries(request: Request) -> list[dict[str, Any]]:
    return _views(request)


@router.get(
    "/batteries/{device_id}",
    response_model=BatteryHealth,
    responses=NOT_FOUND,
    summary="One UPS's learned battery, with the discharges behind it",
)
def battery(
    request: Request,
    device_id: Annotated[str, Path(pattern=DEVICE_ID, examples=["chop:ups-it"])],
) -> dict[str, Any]:
    for found in _views(request):
        if device_id in (found["id"], found["device"]):
            return found
    raise not_found(
        "battery",
        f"no learned battery for {device_id!r}: it has not discharged since Kordon watches it "
        "(GET /api/v1/batteries lists those that have)",
    )
