"""A node is not trusted, and no access outlives its revocation: the sync's vetting of node
answers and the store's pending removals, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from orchestrator.adapters.store import SqlStore, SyncLedger
from orchestrator.core.accounting import Sample
from orchestrator.core.collector import CounterReport
from orchestrator.core.models import Account, Configuration, DisabledReason
from orchestrator.errors import NodeError
from orchestrator.service.context import Fleet
from orchestrator.service.sync import account_reports
from orchestrator.service.usage import Observation, account_observations, usage_check
from orchestrator.settings import settings_from_mapping
from tests.store.test_store import A, seed

DAY = date(2026, 11, 23)
CAROL = "PUBc1="


@pytest.fixture
def fleet(store: SqlStore, tmp_path: Path) -> Iterator[Fleet]:
    """seed(): alice-1 (PUBa1=) on node1 and node2, bob-1 (PUBb1=) on node1; and carol-1 on
    node2 only."""
    seed(store)
    store.add_account(Account("carol", "scrypt$c", "dev-c"))
    store.add_configuration(
        Configuration("carol-1", "carol", CAROL, None, {"node2": A("198.19.2.3")})
    )
    settings = settings_from_mapping({"data_dir": str(tmp_path / "data")}, "test", tmp_path)
    yield Fleet(settings=settings, store=store, secrets=None, writes=True)  # type: ignore[arg-type]


def report(epoch: str, *samples: tuple[str, int, int], overlap: CounterReport | None = None):
    return CounterReport(
        epoch,
        tuple(Sample(*s) for s in samples),
        overlap=overlap,
        overlap_interface="wg0n" if overlap else "",
    )


def sync(fleet: Fleet, **answers: CounterReport | NodeError) -> dict[str, str]:
    """One run's accounting: node -> '' (accepted) or its error."""
    outcomes, _ = account_reports(fleet, dict(answers), DAY)
    return {o.node: o.error for o in outcomes}


def used(fleet: Fleet, name: str) -> int:
    return sum(u.total for u in fleet.store.usage(name))


def totals(fleet: Fleet) -> tuple[int, dict[str, int]]:
    store = fleet.store
    return store.used_total(), {c.name: used(fleet, c.name) for c in store.configurations()}


def test_a_node_cannot_charge_a_peer_placed_on_another_node(fleet: Fleet) -> None:
    assert sync(fleet, node1=report("e", ("PUBb1=", 10, 10)), node2=report("f")) == {
        "node1": "",
        "node2": "",
    }
    before = totals(fleet)
    # node2 claims bob's key (placed on node1 only) has moved 10 GB; node1 answers honestly.
    errors = sync(
        fleet,
        node1=report("e", ("PUBb1=", 15, 15)),
        node2=report("f", (CAROL, 5, 5), ("PUBb1=", 10**10, 10**10)),
    )
    assert errors["node1"] == ""
    assert errors["node2"].startswith("counters refused, peer PUBb1=")
    assert "(placed on other nodes only)" in errors["node2"]
    used_total, by_config = totals(fleet)
    # Only node1's 10 bytes moved; carol's honest 10 on node2 wait for node2's next good answer.
    assert by_config == {**before[1], "bob-1": before[1]["bob-1"] + 10}
    assert used_total == before[0] + 10
    assert fleet.store.last_seen("node2") == {}
    assert fleet.store.node_health()["node2"][1] is False  # named as failed
    assert fleet.store.node_health()["node1"][1] is True
    assert usage_check(fleet) == []


def test_a_key_the_store_never_placed_refuses_the_answer(fleet: Fleet) -> None:
    stranger = "PUBstranger="
    errors = sync(fleet, node1=report("e", ("PUBa1=", 1, 1), (stranger, 5, 5)))
    assert "peer PUBstrange... is not placed on this node (unknown to the store)" in errors["node1"]
    assert totals(fleet) == (0, {"alice-1": 0, "bob-1": 0, "carol-1": 0})


