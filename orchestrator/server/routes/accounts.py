"""Accounts: create one (the app), export and erase one (a user's rights)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from orchestrator.server.auth import CallerDep
from orchestrator.server.models import AccountCreated, AccountDeleted, NewAccount, answer
from orchestrator.server.routes.common import PathName, problems
from orchestrator.service import peers

router = APIRouter(tags=["accounts"])


@router.post(
    "/v1/accounts", status_code=201, response_model=AccountCreated, responses=problems(400, 409)
)
def create_account(body: NewAccount, caller: CallerDep) -> AccountCreated:
    with caller.writing() as fleet:
        account = peers.add_account(fleet, **body.model_dump())
    return answer(AccountCreated, account, pending_nodes=caller.pending)


@router.get(
    "/v1/accounts/{username}/export",
    response_model=dict[str, Any],
    responses=problems(404),
    description="Everything the store holds about the account (a user's right of access); "
    "the password hash is described, never given; preshared keys are referenced.",
)
def export_account(username: PathName, caller: CallerDep) -> dict[str, Any]:
    with caller.reading() as fleet:
        return peers.export_account(fleet, username)


@router.delete("/v1/accounts/{username}", response_model=AccountDeleted, responses=problems(404))
def delete_account(username: PathName, caller: CallerDep) -> AccountDeleted:
    with caller.writing() as fleet:
        deleted = peers.delete_account(fleet, username)
    return AccountDeleted(
        username=username,
        removed_configurations=[c.name for c in deleted.removed],
        scrubbed=deleted.scrubbed,
        pending_nodes=caller.pending,
    )
