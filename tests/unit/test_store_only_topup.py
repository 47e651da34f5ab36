"""A top-up never waits behind a running sync: it is a store-only change (`writes_store`) in a
session that takes no fleet lock, kept correct by store transactions; the sync judges its
cut-offs again inside the transaction that writes them. On a real SQLite store whose nodes
nobody answers (tests/unit/conftest); the same on a real lab with a sync running is
tests/integration/test_push_worker.py's."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from orchestrator.core.models import Account, DisabledReason
from orchestrator.core.quota import NEVER_RESETS
from orchestrator.errors import FleetBusy
from orchestrator.service import peers
from orchestrator.service import sync as sync_service
from orchestrator.service.context import ReadOnlySession, open_fleet
from orchestrator.service.push import pending_nodes
from orchestrator.service.usage import usage_check
from orchestrator.settings import Settings

GiB = 2**30


def configurations(settings: Settings, count: int) -> list[str]:
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ann", "scrypt$a", "dev-a"))
        return [
            peers.add_configuration(
                fleet, "ann", nodes=["node1"], quota_bytes=100
            ).configuration.name
            for _ in range(count)
        ]


def topup_alone(settings: Settings, name: str, invoice: str) -> tuple[str, bool]:
    """What a request of the HTTP API runs: its own store-only session."""
    with open_fleet(settings, store_only=True, operation="topup") as fleet:
        topup, created = peers.topup(fleet, name, invoice=invoice, amount="4.99", bytes_granted=GiB)
    return topup.invoice, created


def test_fifty_parallel_topups_go_through_while_a_sync_holds_the_lock(
    settings: Settings,
) -> None:
    names = configurations(settings, 4)
    requests = [(names[i % 4], f"INV-{i}") for i in range(40)]
    requests += [(names[0], "INV-REPLAYED")] * 10  # one purchase, sent ten times
    with open_fleet(settings, write=True, operation="sync"):  # the sync's lock, held
        # A writer that needs the lock is refused now; the top-ups are not.
        busy = threading.Thread(target=lambda: refused.append(_try_lock(settings)))
        refused: list[bool] = []
        busy.start()
        busy.join()
        assert refused == [True]
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda r: topup_alone(settings, *r), requests))
    assert sorted(i for i, created in results if created) == sorted(
        {f"INV-{i}" for i in range(40)} | {"INV-REPLAYED"}
    )
    assert [created for i, created in results if i == "INV-REPLAYED"].count(True) == 1
    with open_fleet(settings) as fleet:
        granted = fleet.store.running_totals().granted
        assert granted == {
            names[0]: 11 * GiB,
            names[1]: 10 * GiB,
            names[2]: 10 * GiB,
            names[3]: 10 * GiB,
        }
        assert len(fleet.store.topups()) == 41  # every invoice once
        assert usage_check(fleet) == []
        trail = [op.operation for op in fleet.store.operations(limit=200)]
    assert trail.count("topup") == 50  # each recorded as a writing session


def _try_lock(settings: Settings) -> bool:
    try:
        with open_fleet(settings, write=True, wait=False):
            return False
    except FleetBusy:
        return True


def test_a_topup_lets_a_cut_off_configuration_back_and_its_node_is_pending(
    settings: Settings,
) -> None:
    (name,) = configurations(settings, 1)
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_usage(name, NEVER_RESETS, 150, 0)
        assert sync_service.sync(fleet).over_quota == (name,)
        assert fleet.store.configuration(name).disabled_reason == DisabledReason.OVER_QUOTA
        for node, (desired, _) in fleet.store.node_revisions().items():
            fleet.store.mark_pushed(node, desired, True)  # as if the cut-off reached them
    assert topup_alone(settings, name, "INV-1") == ("INV-1", True)
    with open_fleet(settings) as fleet:
        assert fleet.store.configuration(name).enabled
        assert pending_nodes(fleet) == ["node1"]  # for the push worker (or the next sync)
    # A replay grants nothing and changes nothing.
    assert topup_alone(settings, name, "INV-1") == ("INV-1", False)


def test_a_sync_judges_its_cut_offs_again_when_it_writes_them(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A top-up committed after the sync read the quotas, before it cut off: not cut off."""
    (name,) = configurations(settings, 1)
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_usage(name, NEVER_RESETS, 150, 0)
    judged = sync_service.judge_every_configuration

    def decided_then_a_topup(*args: Any, **kwargs: Any) -> Any:
        decision = judged(*args, **kwargs)
        # The sync's decision is read: a top-up lands now, in another thread.
        landed = threading.Thread(target=topup_alone, args=(settings, name, "INV-RACE"))
        landed.start()
        landed.join()
        return decision

    monkeypatch.setattr(sync_service, "judge_every_configuration", decided_then_a_topup)
    with open_fleet(settings, write=True) as fleet:
        result = sync_service.sync(fleet)
        assert result.over_quota == ()
        assert fleet.store.configuration(name).enabled
        assert len(fleet.store.topups()) == 1


def test_store_only_sessions_run_store_only_use_cases_only(settings: Settings) -> None:
    with open_fleet(settings) as fleet, pytest.raises(ReadOnlySession, match="store_only"):
        peers.topup(fleet, "x", invoice="I", amount="1", bytes_granted=1)
    with (
        open_fleet(settings, store_only=True) as fleet,
        pytest.raises(ReadOnlySession, match="write=True"),
    ):
        peers.add_account(fleet, "ann", "a password", "dev-a")
    with (
        pytest.raises(ValueError, match="either"),
        open_fleet(settings, write=True, store_only=True),
    ):
        pass
