"""A sync streams its nodes through fetch and account in batches: the counters it holds at
once are bounded by the batch size, not by the fleet, and every byte still counts exactly
once. The nodes' answers are canned here (no node answers in unit tests); the lab tests
(test_push_sync, test_shards) hold the same sync against real nodes."""

from __future__ import annotations

import base64
import ipaddress
import threading
from collections.abc import Collection, Iterator
from datetime import date
from typing import Any

import pytest

from orchestrator.core.accounting import Sample
from orchestrator.core.collector import CounterReport
from orchestrator.core.models import Account, Configuration, Node
from orchestrator.errors import Cancelled
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.settings import Settings
from tests.unit.conftest import unreachable_node

NODES = [f"node{i}" for i in range(1, 8)]
KEY = base64.b64encode(b"k" * 32).decode()


def fleet_of_seven(settings: Settings) -> None:
    """Five more nodes beside the fixture's two, and one configuration placed on all seven."""
    with open_fleet(settings, write=True) as fleet:
        for index in range(3, 8):
            fleet.store.upsert_node(unreachable_node(index))
        fleet.store.add_account(Account("ops", "!", "noc"))
        placements = {
            name: ipaddress.IPv4Address(f"198.19.{i}.2") for i, name in enumerate(NODES, 1)
        }
        fleet.store.add_configuration(Configuration("ops-1", "ops", KEY, None, placements))


class HeldCounters:
    """Counts the nodes' answers fetched and not yet accounted, the most at once, and the size
    of every batch accounted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, rx: int) -> None:
        self.lock = threading.Lock()
        self.held = 0
        self.most = 0
        self.batches: list[int] = []
        account = sync_service.account_reports

        def fetch(fleet: Fleet, node: Node) -> CounterReport:
            with self.lock:
                self.held += 1
                self.most = max(self.most, self.held)
            return CounterReport("e1", (Sample(KEY, rx, 1),))

        def accounted(fleet: Fleet, reports: dict[str, Any], today: date) -> Any:
            self.batches.append(len(reports))
            outcome = account(fleet, reports, today)
            with self.lock:
                self.held -= len(reports)
            return outcome

        monkeypatch.setattr(sync_service, "fetch_counters", fetch)
        monkeypatch.setattr(sync_service, "account_reports", accounted)


def test_a_sync_holds_at_most_two_batches_of_counters(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet_of_seven(settings)
    held = HeldCounters(monkeypatch, rx=100)
    with open_fleet(settings, write=True) as fleet:
        result = sync_service.sync(fleet, batch_nodes=2, enforce_quota=False)
    assert held.batches == [2, 2, 2, 1]
    assert held.most <= 2 * 2  # one batch accounted while the next is fetched
    assert held.held == 0
    assert sorted(n.node for n in result.nodes if n.ok) == NODES
    # Each node's 100 bytes counted once, and the configuration once across the batches.
    assert (result.bytes_added, result.configurations_updated) == (7 * 101, 1)


def test_batched_syncs_count_every_byte_exactly_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet_of_seven(settings)
    HeldCounters(monkeypatch, rx=100)
    with open_fleet(settings, write=True) as fleet:
        sync_service.sync(fleet, batch_nodes=3, enforce_quota=False)
        again = sync_service.sync(fleet, batch_nodes=3, enforce_quota=False)
        assert again.bytes_added == 0  # the same absolute counters add nothing
    HeldCounters(monkeypatch, rx=150)
    with open_fleet(settings, write=True) as fleet:
        assert sync_service.sync(fleet, batch_nodes=5, enforce_quota=False).bytes_added == 7 * 50
        (usage,) = [u for u in fleet.store.usage() if u.configuration == "ops-1"]
    assert (usage.rx_bytes, usage.tx_bytes) == (7 * 150, 7)


def test_a_sync_cancelled_after_a_batch_keeps_it_and_says_so(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet_of_seven(settings)
    held = HeldCounters(monkeypatch, rx=100)

    def cancelled() -> bool:
        """Stopped before the second batch's transaction (the fetches all go on)."""
        return threading.current_thread() is threading.main_thread() and bool(held.batches)

    stopped = pytest.raises(Cancelled, match="2 of 7 nodes were accounted")
    with open_fleet(settings, write=True) as fleet, stopped:
        sync_service.sync(fleet, batch_nodes=2, enforce_quota=False, cancelled=cancelled)
    assert held.batches == [2]
    HeldCounters(monkeypatch, rx=100)
    with open_fleet(settings, write=True) as fleet:
        assert sync_service.sync(fleet, batch_nodes=2, enforce_quota=False).bytes_added == 5 * 101


def test_the_batch_size_is_at_least_one(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet, pytest.raises(ValueError, match="at least 1"):
        sync_service.sync(fleet, batch_nodes=0)


def test_each_batch_reads_the_ledger_of_its_own_nodes_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a batch holds of the store follows the batch: its nodes' configurations, and the
    quota pass a page at a time (pages of one configuration here)."""
    fleet_of_seven(settings)
    HeldCounters(monkeypatch, rx=100)
    asked: list[list[str]] = []
    pages: list[int] = []
    with open_fleet(settings, write=True) as fleet:
        read_ledger, read_pages = fleet.store.sync_ledger, fleet.store.quota_pages

        def ledger(nodes: Collection[str] | None = None, keys: Collection[str] = ()) -> Any:
            asked.append(sorted(nodes or ["the whole store"]))
            return read_ledger(nodes, keys)

        def quota_pages(size: int = 0) -> Iterator[Any]:
            for page in read_pages(1):
                pages.append(len(page.configurations))
                yield page

        monkeypatch.setattr(fleet.store, "sync_ledger", ledger)
        monkeypatch.setattr(fleet.store, "quota_pages", quota_pages)
        sync_service.sync(fleet, batch_nodes=3)
        configurations = len(fleet.store.configurations())
    assert asked == [NODES[0:3], NODES[3:6], NODES[6:7]]
    assert pages == [1] * configurations
