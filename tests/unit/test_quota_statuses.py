"""Quota statuses for the whole store, and for a few configurations on their own rows only
(a notification about one configuration must not read every configuration's usage)."""

from __future__ import annotations

from datetime import date

from orchestrator.core.models import Account
from orchestrator.core.quota import NEVER_RESETS
from orchestrator.service import peers
from orchestrator.service.context import open_fleet
from orchestrator.service.usage import page_statuses, quota_statuses
from orchestrator.settings import Settings

TODAY = date(2026, 11, 23)


def test_a_few_configurations_are_judged_on_their_own_rows(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ann", "scrypt$a", "dev-a"))
        names = [
            peers.add_configuration(
                fleet, "ann", nodes=["node1"], quota_bytes=100 * i
            ).configuration.name
            for i in (1, 2)
        ]
        fleet.store.add_usage(names[0], NEVER_RESETS, 60, 5)
        fleet.store.add_usage(names[1], NEVER_RESETS, 7, 0)
        peers.topup(fleet, names[1], invoice="INV-1", amount="1", bytes_granted=50, today=TODAY)
        every = quota_statuses(fleet, TODAY)
        assert (every[names[0]].used, every[names[0]].allowance) == (65, 100)
        assert (every[names[1]].used, every[names[1]].allowance) == (7, 250)

        one = fleet.store.configuration(names[1])
        assert quota_statuses(fleet, TODAY, [one]) == {names[1]: every[names[1]]}
        page = fleet.store.quota_page_of([one])  # its top-ups and its usage, nobody else's
        assert (set(page.topups), set(page.usage)) == ({names[1]}, {names[1]})

        # The sync's pass: every configuration once, a page at a time, with its own rows.
        pages = list(fleet.store.quota_pages(size=1))
        assert [[c.name for c in p.configurations] for p in pages] == [[n] for n in names]
        plans = {p.name: p for p in fleet.store.plans()}
        assert {k: v for p in pages for k, v in page_statuses(p, plans, TODAY).items()} == every
