"""Plans that expire: validity from activation and renewal, and what enforcement does with
every combination of enabled state, reason, expiry and quota."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.core.models import Configuration, DisabledReason, Plan, ResetRule
from orchestrator.core.quota import QuotaStatus, enforce, validity_after

TODAY = date(2026, 11, 23)
MONTH = Plan("month", 10**9, ResetRule.NEVER, validity_days=30)
SEASON = Plan("season", 10**9, ResetRule.NEVER, valid_until=date(2026, 12, 31))
BOTH = Plan("both", 10**9, ResetRule.NEVER, validity_days=60, valid_until=date(2026, 12, 31))
FOREVER = Plan("forever", 10**9)


@pytest.mark.parametrize(
    ("plan", "current", "expected"),
    [
        (MONTH, None, date(2026, 12, 22)),  # activation: today + 29, 30 days in all
        (MONTH, date(2026, 11, 30), date(2026, 12, 30)),  # renewed early: runs on
        (MONTH, date(2026, 11, 23), date(2026, 12, 23)),  # renewed on its last day
        (MONTH, date(2026, 10, 1), date(2026, 12, 22)),  # renewed after expiry: from today
        (SEASON, None, date(2026, 12, 31)),
        (BOTH, None, date(2026, 12, 31)),  # the plan's own end caps the days
        (FOREVER, None, None),
    ],
)
def test_validity_from_activation_and_renewal(
    plan: Plan, current: date | None, expected: date | None
) -> None:
    assert validity_after(plan, current, TODAY) == expected


OFF_QUOTA, OFF_EXPIRED, OFF_OPERATOR = (
    DisabledReason.OVER_QUOTA,
    DisabledReason.EXPIRED,
    DisabledReason.OPERATOR,
)
PAST, FUTURE = date(2026, 11, 22), date(2026, 11, 23)  # FUTURE: today is its last valid day


@pytest.mark.parametrize(
    ("enabled", "reason", "valid_until", "used", "outcome"),
    [
        (True, None, None, 10, "none"),
        (True, None, FUTURE, 10, "none"),
        (True, None, PAST, 10, "expire"),
        (True, None, PAST, 200, "expire"),  # expired and over quota: expiry first
        (True, None, FUTURE, 200, "disable"),
        (True, None, FUTURE, 85, "warn"),
        (False, OFF_EXPIRED, PAST, 10, "none"),  # still expired: nothing new
        (False, OFF_EXPIRED, FUTURE, 10, "enable"),  # renewed
        (False, OFF_EXPIRED, FUTURE, 200, "disable"),  # renewed but over quota: now for quota
        (False, OFF_QUOTA, PAST, 10, "expire"),  # over quota, then expired
        (False, OFF_QUOTA, FUTURE, 200, "none"),
        (False, OFF_QUOTA, None, 10, "enable"),  # topped up
        (False, OFF_OPERATOR, PAST, 10, "none"),  # an operator's disable is never touched
        (False, OFF_OPERATOR, FUTURE, 10, "none"),
    ],
)
def test_enforcement_of_quota_and_validity(
    enabled: bool,
    reason: DisabledReason | None,
    valid_until: date | None,
    used: int,
    outcome: str,
) -> None:
    config = Configuration(
        "c1", "a", "PUB=", None, enabled=enabled, disabled_reason=reason, valid_until=valid_until
    )
    status = QuotaStatus("c1", TODAY, 100, used)
    decision = enforce([config], {"c1": status}, 0.8, TODAY)
    found = {
        "expire": decision.expire,
        "disable": decision.disable,
        "enable": decision.enable,
        "warn": decision.warn,
    }
    assert {k for k, v in found.items() if v} == ({outcome} if outcome != "none" else set())


def test_an_expired_configuration_is_cut_off_and_a_renewal_lets_it_back(settings) -> None:
    from datetime import timedelta

    from orchestrator.core.models import Account
    from orchestrator.service import peers
    from orchestrator.service.context import open_fleet
    from orchestrator.service.push import pending_nodes
    from orchestrator.service.sync import sync

    start = TODAY - timedelta(days=40)
    with open_fleet(settings, write=True) as fleet:
        fleet.store.upsert_plan(MONTH)
        fleet.store.add_account(Account("eve", "scrypt$e", "dev-e"))
        new = peers.add_configuration(fleet, "eve", nodes=["node1"], plan="month", today=start)
        name = new.configuration.name
        assert fleet.store.configuration(name).valid_until == start + timedelta(days=29)

        first = sync(fleet, today=TODAY)
        assert first.expired == (name,) and first.as_dict()["newly_expired"] == [name]
        config = fleet.store.configuration(name)
        assert not config.enabled and config.disabled_reason == DisabledReason.EXPIRED
        assert sync(fleet, today=TODAY).expired == ()  # once per occurrence

        peers.topup(fleet, name, invoice="RENEW-1", amount="4.99", plan="month", today=TODAY)
        assert fleet.store.configuration(name).valid_until == TODAY + timedelta(days=29)
        peers.topup(fleet, name, invoice="RENEW-1", amount="4.99", plan="month", today=TODAY)
        assert fleet.store.configuration(name).valid_until == TODAY + timedelta(days=29)
        # The renewal itself lets it back (store-only: its nodes are pending for a push).
        assert fleet.store.configuration(name).enabled
        assert "node1" in pending_nodes(fleet)  # (node2 is behind: unreachable here)
        again = sync(fleet, today=TODAY)
        assert again.re_enabled == ()  # nothing left for the sync to decide
        assert fleet.store.configuration(name).enabled
