"""Counts the listings show, made by the database (GROUP BY), on SQLite and PostgreSQL."""

from __future__ import annotations

from orchestrator.adapters.store import SqlStore
from orchestrator.core.models import Account
from tests.store.test_store import seed


def test_counts_per_account_and_per_node(store: SqlStore) -> None:
    seed(store)  # alice-1 on node1 and node2, bob-1 on node1
    store.add_account(Account("carol", "scrypt$z", "dev-c"))  # no configuration
    assert store.configuration_counts() == {"alice": 1, "bob": 1}
    assert store.placement_counts() == {"node1": 2, "node2": 1}
    store.remove_configurations(["alice-1"])
    assert store.configuration_counts() == {"bob": 1}
    assert store.placement_counts() == {"node1": 1}