def test_a_placed_peer_missing_within_an_epoch_is_the_node_s_error_not_a_reset(
    fleet: Fleet,
) -> None:
    assert sync(fleet, node1=report("e", ("PUBa1=", 100, 0), ("PUBb1=", 10, 0)))["node1"] == ""
    # bob's peer left out of one answer...
    errors = sync(fleet, node1=report("e", ("PUBa1=", 150, 0)))
    assert "peer PUBb1= is missing from the answer within epoch e" in errors["node1"]
    # ...and back in the next with its counters started over: not counted again from zero.
    errors = sync(fleet, node1=report("e", ("PUBa1=", 160, 0), ("PUBb1=", 4, 0)))
    assert "the counters of peer PUBb1= went backwards within epoch e" in errors["node1"]
    assert (used(fleet, "alice-1"), used(fleet, "bob-1")) == (100, 10)
    # Back with its counters where they were: the node is believed again, every byte once.
    assert sync(fleet, node1=report("e", ("PUBa1=", 160, 0), ("PUBb1=", 12, 0)))["node1"] == ""
    assert (used(fleet, "alice-1"), used(fleet, "bob-1")) == (160, 12)
    # A new epoch (the interface restarted) resets: counted from zero, and no peer is owed.
    assert sync(fleet, node1=report("r", ("PUBa1=", 5, 0)))["node1"] == ""
    assert (used(fleet, "alice-1"), used(fleet, "bob-1")) == (165, 12)
    assert usage_check(fleet) == []


def test_a_removal_the_controller_made_excuses_a_missing_peer_and_bills_its_last_bytes(
    fleet: Fleet,
) -> None:
    store = fleet.store
    assert sync(fleet, node1=report("e", ("PUBa1=", 100, 0), ("PUBb1=", 10, 0)))["node1"] == ""
    with store.transaction():
        store.set_enabled(["bob-1"], False, DisabledReason.OPERATOR)
    assert store.pending_removals() == {"node1": {"PUBb1="}}
    # Still on the node (the push has not reached it): its bytes still bill bob-1.
    assert sync(fleet, node1=report("e", ("PUBa1=", 100, 0), ("PUBb1=", 30, 0)))["node1"] == ""
    assert used(fleet, "bob-1") == 30
    # Gone from the node before the controller heard back: not the node's error.
    assert sync(fleet, node1=report("e", ("PUBa1=", 100, 0)))["node1"] == ""
    assert store.confirm_removals("node1", {"PUBb1="}, {"PUBb1="}) is False
    assert set(store.last_seen("node1")) == {"PUBa1="}
    # Placed again: counted from zero on its return, which is exact (it was removed).
    with store.transaction():
        store.set_enabled(["bob-1"], True, None)
    assert store.pending_removals() == {}
    assert sync(fleet, node1=report("e", ("PUBa1=", 100, 0), ("PUBb1=", 3, 0)))["node1"] == ""
    assert used(fleet, "bob-1") == 33


def test_a_deleted_account_s_key_is_believed_where_its_removal_is_pending_and_bills_nobody(
    fleet: Fleet,
) -> None:
    store = fleet.store
    assert sync(fleet, node2=report("f", (CAROL, 10, 10), ("PUBa1=", 1, 1)))["node2"] == ""
    store.delete_account("carol")
    assert store.pending_removals() == {"node2": {CAROL}}
    assert store.account_records("alice")["pending_removals"] == []  # never an account's row
    used_total = store.used_total()
    assert sync(fleet, node2=report("f", (CAROL, 99, 99), ("PUBa1=", 1, 1)))["node2"] == ""
    assert store.used_total() == used_total and set(store.last_seen("node2")) == {"PUBa1="}
    # On node1, where it never was, the same key refuses the answer.
    errors = sync(fleet, node1=report("e", (CAROL, 1, 1)))
    assert "not placed on this node (unknown to the store)" in errors["node1"]
    assert usage_check(fleet) == []


