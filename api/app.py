"""The FastAPI application: routes, problem documents, metrics, CORS and the page."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import problems
from api.context import ApiContext
from api.routes import alerts, battery, devices, health, scenarios
from api.stats import StatsMiddleware
from kordon import __version__

STATIC = Path(__file__).resolve().parent / "static"


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Kordon API",
        version=__version__,
        summary="Border infrastructure: power state, history, alerts and scenario control",
        # The document is served by a route of our own that needs a token; the interactive
        # docs would load scripts from a CDN, which the page's security policy refuses.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    problems.install(app)
    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(alerts.router)
    app.include_router(scenarios.router)
    app.include_router(battery.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    origins = context.settings.api.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(StatsMiddleware, stats=context.stats)
    return app
