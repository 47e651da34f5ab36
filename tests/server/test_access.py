"""Who may call what: every scope refused at every endpoint it may not call, tokens missing,
wrong, expired or revoked, bodies too large, and wrong tokens slowed down."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from orchestrator.core.tokens import (
    BRAKE_FREE_FAILURES,
    ENDPOINT_SCOPES,
    Scope,
    brake_delay,
)
from orchestrator.service.context import open_fleet
from orchestrator.service.tokens import revoke_token
from tests.server.calls import CALLS, NEW_ACCOUNT
from tests.server.conftest import Running, make_token
from tests.tui.conftest import dump

REFUSED = [
    (scope, route)
    for route, allowed in sorted(ENDPOINT_SCOPES.items())
    for scope in Scope
    if scope not in allowed
]


@pytest.mark.parametrize(("scope", "route"), REFUSED, ids=lambda v: str(v))
def test_a_scope_is_refused_where_the_table_does_not_allow_it(
    running: Running, scope: Scope, route: tuple[str, str]
) -> None:
    before = dump(running.settings)
    with running.as_scope(scope.value) as client:
        answer = CALLS[route](client)
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "forbidden"
    assert answer.json()["detail"].startswith(f"token {scope.value}-token ({scope.value})")
    assert dump(running.settings) == before
    assert running.written == []


def test_every_scope_is_refused_somewhere_and_allowed_somewhere() -> None:
    for scope in Scope:
        assert any(scope in allowed for allowed in ENDPOINT_SCOPES.values())
        assert any(scope not in allowed for allowed in ENDPOINT_SCOPES.values())


def test_no_token_or_a_malformed_one_is_401(running: Running) -> None:
    with running.client() as anonymous:
        none = anonymous.get("/v1/plans")
    with running.client("not-a-token") as client:
        malformed = client.get("/v1/plans")
    with httpx.Client(base_url=running.url, headers={"Authorization": "Basic eDp5"}) as basic:
        wrong_scheme = basic.get("/v1/plans")
    for answer in (none, malformed, wrong_scheme):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["exit_code"] == 2


def test_a_wrong_secret_for_a_known_id_is_refused(running: Running) -> None:
    token = running.tokens["read"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with running.client(forged) as client:
        answer = client.get("/v1/plans")
    assert answer.status_code == 401
    assert answer.json()["detail"] == "unknown token"


def test_an_expired_token_is_refused(running: Running) -> None:
    old = make_token(running.settings, "old", ["read"], expires="1", today=date(2020, 1, 1))
    fresh = make_token(running.settings, "fresh", ["read"], expires="1")
    with running.client(old) as client:
        expired = client.get("/v1/plans")
    with running.client(fresh) as client:
        valid = client.get("/v1/plans")
    assert expired.status_code == 401 and expired.json()["detail"] == "token expired"
    assert valid.status_code == 200


def test_a_revoked_token_is_refused_from_the_next_request(running: Running) -> None:
    with running.as_scope("read") as client:
        assert client.get("/v1/plans").status_code == 200
        with open_fleet(running.settings, write=True) as fleet:
            revoke_token(fleet, "read-token")
        answer = client.get("/v1/plans")
    assert answer.status_code == 401 and answer.json()["detail"] == "token revoked"


def test_a_body_over_the_limit_is_413_and_nothing_is_written(running: Running) -> None:
    before = dump(running.settings)
    padding = "x" * (70 * 1024)
    with running.as_scope("provision") as app:
        declared = app.post("/v1/accounts", json={**NEW_ACCOUNT, "device_id": padding})

        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(80):
                yield b"x" * 1024

        streamed = app.post(
            "/v1/accounts", content=chunks(), headers={"content-type": "application/json"}
        )
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "request body too large"
    assert dump(running.settings) == before


def test_wrong_tokens_are_slowed_by_a_counter_and_valid_ones_are_not(running: Running) -> None:
    brake = running.app.state.brake
    brake.clock = lambda: 1000.0  # no time passes: nothing is forgiven during the test
    brake.reset()
    wrong = "wgf_0000000000000000_" + "A" * 43
    delays = []
    with running.client(wrong) as client:
        for _ in range(BRAKE_FREE_FAILURES + 2):
            assert client.get("/v1/plans").status_code == 401
            delays.append(brake.last_delay)
    assert brake.failures == BRAKE_FREE_FAILURES + 2
    assert delays == [brake_delay(n) for n in range(1, BRAKE_FREE_FAILURES + 3)]
    assert delays[:BRAKE_FREE_FAILURES] == [0.0] * BRAKE_FREE_FAILURES
    assert 0 < delays[-2] < delays[-1]
    with running.as_scope("read") as client:
        assert client.get("/v1/plans").status_code == 200
    assert brake.failures == BRAKE_FREE_FAILURES + 2
