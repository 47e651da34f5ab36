"""The smallest store a top-up needs, and a good batch of top-ups for it; shared by the top-up
tests and the top-up fuzzing."""

from __future__ import annotations

import ipaddress

from orchestrator.core.models import Account, Configuration, Node, Plan
from orchestrator.service.context import Fleet

# The configuration ann-1's public key; the tests never use its private half.
ANN_KEY = "z" * 42 + "A="

# Two top-ups of ann-1 from billing, as JSON lines: 1000 bytes, then the plan `basic`.
JSONL_BATCH = (
    '{"configuration": "ann-1", "amount": "4.99", "invoice": "J-1", "bytes": 1000}\n'
    '{"configuration": "ann-1", "amount": "9", "invoice": "J-2", "plan": "basic"}\n'
)


def add_ann(fleet: Fleet) -> None:
    """node1, the plan `basic` (5000 bytes), the account ann and its configuration ann-1 on
    node1, written straight into the store (no node is reached)."""
    store = fleet.store
    store.upsert_node(Node("node1", "198.18.255.10", ipaddress.IPv4Network("198.19.9.0/24")))
    store.upsert_plan(Plan("basic", 5000))
    store.add_account(Account("ann", "scrypt$x", "dev"))
    store.add_configuration(
        Configuration("ann-1", "ann", ANN_KEY, None, {"node1": ipaddress.IPv4Address("198.19.9.2")})
    )
