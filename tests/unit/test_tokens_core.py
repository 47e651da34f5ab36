"""The tokens' pure rules: scopes, the endpoint table, the text form, expiry and the brake."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from orchestrator.core.errors import InvalidInput
from orchestrator.core.tokens import (
    BRAKE_FORGIVE_SECONDS,
    BRAKE_FREE_FAILURES,
    BRAKE_MAX_SECONDS,
    ApiToken,
    Scope,
    allowed,
    brake_decay,
    brake_delay,
    check_token_name,
    parse_expiry,
    parse_scopes,
    split_token,
    token_text,
)

TODAY = date(2026, 12, 4)


def test_scopes_are_read_repeated_or_comma_separated_and_unknown_ones_refused() -> None:
    assert parse_scopes(["billing", "read,metrics"]) == {Scope.BILLING, Scope.READ, Scope.METRICS}
    with pytest.raises(InvalidInput, match="--scope 'admin': one of billing, provision"):
        parse_scopes(["billing", "admin"])
    with pytest.raises(InvalidInput, match="at least one"):
        parse_scopes([" , "])


def test_the_table_allows_what_the_issue_says_and_nothing_unlisted() -> None:
    billing = frozenset({Scope.BILLING})
    assert allowed(billing, "post", "/v1/topups")
    assert allowed(billing, "GET", "/v1/plans")
    assert allowed(billing, "GET", "/v1/configurations/{name}")
    assert not allowed(billing, "POST", "/v1/configurations")
    read = frozenset({Scope.READ})
    assert allowed(read, "GET", "/v1/health") and not allowed(read, "GET", "/metrics")
    assert not allowed(frozenset(Scope), "GET", "/v1/unlisted")


def test_expiry_in_days_or_as_a_date() -> None:
    assert parse_expiry(None, TODAY) is None
    assert parse_expiry("30", TODAY) == TODAY + timedelta(days=30)
    assert parse_expiry("2027-01-31", TODAY) == date(2027, 1, 31)
    for bad, why in (
        ("0", "1 to 3650 days"),
        ("2020-01-01", "that day has passed"),
        ("tomorrow", "a number of days or a date"),
        ("2099-01-01", "at most 3650 days ahead"),
    ):
        with pytest.raises(InvalidInput, match=why):
            parse_expiry(bad, TODAY)


def test_a_token_is_refused_once_revoked_or_past_its_last_day() -> None:
    token = ApiToken("t", "0" * 16, "h", frozenset({Scope.READ}), TODAY, TODAY)
    assert token.refusal(TODAY) is None
    assert token.refusal(TODAY + timedelta(days=1)) == "expired"
    revoked = ApiToken("t", "0" * 16, "h", frozenset({Scope.READ}), TODAY, None, True)
    assert revoked.refusal(TODAY) == "revoked"


def test_the_text_form_round_trips_and_nothing_else_parses() -> None:
    text = token_text("0123456789abcdef", "A" * 43)
    assert text.startswith("wgf_")
    assert split_token(text) == ("0123456789abcdef", "A" * 43)
    for bad in ("", "wgf_", text + "x", text.replace("wgf_", "wgx_"), text.upper()):
        assert split_token(bad) is None
    check_token_name("billing-backend")
    with pytest.raises(InvalidInput):
        check_token_name("Billing Backend")


def test_the_brake_lets_a_few_through_then_doubles_up_to_its_cap() -> None:
    free = [brake_delay(n) for n in range(BRAKE_FREE_FAILURES + 1)]
    assert free == [0.0] * (BRAKE_FREE_FAILURES + 1)
    first, second = brake_delay(BRAKE_FREE_FAILURES + 1), brake_delay(BRAKE_FREE_FAILURES + 2)
    assert second == 2 * first > 0
    assert brake_delay(10_000) == BRAKE_MAX_SECONDS


def test_idle_time_forgives_failures_and_never_below_zero() -> None:
    assert brake_decay(5.0, 0.0) == 5.0
    assert brake_decay(5.0, 2 * BRAKE_FORGIVE_SECONDS) == 3.0
    assert brake_decay(5.0, 1e9) == 0.0
    assert brake_decay(5.0, -10.0) == 5.0


def test_the_privacy_report_describes_the_servers_records() -> None:
    from orchestrator.core.privacy import NodeFacts, Retention, build_report, record_kinds

    profile = Retention(0, False, 0, 0, 0, False)
    kinds = record_kinds(profile)
    assert "secret_hash" in kinds["api_tokens"].columns and "actor" in kinds["operations"].columns
    columns = {table: list(kind.columns) for table, kind in kinds.items()}
    report = build_report(columns, profile, NodeFacts("volatile", {}), "sqlite")
    (tokens,) = [r for r in report["records"] if r["table"] == "api_tokens"]
    assert "never the secret" in tokens["what"]
    assert any("no access log, no client address and no user agent" in n for n in report["notes"])
