"""API tokens in the store (SQLite and PostgreSQL): kept as a hash, found by id, revoked for
good; and the operations trail names the token that made a session."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.adapters.store import SqlStore
from orchestrator.core.models import Operation
from orchestrator.core.privacy import Retention, record_kinds
from orchestrator.core.tokens import ApiToken, Scope
from orchestrator.errors import NotFound, StoreError


def token(name: str, token_id: str, **kw: object) -> ApiToken:
    fields: dict[str, object] = {
        "secret_hash": "ab" * 32,
        "scopes": frozenset({Scope.BILLING, Scope.READ}),
        "created_on": date(2026, 1, 1),
        "expires_on": date(2026, 2, 1),
        **kw,
    }
    return ApiToken(name, token_id, **fields)  # type: ignore[arg-type]


def test_a_token_is_kept_found_by_its_id_and_listed(store: SqlStore) -> None:
    store.add_token(token("billing", "0123456789abcdef"))
    store.add_token(
        token("app", "fedcba9876543210", expires_on=None, scopes=frozenset({Scope.PROVISION}))
    )
    assert store.token_by_id("0123456789abcdef") == token("billing", "0123456789abcdef")
    assert store.token_by_id("0000000000000000") is None
    assert [t.name for t in store.tokens()] == ["app", "billing"]
    assert store.tokens()[0].expires_on is None
    assert store.tokens()[0].scopes == frozenset({Scope.PROVISION})


def test_a_revoked_token_stays_revoked_and_its_name_is_never_reused(store: SqlStore) -> None:
    store.add_token(token("billing", "0123456789abcdef"))
    assert store.revoke_token("billing").revoked
    found = store.token_by_id("0123456789abcdef")
    assert found is not None and found.revoked
    with pytest.raises(StoreError, match="a token named billing exists"):
        store.add_token(token("billing", "1111111111111111"))
    with pytest.raises(NotFound):
        store.revoke_token("nobody")


def test_the_trail_names_the_token_that_made_a_session(store: SqlStore) -> None:
    store.record_operation(Operation("api POST /v1/topups", "ctl", 1, 2, "ok", 1, "billing"))
    store.record_operation(Operation("sync", "ctl", 3, 4, "ok", 2))
    newest, older = store.operations()
    assert (newest.actor, older.actor) == (None, "billing")


def test_no_column_of_the_tokens_table_can_hold_a_secret(store: SqlStore) -> None:
    # Exactly the columns the privacy report declares (each described there), and of those
    # only the hash speaks of the secret.
    declared = record_kinds(Retention(400, False, 90, 0, 0, True))["api_tokens"].columns
    columns = store.columns()["api_tokens"]
    assert columns == ["id", *declared]
    assert [c for c in columns if "secret" in c or "token" in c] == ["token_id", "secret_hash"]
