"""The aggregates the metrics read, on SQLite and PostgreSQL: counts only, one query each."""

from __future__ import annotations

from orchestrator.adapters.store import RowUsage, SqlStore
from orchestrator.core.models import DisabledReason
from tests.store.test_store import seed

NO_USAGE = RowUsage([], [], [], [])


def test_counts_per_node_and_state_and_the_last_sync(store: SqlStore) -> None:
    seed(store)  # alice-1 on node1 and node2, bob-1 on node1
    assert store.enabled_peer_counts() == {"node1": 2, "node2": 1}
    assert store.configuration_state_counts() == [(True, None, 2)]
    assert store.removal_counts() == {}
    assert store.node_sync_times() == {"node1": None, "node2": None}

    store.set_enabled(["bob-1"], False, DisabledReason.OVER_QUOTA)
    assert store.enabled_peer_counts() == {"node1": 1, "node2": 1}
    assert sorted(store.configuration_state_counts(), key=str) == sorted(
        [(True, None, 1), (False, DisabledReason.OVER_QUOTA, 1)], key=str
    )
    assert store.removal_counts() == {"node1": 1}

    store.apply_accounting(NO_USAGE, {}, ["node2"], synced_at=1_700_000_000)
    assert store.node_sync_times() == {"node1": None, "node2": 1_700_000_000}
    assert store.node_health()["node2"] == (None, True)
    store.mark_sync_failed(["node2"])
    store.apply_accounting(NO_USAGE, {}, ["node2"], synced_at=1_700_000_060)
    assert store.node_sync_times()["node2"] == 1_700_000_060  # every sync moves it
    assert store.node_health()["node2"] == (None, True)
