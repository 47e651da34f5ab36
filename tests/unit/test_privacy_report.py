"""The privacy profile decides what the store keeps and what the report says: change the profile,
and both change with it."""

from __future__ import annotations

import ipaddress
from datetime import date

import pytest

from orchestrator.core.models import Account, Configuration, Plan, ResetRule, TopUp
from orchestrator.core.privacy import (
    NodeFacts,
    Retention,
    build_report,
    record_kinds,
    topups_past_retention,
)
from orchestrator.errors import UsageError
from orchestrator.service import peers
from orchestrator.service.context import open_fleet
from orchestrator.service.privacy import apply_retention, privacy_report
from orchestrator.settings import Settings

TODAY = date(2026, 11, 23)
KEEP_ALL = Retention(400, False, 90, 0, 0, True)
MONTHLY = Plan("monthly", 10**9, ResetRule.MONTHLY, 5, "4.99")  # period from 2026-11-05
ONCE = Plan("once", 10**9, ResetRule.NEVER, 1, "9.99")


@pytest.mark.parametrize(
    ("topup", "plan", "topup_days", "ledger_days", "erased"),
    [
        (TopUp("I1", "c1", "1", 1, date(2026, 1, 1)), MONTHLY, 0, 0, False),  # 0: keep
        (TopUp("I2", "c1", "1", 1, date(2026, 1, 1)), MONTHLY, 30, 0, True),  # old, closed
        (TopUp("I3", "c1", "1", 1, date(2026, 11, 20)), MONTHLY, 1, 0, False),  # counts now
        (TopUp("I4", "c1", "1", 1, date(2026, 10, 1)), MONTHLY, 100, 0, False),  # too young
        (TopUp("I5", "c1", "1", 1, date(2020, 1, 1)), ONCE, 30, 0, False),  # never resets
        (TopUp("I6", "c1", "1", 1, date(2020, 1, 1)), None, 30, 0, False),  # no plan: counts
        (TopUp("I7", None, "1", 1, date(2026, 1, 1)), None, 30, 0, False),  # ledger: keep
        (TopUp("I8", None, "1", 1, date(2026, 1, 1)), None, 0, 300, True),  # ledger: old
        (TopUp("I9", None, "1", 1, date(2026, 11, 1)), None, 0, 300, False),  # ledger: young
    ],
)
def test_which_topups_outlive_their_retention(
    topup: TopUp, plan: Plan | None, topup_days: int, ledger_days: int, erased: bool
) -> None:
    profile = Retention(400, False, 90, topup_days, ledger_days, True)
    plans = {p.name: p for p in (MONTHLY, ONCE)}
    plan_of = {"c1": plan.name if plan else None}
    found = topups_past_retention([topup], plan_of, plans, TODAY, profile)
    assert found == ([topup.invoice] if erased else [])


def test_a_table_or_column_the_profile_does_not_describe_is_reported() -> None:
    columns = {table: list(kind.columns) for table, kind in record_kinds(KEEP_ALL).items()}
    report = build_report(columns, KEEP_ALL, NodeFacts("volatile", {}), "sqlite")
    assert report["undeclared"] == []
    columns["usage_totals"].append("last_handshake")
    columns["sessions"] = ["id", "started"]
    report = build_report(columns, KEEP_ALL, NodeFacts("volatile", {}), "sqlite")
    assert report["undeclared"] == ["sessions", "usage_totals.last_handshake"]


def test_changing_the_profile_changes_the_stored_data_and_the_report(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet:
        store = fleet.store
        store.upsert_plan(MONTHLY)
        store.add_account(Account("ann", "scrypt$a", "dev-a", contact="+15550123"))
        store.add_account(Account("gone", "scrypt$g", "dev-g"))
        for name, account, key in (("ann-1", "ann", "PUBann="), ("gone-1", "gone", "PUBgone=")):
            store.add_configuration(
                Configuration(
                    name,
                    account,
                    key,
                    None,
                    {
                        "node1": ipaddress.IPv4Address(
                            "198.19.1.2" if account == "ann" else "198.19.1.3"
                        )
                    },
                    plan="monthly",
                )
            )
        store.add_topup(TopUp("OLD", "ann-1", "4.99", 100, date(2026, 1, 10)))
        store.add_topup(TopUp("NOW", "ann-1", "4.99", 200, date(2026, 11, 10)))
        store.add_topup(TopUp("LEDGER", "gone-1", "4.99", 300, date(2026, 2, 10)))
        store.delete_account("gone")
        before = privacy_report(fleet)
        assert before["contact_numbers"] == "allowed"
        assert apply_retention(fleet, TODAY).as_dict() == {
            "usage_periods": 0,
            "topups": 0,
            "contacts": 0,
        }
        store.replace_policies(
            {
                "privacy.allow_contact": "false",
                "privacy.topup_retention_days": "30",
                "privacy.deleted_ledger_retention_days": "200",
            }
        )
    with open_fleet(settings, write=True) as fleet:
        erased = apply_retention(fleet, TODAY)
        assert erased.as_dict() == {"usage_periods": 0, "topups": 2, "contacts": 1}
        assert [t.invoice for t in fleet.store.topups()] == ["NOW"]
        assert fleet.store.account("ann").contact is None
        assert fleet.store.running_totals() == fleet.store.recomputed_totals()
        after = privacy_report(fleet)
        assert after["contact_numbers"] == "not kept"
        kept = {r["table"]: r["kept"] for r in after["records"]}
        assert kept["topups"].startswith("30 days after purchase")
        assert "200 days" in kept["topups"]
        assert after["undeclared"] == []
        with pytest.raises(UsageError, match="keeps no contact numbers"):
            peers.add_account(fleet, "bea", "long enough", "dev-b", contact="+15550999")


def test_the_report_says_what_a_client_config_carries() -> None:
    columns = {table: list(kind.columns) for table, kind in record_kinds(KEEP_ALL).items()}
    facts = build_report(columns, KEEP_ALL, NodeFacts("volatile", {}), "sqlite")["client_configs"]
    assert any("0.0.0.0/0 and ::/0" in fact for fact in facts)
    assert any("IPv6 /128" in fact for fact in facts)
    assert any("node's own tunnel addresses" in fact for fact in facts)
    chosen = build_report(columns, KEEP_ALL, NodeFacts("volatile", {}), "sqlite", ["198.18.0.53"])[
        "client_configs"
    ]
    assert any("fleet's chosen servers (198.18.0.53)" in fact for fact in chosen)


def test_the_report_states_the_nodes_resolver_and_its_absent_logs(settings: Settings) -> None:
    from dataclasses import replace

    from orchestrator.settings import DnsSettings

    with open_fleet(settings, write=True) as fleet:
        resolver = privacy_report(fleet)["nodes"]["resolver"]
    assert resolver.startswith("unbound on the tunnel addresses only")
    for words in ("no query, reply or servfail log", "no logfile", "no statistics", "in memory"):
        assert words in resolver
    assert resolver.endswith("recursive from the root servers")
    forwarding = replace(settings, dns=DnsSettings(("198.18.0.53@853#dns.example.net",), True))
    with open_fleet(forwarding, write=True) as fleet:
        report = privacy_report(fleet)
    assert report["nodes"]["resolver"].endswith(
        "forwards to 198.18.0.53@853#dns.example.net over TLS"
    )
    assert any("memory cache" in note for note in report["notes"])
