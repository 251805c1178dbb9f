"""HTTP routes, one module per resource."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.context import ApiContext
from api.schemas import Problem as ProblemModel

_PROBLEM = {"model": ProblemModel, "content": {"application/problem+json": {}}}

# Documented on every authenticated route, so clients and schemathesis know these answers.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {**_PROBLEM, "description": "missing or wrong bearer token"},
    403: {**_PROBLEM, "description": "the token's role is too weak"},
    422: {**_PROBLEM, "description": "a parameter is invalid; errors names it"},
}
NOT_FOUND = {404: {**_PROBLEM, "description": "no such resource"}}
CONFLICT = {409: {**_PROBLEM, "description": "the request conflicts with the current state"}}
UNAVAILABLE = {503: {**_PROBLEM, "description": "a store this needs is unreachable"}}


def context(request: Request) -> ApiContext:
    return request.app.state.context  # type: ignore[no-any-return]
