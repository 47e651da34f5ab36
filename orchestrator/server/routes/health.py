"""For operators: the fleet's health (nodes, pending pushes, overdue keys)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter

from orchestrator.server.auth import CallerDep
from orchestrator.server.models import Health
from orchestrator.server.routes.common import problems
from orchestrator.service import overview

router = APIRouter(tags=["operators"])


@router.get(
    "/v1/health",
    response_model=Health,
    responses=problems(),
    description="Each node's last push, sync and audit verdict and key age, the nodes waiting "
    "for a push, and how many keys of each kind are past their maximum age.",
)
def health(caller: CallerDep) -> Health:
    with caller.reading() as fleet:
        found = overview.fleet_health(fleet, date.today())
    return Health(**found.as_dict())
