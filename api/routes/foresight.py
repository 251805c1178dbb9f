"""Outage-schedule foresight per site: the next scheduled cut and each UPS's verdict."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from api.auth import VIEWER
from api.foresight import Foresights
from api.problems import not_found
from api.routes import NOT_FOUND, PROBLEM_RESPONSES, context
from api.schemas import NAME, SiteForesight

router = APIRouter(prefix="/api/v1", dependencies=[Depends(VIEWER)], responses=PROBLEM_RESPONSES)


def _foresights(request: Request) -> Foresights:
    return context(request).extra["foresight"]  # type: ignore[no-any-return]


@router.get(
    "/foresight",
    response_model=list[SiteForesight],
    summary="Every site's outage schedule and its UPS units' verdicts on the cuts ahead",
)
def all_sites(request: Request) -> list[dict[str, Any]]:
    return _foresights(request).sites(context(request).clock.now())


@router.get(
    "/sites/{site}/foresight",
    response_model=SiteForesight,
    responses=NOT_FOUND,
    summary="One site's next scheduled cut and whether each UPS lasts through it",
)
def one_site(
    request: Request, site: Annotated[str, Path(pattern=NAME, examples=["solotvyno"])]
) -> dict[str, Any]:
    found = _foresights(request).site(site, context(request).clock.now())
    if found is None:
        raise not_found(
            "site",
            f"no site {site!r} in the fleet file or the forecast; GET /api/v1/foresight "
            "lists them",
        )
    return found