def test_a_replaced_key_is_believed_through_its_grace_and_its_removal(fleet: Fleet) -> None:
    store = fleet.store
    store.begin_peer_rotation("alice-1", "PUBa2=", None, DAY, 5000)
    answer = report("e", ("PUBa1=", 10, 0), ("PUBa2=", 1, 0), ("PUBb1=", 0, 0))
    assert sync(fleet, node1=answer)["node1"] == ""
    store.retire_ended_keys(5000)  # the grace ended: PUBa1= is leaving node1 and node2
    answer = report("e", ("PUBa1=", 12, 0), ("PUBa2=", 5, 0), ("PUBb1=", 0, 0))
    assert sync(fleet, node1=answer)["node1"] == ""
    assert used(fleet, "alice-1") == 17  # the leaving key's last bytes are the configuration's
    # Confirmed off node1: from now on it is a stranger there.
    store.confirm_removals("node1", {"PUBa1="}, {"PUBa1="})
    errors = sync(fleet, node1=report("e", ("PUBa1=", 12, 0), ("PUBa2=", 5, 0), ("PUBb1=", 0, 0)))
    assert "peer PUBa1= is not placed on this node" in errors["node1"]


def test_the_overlap_interface_is_held_to_the_same_rules(fleet: Fleet) -> None:
    overlap = report("x", ("PUBa1=", 4, 4), ("PUBb1=", 1, 1))
    errors = sync(fleet, node1=report("e", ("PUBa1=", 1, 1), ("PUBb1=", 1, 1), overlap=overlap))
    assert errors == {"node1": ""} and used(fleet, "alice-1") == 10
    assert set(fleet.store.last_seen("node1")) == {"PUBa1=", "PUBb1=", "next:PUBa1=", "next:PUBb1="}
    # A peer missing from the overlap within its epoch; then one placed elsewhere on it.
    overlap = report("x", ("PUBa1=", 4, 4))
    errors = sync(fleet, node1=report("e", ("PUBa1=", 1, 1), ("PUBb1=", 1, 1), overlap=overlap))
    assert "peer PUBb1= is missing from the answer within epoch x" in errors["node1"]
    overlap = report("x", ("PUBa1=", 4, 4), ("PUBb1=", 1, 1), (CAROL, 7, 7))
    errors = sync(fleet, node1=report("e", ("PUBa1=", 1, 1), ("PUBb1=", 1, 1), overlap=overlap))
    assert "peer PUBc1= is not placed on this node" in errors["node1"]
    assert used(fleet, "carol-1") == 0


def test_counters_that_would_overflow_the_store_s_totals_fail_that_node_only(
    fleet: Fleet,
) -> None:
    fleet.store.add_usage("alice-1", date(2026, 11, 5), 2**63 - 1 - 100, 0)
    errors = sync(
        fleet,
        node1=report("e", ("PUBb1=", 60, 0)),
        node2=report("f", (CAROL, 2**62, 2**62)),
    )
    assert errors["node1"] == ""
    assert errors["node2"].startswith("counters refused, counters out of range: ")
    assert fleet.store.used_total() == 2**63 - 1 - 40
    # Within what is left, a node lands; past it, by name order, the next is refused.
    errors = sync(fleet, node1=report("e", ("PUBb1=", 90, 0)), node2=report("f", (CAROL, 20, 0)))
    assert errors["node1"] == "" and "out of range" in errors["node2"]
    assert usage_check(fleet) == []


def test_an_unreachable_node_and_a_refused_one_are_both_named(fleet: Fleet) -> None:
    errors = sync(
        fleet,
        node1=NodeError("node1", "connection refused"),
        node2=report("f", ("PUBstranger=", 1, 1)),
    )
    assert errors["node1"] == "connection refused" and errors["node2"].startswith("counters")
    assert fleet.store.node_health() == {"node1": (None, False), "node2": (None, False)}


