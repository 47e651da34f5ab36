"""Exact, reset-safe accounting of WireGuard transfer counters.

Nodes report absolute counters per peer, never reset by us. Per (node, peer) the store keeps the
last absolute pair seen and the interface epoch it was seen in. The bytes to add are:

- ``current - last`` while the epoch is unchanged and neither counter went backwards;
- ``current`` when the epoch changed (interface restart, reboot) or a counter went backwards
  (peer removed and added again), because counting restarted from zero in between.

Replaying the same observation adds nothing; every observation is applied in one transaction
with its new "last seen", so a crash anywhere counts each byte exactly once on the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

# While a node key rotation overlaps, the same peers also live on a second interface with
# counters of their own; their last-seen rows are kept apart under this prefix.
OVERLAP_PREFIX = "next:"


@dataclass(frozen=True)
class LastSeen:
    epoch: str
    rx_bytes: int
    tx_bytes: int


class Sample(NamedTuple):
    """One peer's absolute counters as a node reported them (a tuple: a sync makes 100,000)."""

    public_key: str
    rx_bytes: int
    tx_bytes: int


def counter_delta(last: LastSeen | None, epoch: str, rx: int, tx: int) -> tuple[int, int]:
    if rx < 0 or tx < 0:
        raise ValueError(f"negative counter rx={rx} tx={tx}")
    if last is None or last.epoch != epoch or rx < last.rx_bytes or tx < last.tx_bytes:
        return rx, tx
    return rx - last.rx_bytes, tx - last.tx_bytes


@dataclass(frozen=True)
class NodeAccounting:
    """What one node's observation changes: usage per configuration and the new last-seen."""

    usage: dict[str, tuple[int, int]]  # configuration -> (rx, tx) to add
    last_seen: dict[str, LastSeen]  # public key -> new last seen
    unknown_keys: tuple[str, ...]  # peers on the node that no configuration owns

    @property
    def bytes_added(self) -> int:
        return sum(rx + tx for rx, tx in self.usage.values())


def account_node(
    epoch: str,
    samples: Iterable[Sample],
    last_seen: Mapping[str, LastSeen],
    owner: Mapping[str, str],
) -> NodeAccounting:
    """Fold one node's counters into usage per configuration (``owner``: public key -> name)."""
    usage: dict[str, tuple[int, int]] = {}
    new_last: dict[str, LastSeen] = {}
    unknown: list[str] = []
    for sample in samples:
        new_last[sample.public_key] = LastSeen(epoch, sample.rx_bytes, sample.tx_bytes)
        name = owner.get(sample.public_key.removeprefix(OVERLAP_PREFIX))
        if name is None:
            unknown.append(sample.public_key)
            continue
        rx, tx = counter_delta(
            last_seen.get(sample.public_key), epoch, sample.rx_bytes, sample.tx_bytes
        )
        if rx or tx:
            old_rx, old_tx = usage.get(name, (0, 0))
            usage[name] = (old_rx + rx, old_tx + tx)
    return NodeAccounting(usage, new_last, tuple(sorted(unknown)))


def after_removal(epoch: str) -> LastSeen:
    """A peer removed from a node starts from zero if it is ever added back."""
    return LastSeen(epoch, 0, 0)
