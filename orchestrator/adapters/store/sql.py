"""The quota store over SQL: one implementation, two engines (SQLite, PostgreSQL).

``SqlStore`` is the one type callers use; it is composed of one mixin per concern, each in a
module of its own with its SQL beside its Python, all sharing the connection and transaction
of ``base.py``:

| module | owns |
| --- | --- |
| ``base.py`` | the connection, transactions, reading rows |
| ``migrations.py``, ``schema*.py`` | schema version, upgrades, the live schema |
| ``nodes.py`` | nodes, their keys, revisions and health; the controller's SSH keys |
| ``networks.py`` | the fleet's IPv6 prefix and each node's /64 |
| ``leases.py`` | which run syncs which node |
| ``policies.py`` | the fleet file's policies |
| ``accounts.py`` | accounts, their export and erasure |
| ``configurations.py`` | configurations and their placements on nodes |
| ``peer_keys.py`` | peer and preshared key rotations, grace, retired keys |
| ``removals.py`` | removals pending on nodes (no access outlives its revocation) |
| ``counters.py`` | each node's last-seen counters |
| ``usage.py`` | usage and running totals, daily totals per node |
| ``ledger.py`` | what a sync reads once and lands together |
| ``billing.py`` | plans, top-ups, notifications |
| ``quota_pages.py`` | the quota pass's reads, a page of configurations at a time |
| ``operations.py`` | the trail of writing sessions (what ran, where, when, how it ended) |
| ``sealed.py`` | secrets the nodes need again (preshared keys), sealed; the fleet key's id |
| ``tokens.py`` | the HTTP API's tokens (scopes, expiry, revocation; a hash, never a secret) |
| ``controllers.py`` | the fleet's controllers and their public SSH keys |
| ``monitoring.py`` | the aggregates the monitoring metrics read |

A concern's mixin derives from the concerns whose methods it calls, so its class line says
what it depends on (and mypy checks every call).
"""

from __future__ import annotations

from orchestrator.adapters.store.accounts import ACCOUNT_TABLES, NOT_ACCOUNT_DATA, AccountsStore
from orchestrator.adapters.store.base import Connection
from orchestrator.adapters.store.controllers import ControllersStore
from orchestrator.adapters.store.leases import LeasesStore
from orchestrator.adapters.store.ledger import LedgerStore, RowUsage, SyncLedger
from orchestrator.adapters.store.monitoring import MonitoringStore
from orchestrator.adapters.store.operations import OperationsStore
from orchestrator.adapters.store.peer_keys import PeerKeysStore
from orchestrator.adapters.store.policies import PoliciesStore
from orchestrator.adapters.store.quota_pages import QuotaPagesStore
from orchestrator.adapters.store.sealed import SealedSecretsStore
from orchestrator.adapters.store.tokens import TokensStore
from orchestrator.adapters.store.usage import RunningTotals

__all__ = [
    "ACCOUNT_TABLES",
    "NOT_ACCOUNT_DATA",
    "Connection",
    "RowUsage",
    "RunningTotals",
    "SqlStore",
    "SyncLedger",
]


class SqlStore(
    AccountsStore,
    PeerKeysStore,
    LedgerStore,
    QuotaPagesStore,
    LeasesStore,
    PoliciesStore,
    OperationsStore,
    TokensStore,
    ControllersStore,
    MonitoringStore,
    SealedSecretsStore,
):
    """The fleet's desired state and its only usage data."""
