"""Errors as ``application/problem+json`` (RFC 9457), each with a detail a person can act on.

Every failure the API produces, including FastAPI's own validation errors and unexpected
exceptions, leaves through here, so clients (the operations page included) need to handle one
shape only: ``type``, ``title``, ``status``, ``detail``, ``instance`` and, for bad input,
``errors`` naming each offending parameter.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("api")

PROBLEM_JSON = "application/problem+json"
_TYPE_PREFIX = "urn:kordon:problem:"


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def invalid_parameter(name: str, detail: str, value: object = None) -> Problem:
    """422 for one bad parameter, in the same shape as FastAPI's validation errors."""
    error: dict[str, Any] = {"parameter": name, "detail": detail}
    if value is not None:
        error["value"] = str(value)[:200]
    return Problem(
        422, "invalid-parameter", "Invalid parameter", f"{name}: {detail}", errors=[error]
    )


def not_found(what: str, detail: str) -> Problem:
    return Problem(404, "not-found", f"No such {what}", detail)


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extensions,
    }
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


_HTTP_TITLES = {
    404: (
        "not-found",
        "Not found",
        "there is nothing at this path; the API lives under /api/v1 (see /openapi.json)",
    ),
    405: (
        "method-not-allowed",
        "Method not allowed",
        "this path does not take this method; see /openapi.json for what it does take",
    ),
}


def install(app: FastAPI) -> None:
    """Route every error through :func:`problem_response`."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            where = loc[0] if loc else "request"
            name = ".".join(loc[1:]) or where
            errors.append({"parameter": name, "in": where, "detail": error.get("msg", "")})
        summary = "; ".join(f"{e['parameter']}: {e['detail']}" for e in errors[:5])
        problem = Problem(
            422,
            "invalid-parameter",
            "Invalid parameter",
            summary or "invalid request",
            errors=errors,
        )
        return problem_response(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, title, detail = _HTTP_TITLES.get(
            exc.status_code, ("http-error", "HTTP error", str(exc.detail))
        )
        if exc.status_code not in _HTTP_TITLES and isinstance(exc.detail, str):
            detail = exc.detail
        return problem_response(
            request, Problem(exc.status_code, kind, title, detail, headers=exc.headers)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(
            request,
            Problem(
                500,
                "internal",
                "Internal error",
                "the API failed unexpectedly; the server log has the traceback",
            ),
        )
