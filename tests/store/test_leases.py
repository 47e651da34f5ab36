"""Node leases: two runs never hold one node; a lease ends with its run, or its holder."""

from __future__ import annotations

import threading

from orchestrator.adapters.store import SqlStore, open_store
from orchestrator.errors import StoreConflict
from orchestrator.service.retry import retry_conflicts

NODES = ["n1", "n2", "n3"]


def test_a_second_run_gets_only_the_nodes_nobody_holds(store: SqlStore, store_url: str) -> None:
    other = open_store(store_url)
    try:
        with store.lease_nodes(["n1", "n2"], "run-a") as first:
            assert first == {"n1", "n2"}
            with other.lease_nodes(NODES, "run-b") as second:
                assert second == {"n3"}
        with other.lease_nodes(NODES, "run-b") as after:
            assert after == set(NODES)
    finally:
        other.close()


def test_a_lease_is_released_when_the_run_fails(store: SqlStore, store_url: str) -> None:
    try:
        with store.lease_nodes(NODES, "run-a"):
            raise RuntimeError("the run died")
    except RuntimeError:
        pass
    other = open_store(store_url)
    try:
        with other.lease_nodes(NODES, "run-b") as claimed:
            assert claimed == set(NODES)
    finally:
        other.close()


def test_a_dead_holders_lease_is_taken_over(store: SqlStore, store_url: str) -> None:
    """PostgreSQL: the dead controller's connection drops and its row locks with it.
    SQLite: its rows lapse after LEASE_SECONDS."""
    dead = open_store(store_url)
    lease = dead.lease_nodes(NODES, "dead-run")
    assert lease.__enter__() == set(NODES)
    if store.db.dialect == "postgresql":
        dead.close()  # the process died: the server ends its sessions
        # the lease's own connection is gone with the process too; a new one must not wait
        lease.gen.close()  # type: ignore[attr-defined]
    else:
        store.db.execute("UPDATE node_leases SET expires_at = 0")
    with store.lease_nodes(NODES, "run-b") as claimed:
        assert claimed == set(NODES)
    if store.db.dialect == "sqlite":
        lease.gen.close()  # type: ignore[attr-defined]
        dead.close()


def test_concurrent_leases_split_the_nodes_without_overlap(store: SqlStore, store_url: str) -> None:
    names = [f"n{i}" for i in range(200)]
    claims: dict[int, set[str]] = {}
    barrier = threading.Barrier(4)
    release = threading.Event()

    def run(index: int) -> None:
        own = open_store(store_url)
        try:
            barrier.wait()
            with own.lease_nodes(names, f"run-{index}") as claimed:
                claims[index] = claimed
                release.wait(10)
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    while len(claims) < 4 and any(t.is_alive() for t in threads):
        threading.Event().wait(0.05)
    release.set()
    for thread in threads:
        thread.join()
    seen: list[str] = [n for claimed in claims.values() for n in claimed]
    assert len(seen) == len(set(seen)), "a node was leased twice"
    assert set(seen) == set(names)


def test_retry_runs_a_conflicted_transaction_again() -> None:
    attempts = []

    def work() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise StoreConflict("deadlock detected")
        return "landed"

    assert retry_conflicts(work) == "landed"
    assert len(attempts) == 3


def test_a_run_killed_on_this_machine_frees_its_nodes_at_once(
    store: SqlStore, store_url: str
) -> None:
    """A cron sync killed mid-run must not keep its nodes from the next minute's sync."""
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_holder = f"{socket.gethostname()}:{gone.pid}:cafe"
    dead = open_store(store_url)
    lease = dead.lease_nodes(NODES, dead_holder)
    assert lease.__enter__() == set(NODES)
    if store.db.dialect == "postgresql":
        lease.gen.close()  # type: ignore[attr-defined]  # its connection dies with it
    with store.lease_nodes(NODES, "next-run") as claimed:
        assert claimed == set(NODES)
    if store.db.dialect == "sqlite":
        lease.gen.close()  # type: ignore[attr-defined]
    dead.close()
