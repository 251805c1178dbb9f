"""Alerts (with acknowledgement) and silences, read and written through the alert store."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth import OPERATOR, VIEWER, Principal
from api.problems import Problem, not_found
from api.routes import NOT_FOUND, PROBLEM_RESPONSES, UNAVAILABLE, context
from api.schemas import NAME, Ack, AckRequest, Alert, Silence, SilenceRequest

router = APIRouter(prefix="/api/v1", responses={**PROBLEM_RESPONSES, **UNAVAILABLE})

Fingerprint = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{8,64}$", description="alert fingerprint")]
SilenceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="silence id")]


def _backend(request: Request) -> Any:
    backend = context(request).alerts
    if backend is None:
        raise Problem(
            503,
            "alert-store-unavailable",
            "Alert store unavailable",
            "the alert store (alerts.sqlite under data_dir) could not be opened; the server "
            "log says why. Alerts, acknowledgements and silences need it",
        )
    return backend


@router.get(
    "/alerts",
    response_model=list[Alert],
    dependencies=[Depends(VIEWER)],
    summary="Alerts, most severe and newest first",
)
def list_alerts(
    request: Request,
    state: Literal["active", "firing", "pending", "resolved", "all"] = "active",
    site: Annotated[str | None, Query(pattern=NAME)] = None,
    severity: Literal["critical", "warning", "info"] | None = None,
    alertname: Annotated[str | None, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return _backend(request).list_alerts(  # type: ignore[no-any-return]
        state=state, site=site, severity=severity, alertname=alertname, limit=limit
    )


@router.post(
    "/alerts/{fingerprint}/ack",
    response_model=Ack,
    responses=NOT_FOUND,
    summary="Acknowledge an alert: someone is on it",
)
def ack_alert(
    request: Request,
    fingerprint: Fingerprint,
    principal: Annotated[Principal, Depends(OPERATOR)],
    body: AckRequest | None = None,
) -> dict[str, Any]:
    ack = _backend(request).ack(fingerprint, principal.name, (body or AckRequest()).comment)
    if ack is None:
        raise not_found(
            "alert", f"no alert with fingerprint {fingerprint!r}; GET /api/v1/alerts lists them"
        )
    return ack  # type: ignore[no-any-return]


@router.get("/silences", response_model=list[Silence], dependencies=[Depends(VIEWER)])
def list_silences(
    request: Request,
    state: Literal["active", "pending", "expired", "all"] = "active",
) -> list[dict[str, Any]]:
    return _backend(request).list_silences(state)  # type: ignore[no-any-return]


@router.post(
    "/silences",
    response_model=Silence,
    status_code=201,
    summary="Silence notifications of matching alerts for a while",
)
def create_silence(
    request: Request,
    body: SilenceRequest,
    principal: Annotated[Principal, Depends(OPERATOR)],
) -> dict[str, Any]:
    ctx = context(request)
    return _backend(request).create_silence(  # type: ignore[no-any-return]
        body, principal.name, ctx.clock.now()
    )


@router.delete(
    "/silences/{silence_id}",
    response_model=Silence,
    responses=NOT_FOUND,
    dependencies=[Depends(OPERATOR)],
    summary="Expire a silence now",
)
def delete_silence(request: Request, silence_id: SilenceId) -> dict[str, Any]:
    silence = _backend(request).expire_silence(silence_id, context(request).clock.now())
    if silence is None:
        raise not_found("silence", f"no silence {silence_id!r}; GET /api/v1/silences?state=all")
    return silence  # type: ignore[no-any-return]
