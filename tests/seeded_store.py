"""The pieces every seeded test store is built from: fixed keys, nodes that are never reached
and configurations placed by a fixed rule, so the TUI's and the metrics' seeds agree on them.

Node ``nodeN`` sits at an address never reached (tests/worker_space.py) with the tunnel
network 198.19.(N-1).0/24; configuration number ``n`` gets key(n) and the address .(n+1)
in each of its nodes' networks.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from orchestrator.adapters.store import SqlStore
from orchestrator.core.models import Configuration, Node
from tests.worker_space import unreached_node_address

TODAY = date(2024, 5, 15)


def key(n: int) -> str:
    """A valid, fixed WireGuard public key."""
    return base64.b64encode(n.to_bytes(4, "big") + bytes(28)).decode()


def add_nodes(
    store: SqlStore,
    key_dates: Sequence[date | None],
    address: Callable[[int], str] = unreached_node_address,
) -> None:
    """node1, node2, ... one per entry, at ``address(10 + i)``; a node with a key date has the
    key key(1000 + i), a node without one has no key yet."""
    for i, created in enumerate(key_dates):
        store.upsert_node(
            Node(
                f"node{i + 1}",
                address(10 + i),
                ipaddress.IPv4Network(f"198.19.{i}.0/24"),
                public_key=None if created is None else key(1000 + i),
                key_created_on=created,
            )
        )


def add_configuration(
    store: SqlStore, name: str, account: str, n: int, nodes: list[str], **fields: Any
) -> Configuration:
    """Configuration number ``n`` on ``nodes``, its key made TODAY; what was stored."""
    addresses = {
        node: ipaddress.IPv4Address(f"198.19.{int(node[-1]) - 1}.{n + 1}") for node in nodes
    }
    configuration = Configuration(
        name, account, key(n), None, addresses, key_created_on=TODAY, **fields
    )
    store.add_configuration(configuration)
    return configuration