def test_a_push_s_removed_peers_bill_only_keys_the_store_took_off_that_node(
    fleet: Fleet,
) -> None:
    assert sync(fleet, node1=report("e", ("PUBb1=", 10, 0)))["node1"] == ""
    # The removal counters of a push: bob's went backwards within the epoch, not believed.
    removed = [Observation("node1", "e", [Sample("PUBb1=", 5, 0)], removed=True)]
    [result] = account_observations(fleet, removed, DAY, vet=True)
    assert "went backwards" in result.problem and used(fleet, "bob-1") == 10
    [result] = account_observations(
        fleet, [Observation("node1", "e", [Sample("PUBb1=", 15, 0)], removed=True)], DAY, vet=True
    )
    assert result.problem == "" and used(fleet, "bob-1") == 15
    assert fleet.store.last_seen("node1") == {}  # removed: counted from zero if ever back


# --- the store's pending removals ---------------------------------------------------------------


def test_every_change_that_takes_a_key_off_a_node_records_its_removal(fleet: Fleet) -> None:
    store = fleet.store
    store.begin_peer_rotation("alice-1", "PUBa2=", None, DAY, 5000)
    with store.transaction():
        store.set_enabled(["alice-1"], False, DisabledReason.OVER_QUOTA)
    both = {"PUBa1=", "PUBa2="}
    assert store.pending_removals() == {"node1": both, "node2": both}
    assert store.pending_removals(["node2"]) == {"node2": both}
    with store.transaction():
        store.set_enabled(["alice-1"], True, None)  # its current key is placed back
    assert store.pending_removals() == {"node1": {"PUBa1="}, "node2": {"PUBa1="}}
    store.update_configuration("bob-1", plan=None, quota_bytes=1000, addresses={})
    assert store.pending_removals()["node1"] == {"PUBa1=", "PUBb1="}
    store.update_configuration(
        "bob-1", plan=None, quota_bytes=1000, addresses={"node1": A("198.19.1.3")}
    )
    assert store.pending_removals()["node1"] == {"PUBa1="}  # placed back before it left
    store.remove_configurations(["carol-1"])
    assert store.pending_removals()["node2"] == {"PUBa1=", CAROL}
    exported = store.account_records("alice")["pending_removals"]
    assert exported == [
        {"configuration": "alice-1", "node": "node1", "public_key": "PUBa1="},
        {"configuration": "alice-1", "node": "node2", "public_key": "PUBa1="},
    ]
    # A removed configuration's keys are unlinked: nothing ties them to an account any more.
    unlinked = store.db.execute(
        "SELECT COUNT(*) FROM pending_removals WHERE configuration_id IS NULL"
    )
    assert unlinked == [(1,)]
    assert store.confirm_removals("node2", {CAROL, "PUBa1="}, {CAROL}) is True
    assert store.pending_removals() == {"node1": {"PUBa1="}}


def test_a_batch_s_ledger_holds_its_nodes_configurations_and_answers_for_any_key(
    fleet: Fleet,
) -> None:
    """A sync reads the ledger of its batch of nodes only (its memory follows the batch), yet
    every key an answer holds is owned, leaving or unknown exactly as in the whole store's."""
    store = fleet.store
    store.begin_peer_rotation("alice-1", "PUBa2=", None, DAY, 5000)
    store.retire_ended_keys(5000)  # PUBa1= leaving node1 and node2
    store.confirm_removals("node1", {"PUBa1="}, {"PUBa1="})  # ...and now node2 only
    whole = store.sync_ledger()
    keys = ["PUBa1=", "PUBa2=", "PUBb1=", CAROL, "PUBstranger="]
    scoped = store.sync_ledger(nodes=["node1"], keys=keys)
    assert sorted(scoped.names) == ["alice-1", "bob-1", "carol-1"]  # carol: her key was asked
    assert sorted(store.sync_ledger(nodes=["node1"]).names) == ["alice-1", "bob-1"]

    def answers(ledger: SyncLedger) -> dict[str, tuple[str | None, bool]]:
        return {
            k: (ledger.names[ledger.owners[k]] if k in ledger.owners else None, k in ledger.leaving)
            for k in keys
        }

    assert answers(scoped) == answers(whole)
    assert answers(whole)["PUBa1="] == ("alice-1", True)
    # Where the leaving key is still pending, the batch's ledger knows it without being asked.
    assert store.sync_ledger(nodes=["node2"]).leaving == {"PUBa1="}
