"""Billing: top-ups, idempotent by invoice, and the plans on offer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from orchestrator.server.auth import Caller, authorized
from orchestrator.server.models import NewTopUp, PlanOut, TopUpRecorded
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
    caller: Caller = Depends(authorized),  # noqa: B008
) -> TopUpRecorded:
    with caller.writing() as fleet:
        topup, created = peers.topup(
            fleet,
            body.configuration,
            invoice=body.invoice,
            amount=body.amount,
            bytes_granted=body.bytes,
            plan=body.plan,
        )
    if not created:
        response.status_code = 200
    return TopUpRecorded(
        invoice=topup.invoice,
        configuration=topup.configuration,
        amount=topup.amount,
        bytes_granted=topup.bytes_granted,
        purchased_on=topup.purchased_on,
        created=created,
        pending_nodes=caller.pending,
    )


@router.get("/v1/plans", response_model=list[PlanOut], responses=problems())
def list_plans(caller: Caller = Depends(authorized)) -> list[PlanOut]:  # noqa: B008
    with caller.reading() as fleet:
        offered = catalog.plans(fleet)
    return [
        PlanOut(
            name=p.name,
            quota_bytes=p.quota_bytes,
            reset=p.reset.value,
            anchor_day=p.anchor_day,
            price=p.price,
            validity_days=p.validity_days,
            valid_until=p.valid_until,
        )
        for p in offered
    ]
