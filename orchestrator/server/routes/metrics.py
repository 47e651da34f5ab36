"""Prometheus' scrape endpoint, for tokens with the metrics scope only. The exposition itself
comes from whoever builds the app (``create_app(..., metrics=...)``)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Response

from orchestrator.server.auth import CallerDep
from orchestrator.server.routes.common import problems

# () -> (exposition bytes, its content type)
MetricsRenderer = Callable[[], tuple[bytes, str]]


def metrics_router(render: MetricsRenderer) -> APIRouter:
    router = APIRouter(tags=["operators"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **problems()},
        description="Per node and fleet-wide metrics; no label holds a user, a configuration, "
        "a key or an address.",
    )
    def metrics(caller: CallerDep) -> Response:
        body, content_type = render()
        return Response(body, media_type=content_type)

    return router
