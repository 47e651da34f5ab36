"""The background push worker on a real store whose nodes nobody answers (tests/unit/conftest):
it pushes what is pending, retries with a growing delay, waits out a held fleet lock, never
spins, and stops cleanly. That a configuration reaches real nodes through it is
tests/integration/test_push_worker.py's."""

from __future__ import annotations

from orchestrator.core.models import Account
from orchestrator.service import peers
from orchestrator.service.context import open_fleet
from orchestrator.service.push import pending_nodes
from orchestrator.service.push_worker import Backoff, PushWorker
from orchestrator.settings import Settings
from tests.push_rounds import RoundRecorder

ROUNDS_WAITED = 60.0  # how long a test waits for rounds it expects; never an assertion


def pending_configuration(settings: Settings) -> None:
    """A configuration committed without reaching its node: the node is pending."""
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ann", "scrypt$a", "dev-a"))
        peers.add_configuration(fleet, "ann", nodes=["node1"])
        assert "node1" in pending_nodes(fleet)


def test_unreachable_nodes_are_retried_with_a_growing_delay_and_the_worker_stops(
    settings: Settings,
) -> None:
    pending_configuration(settings)
    recorder = RoundRecorder(ROUNDS_WAITED)
    worker = PushWorker(settings, backoff=Backoff(first=0.01, most=0.04), on_round=recorder)
    worker.start()
    rounds = recorder.wait_for(4)
    assert worker.stop(timeout=ROUNDS_WAITED)
    assert not worker.running
    first = rounds[0]
    assert first.pending == ("node1", "node2") and first.left == ("node1", "node2")
    assert first.push is not None and {n.node for n in first.push.failed} == {"node1", "node2"}
    assert [r.delay for r in rounds[:4]] == [0.01, 0.02, 0.04, 0.04]  # doubled, capped
    assert all(r.error == "" for r in rounds)
    after_stop = len(recorder.rounds)
    worker.wake()  # a stopped worker does nothing any more
    assert len(recorder.rounds) == after_stop
    with open_fleet(settings) as fleet:
        assert pending_nodes(fleet) == ["node1", "node2"]  # still pending for the next one
        trail = [op.operation for op in fleet.store.operations(limit=100)]
    assert trail.count("push worker") >= 4  # each round in a writing session of its own


def test_a_held_fleet_lock_is_waited_out_not_queued_behind(settings: Settings) -> None:
    pending_configuration(settings)
    recorder = RoundRecorder(ROUNDS_WAITED)
    worker = PushWorker(settings, backoff=Backoff(first=0.01, most=0.02), on_round=recorder)
    with open_fleet(settings, write=True):  # a sync holding the lock
        worker.start()
        rounds = recorder.wait_for(2)
        assert all("holds" in r.error and r.push is None for r in rounds[:2])
    # The lock is free: the next round pushes (and fails: nobody answers here).
    count = len(recorder.rounds)
    rounds = recorder.wait_for(count + 1)
    assert worker.stop(timeout=ROUNDS_WAITED)
    assert rounds[count].error == "" and rounds[count].push is not None


def test_with_nothing_pending_it_sleeps_until_woken(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet:  # both nodes hold their desired state
        for node, (desired, _) in fleet.store.node_revisions().items():
            fleet.store.mark_pushed(node, desired, True)
    recorder = RoundRecorder(ROUNDS_WAITED)
    worker = PushWorker(settings, idle_poll=None, on_round=recorder)
    worker.start()
    (first,) = recorder.wait_for(1)
    assert first.pending == () and first.push is None and first.delay is None
    assert len(recorder.rounds) == 1  # asleep: no round without a wake
    worker.wake()
    recorder.wait_for(2)
    assert worker.stop(timeout=ROUNDS_WAITED)
    assert len(recorder.rounds) == 2
