"""Billing: top-ups, idempotent by invoice, and the plans on offer."""

from __future__ import annotations

from fastapi import APIRouter, Response

from orchestrator.server.auth import CallerDep
from orchestrator.server.models import NewTopUp, PlanOut, TopUpRecorded, answer
from orchestrator.server.routes.common import problems
from orchestrator.service import catalog, peers

router = APIRouter(tags=["billing"])


@router.post(
    "/v1/topups",
    status_code=201,
    response_model=TopUpRecorded,
    responses={
        200: {
            "model": TopUpRecorded,
            "description": "this invoice was recorded before with "
            "the same body: the original result, nothing granted again",
        },
        **problems(400, 404, 409),
    },
    description="Grants quota once per invoice. The same body again answers 200 with the "
    "original result; the same invoice with another configuration, amount or bytes is 409 "
    "and grants nothing. Give exactly one of `bytes` and `plan`.",
)
def create_topup(
    body: NewTopUp,
    response: Response,
    caller: CallerDep,
) -> TopUpRecorded:
    with caller.writing(store_only=True) as fleet:
        topup, created = peers.topup(fleet, **body.model_dump())
    if not created:
        response.status_code = 200
    return answer(TopUpRecorded, topup, created=created, pending_nodes=caller.pending)


@router.get("/v1/plans", response_model=list[PlanOut], responses=problems())
def list_plans(caller: CallerDep) -> list[PlanOut]:
    with caller.reading() as fleet:
        offered = catalog.plans(fleet)
    return [answer(PlanOut, plan) for plan in offered]
