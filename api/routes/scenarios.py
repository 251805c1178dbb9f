"""The scenario library and scenario runs (operators start and stop them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from api.auth import OPERATOR, VIEWER, Principal
from api.problems import Problem, invalid_parameter, not_found
from api.routes import CONFLICT, NOT_FOUND, PROBLEM_RESPONSES, context
from api.scenarios import TooManyRuns
from api.schemas import NAME, RunRequest, Scenario, ScenarioRun

router = APIRouter(prefix="/api/v1/scenarios", responses=PROBLEM_RESPONSES)

RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="run id")]


@router.get("", response_model=list[Scenario], dependencies=[Depends(VIEWER)])
def list_scenarios(request: Request) -> list[dict[str, Any]]:
    return [info.public() for info in context(request).scenarios.library().values()]


@router.get("/runs", response_model=list[ScenarioRun], dependencies=[Depends(VIEWER)])
def list_runs(request: Request) -> list[dict[str, Any]]:
    return [run.public() for run in context(request).scenarios.runs()]


@router.get(
    "/runs/{run_id}",
    response_model=ScenarioRun,
    responses=NOT_FOUND,
    dependencies=[Depends(VIEWER)],
    summary="A run with the last lines of its output (the live view)",
)
def get_run(request: Request, run_id: RunId) -> dict[str, Any]:
    run = context(request).scenarios.get(run_id)
    if run is None:
        raise not_found("run", f"no scenario run {run_id!r}; GET /api/v1/scenarios/runs")
    return run.public(with_log=True)


@router.post(
    "/{name}/run",
    response_model=ScenarioRun,
    status_code=202,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Start a scenario at the given speed",
)
def run_scenario(
    request: Request,
    name: Annotated[str, Path(pattern=NAME)],
    principal: Annotated[Principal, Depends(OPERATOR)],
    body: Annotated[RunRequest | None, Body()] = None,
) -> dict[str, Any]:
    ctx = context(request)
    speed = (body or RunRequest()).speed
    limit = ctx.settings.api.max_scenario_speed
    if speed > limit:
        raise invalid_parameter("speed", f"at most {limit:g} (api.max_scenario_speed)", speed)
    info = ctx.scenarios.library().get(name)
    if info is None:
        names = ", ".join(ctx.scenarios.library()) or "none"
        raise not_found("scenario", f"no scenario {name!r} in the library; it has: {names}")
    try:
        run = ctx.scenarios.start(info, speed, principal.name)
    except TooManyRuns as exc:
        raise Problem(409, "too-many-runs", "Too many scenario runs", str(exc)) from None
    return run.public()


@router.delete(
    "/runs/{run_id}",
    response_model=ScenarioRun,
    responses=NOT_FOUND,
    dependencies=[Depends(OPERATOR)],
    summary="Stop a run (SIGTERM, then SIGKILL after 10 s)",
)
def stop_run(request: Request, run_id: RunId) -> dict[str, Any]:
    ctx = context(request)
    run = ctx.scenarios.get(run_id)
    if run is None:
        raise not_found("run", f"no scenario run {run_id!r}; GET /api/v1/scenarios/runs")
    ctx.scenarios.stop(run)
    return run.public(with_log=True)
