"""What the route modules share: the problem responses the OpenAPI document declares."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from orchestrator.server.models import Problem
from orchestrator.server.problems import PROBLEM_MEDIA_TYPE

_WHY = {
    400: "bad input (exit code 2): nothing was changed",
    401: "no token, or a wrong, expired or revoked one",
    403: "the token's scopes do not allow this endpoint",
    404: "no such account, configuration or plan",
    409: "conflicts with what the store holds (an invoice recorded differently, a name taken)",
    413: "request body too large",
    422: "the request does not match its schema",
    502: "a node failed or could not be reached",
    503: "the fleet is busy (another run holds the lock) or the store is unreachable",
    507: "the tunnel address pool is exhausted",
}
ALWAYS = (401, 403, 422, 503)

# A name in a route's path (account or configuration): bounded before any lookup.
PathName = Annotated[str, Path(max_length=200)]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the problem details a route may answer with."""
    return {
        status: {
            "model": Problem,
            "description": _WHY[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in sorted({*ALWAYS, *statuses})
    }
