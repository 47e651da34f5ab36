"""The push worker on the lab: a configuration a writer committed without pushing reaches the
nodes through it; 50 parallel top-ups (10 replays of one invoice) go through while a sync holds
the fleet lock and its node leases, each invoice counted once, totals exact, and a cut-off
configuration topped up during the sync is back on the nodes after the worker's push."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from orchestrator.core.quota import NEVER_RESETS
from orchestrator.errors import FleetBusy
from orchestrator.service import notify, peer_batch, peers
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.service.push import pending_nodes
from orchestrator.service.push_worker import Backoff, PushWorker
from orchestrator.service.usage import usage_check
from tests.conftest import Lab
from tests.integration.fleet_lab import account, root, wgfleet
from tests.push_rounds import RoundRecorder

pytestmark = pytest.mark.lab

WAITED = 300.0  # how long the test waits for the worker's rounds; never an assertion
GiB = 2**30


def on_node(lab: Lab, layout, index: int, key: str) -> bool:
    return key in root(lab, layout, index, ["wg", "show", "wg0", "peers"]).split()


def test_a_configuration_committed_without_a_push_reaches_the_nodes_through_the_worker(
    lab: Lab, layout, fleet: Fleet
) -> None:
    account(fleet, "queued")
    rounds = RoundRecorder(WAITED)
    worker = PushWorker(lab.settings, backoff=Backoff(0.5, 5.0), on_round=rounds)
    worker.start()
    try:
        rounds.until(lambda r: not r.left)  # whatever was pending before is pushed
        with open_fleet(lab.settings, write=True, operation="api") as writer:
            made = peer_batch.add_configurations(
                writer, "- {account: queued, nodes: all}\n", "request", push_now=False
            )
            assert made.push.nodes == () and made.push.skipped == ("node1", "node2", "node3")
            assert pending_nodes(writer) == ["node1", "node2", "node3"]
        key = made.created[0].configuration.public_key
        assert not on_node(lab, layout, 0, key)  # the writer answered before any push
        count = len(rounds.rounds)
        worker.wake()
        done = rounds.until(
            lambda r: rounds.rounds.index(r) >= count and r.push is not None and not r.left
        )
        assert {n.node for n in done.push.nodes if n.ok} == {"node1", "node2", "node3"}
    finally:
        assert worker.stop(timeout=WAITED)
    assert all(on_node(lab, layout, i, key) for i in range(3))


def test_topups_during_a_sync_wait_for_nothing_and_a_cut_off_one_comes_back(
    lab: Lab, layout, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    account(fleet, "payer")
    names = [
        peers.add_configuration(fleet, "payer", nodes=None, quota_bytes=1000).configuration.name
        for _ in range(4)
    ]
    cut = names[0]
    fleet.store.add_usage(cut, NEVER_RESETS, 5000, 0)  # over its 1000 bytes
    with open_fleet(lab.settings, write=True, operation="sync") as first:
        assert cut in sync_service.sync(first).over_quota
    key = fleet.store.configuration(cut).public_key
    assert not any(on_node(lab, layout, i, key) for i in range(3))

    requests = [(names[i % 4], f"LAB-INV-{i}") for i in range(40)]
    requests += [(names[1], "LAB-INV-REPLAYED")] * 10
    outcomes: list[tuple[str, bool]] = []
    lock_held: list[bool] = []
    rounds = RoundRecorder(WAITED)
    worker = PushWorker(lab.settings, backoff=Backoff(0.5, 2.0), on_round=rounds)

    def topup(request: tuple[str, str]) -> tuple[str, bool]:
        with open_fleet(lab.settings, store_only=True, operation="topup") as session:
            recorded, created = peers.topup(
                session, request[0], invoice=request[1], amount="4.99", bytes_granted=GiB
            )
        worker.wake()  # what the HTTP API does after its commit
        return recorded.invoice, created

    def lock_is_held() -> bool:
        try:
            with open_fleet(lab.settings, write=True, wait=False):
                return False
        except FleetBusy:
            return True

    deliver = notify.deliver_pending

    def topups_while_the_sync_runs(*args: Any, **kwargs: Any) -> Any:
        # The sync has pushed and still holds the fleet lock and its node leases.
        with ThreadPoolExecutor(max_workers=10) as pool:
            outcomes.extend(pool.map(topup, requests))
        with ThreadPoolExecutor(max_workers=1) as other:  # another thread: the lock is held
            lock_held.append(other.submit(lock_is_held).result())
        return deliver(*args, **kwargs)

    monkeypatch.setattr(notify, "deliver_pending", topups_while_the_sync_runs)
    worker.start()
    try:
        with open_fleet(lab.settings, write=True, operation="sync") as syncing:
            sync_service.sync(syncing)
        monkeypatch.undo()
        assert lock_held == [True] and len(outcomes) == 50
        assert fleet.store.configuration(cut).enabled  # the top-up let it back
        rounds.until(lambda r: r.push is not None and not r.left)
    finally:
        assert worker.stop(timeout=WAITED)
    assert all(on_node(lab, layout, i, key) for i in range(3))

    created = sorted(invoice for invoice, new in outcomes if new)
    assert created == sorted({f"LAB-INV-{i}" for i in range(40)} | {"LAB-INV-REPLAYED"})
    granted = fleet.store.running_totals().granted
    assert [granted[n] for n in names] == [10 * GiB, 11 * GiB, 10 * GiB, 10 * GiB]
    assert usage_check(fleet) == []
    checked = wgfleet(lab, "usage", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
