"""The app factory of `wgfleet serve`: routes, problem details, the body limit, tokens."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator import __version__
from orchestrator.core.metrics import NO_OBSERVER, RunObserver
from orchestrator.errors import FleetBusy, WgfleetError
from orchestrator.server.auth import AfterWrite, Brake, Refused
from orchestrator.server.limits import MAX_BODY_BYTES, BodyLimit
from orchestrator.server.problems import PROBLEM_MEDIA_TYPE, error_problem, http_problem
from orchestrator.server.routes import accounts, billing, configurations, health
from orchestrator.server.routes.metrics import MetricsRenderer, metrics_router
from orchestrator.settings import Settings

OPENAPI_URL = "/v1/openapi.json"


def _problem_response(document: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(
        document, status_code=document["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def create_app(
    settings: Settings,
    *,
    after_write: AfterWrite | None = None,
    metrics: MetricsRenderer | None = None,
    observer: RunObserver = NO_OBSERVER,
    body_limit: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The API over the fleet ``settings`` name.

    ``after_write`` is called after each committed write with the names of the nodes now
    pending (a push worker wakes on it); ``metrics`` renders /metrics (left out without it);
    ``observer`` hears of the pushes the API's writes make.
    """
    app = FastAPI(
        title="wgfleet",
        version=__version__,
        description="The provider's API over a fleet of no-logs WireGuard nodes. Bearer "
        "tokens from `wgfleet tokens add`, each limited to its scopes; errors are RFC 9457 "
        "problem details with the CLI's exit code.",
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.after_write = after_write
    app.state.observer = observer
    app.state.brake = Brake()
    for module in (accounts, configurations, billing, health):
        app.include_router(module.router)
    if metrics is not None:
        app.include_router(metrics_router(metrics))

    @app.exception_handler(WgfleetError)
    async def wgfleet_error(request: Request, error: WgfleetError) -> Any:
        headers = {"Retry-After": "10"} if isinstance(error, FleetBusy) else None
        return _problem_response(error_problem(error), headers)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> Any:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return _problem_response(http_problem(error.status, error.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Any:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return _problem_response(http_problem(422, detail))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Any:
        return _problem_response(http_problem(error.status_code, str(error.detail)))

    app.add_middleware(BodyLimit, limit=body_limit)
    return app
