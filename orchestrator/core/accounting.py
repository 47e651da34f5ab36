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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

# While a node key rotation overlaps, the same peers also live on a second interface with
# counters of their own; their last-seen rows are kept apart under this prefix.
OVERLAP_PREFIX = "next:"


class LastSeen(NamedTuple):
    """A peer's counters as last accounted (a tuple: a sync reads and writes 100,000)."""

    epoch: str
    rx_bytes: int
    tx_bytes: int


class Sample(NamedTuple):
    """One peer's absolute counters as a node reported them (a tuple: a sync makes 100,000)."""

    public_key: str
    rx_bytes: int
    tx_bytes: int


class SampleColumns(Sequence[Sample]):
    """A node's samples kept as three columns, as the parser splits them: 100,000 Sample
    tuples would cost more to build than the parse itself. Reads like a sequence of Samples."""

    __slots__ = ("keys", "rx", "tx")

    def __init__(self, keys: list[str], rx: list[int], tx: list[int]) -> None:
        if not len(keys) == len(rx) == len(tx):
            raise ValueError("sample columns of different lengths")
        self.keys, self.rx, self.tx = keys, rx, tx

    def rows(self) -> Iterator[tuple[str, int, int]]:
        """Plain (key, rx, tx) tuples: the cheapest way through, for the accounting loop."""
        return zip(self.keys, self.rx, self.tx, strict=True)

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Sample, ...]: ...
    def __getitem__(self, index: int | slice) -> Sample | tuple[Sample, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        return Sample(self.keys[index], self.rx[index], self.tx[index])

    def __iter__(self) -> Iterator[Sample]:
        return map(Sample._make, self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"SampleColumns({list(self)!r})"


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
    previous = last_seen.get
    owner_of = owner.get
    rows = samples.rows() if isinstance(samples, SampleColumns) else samples
    for key, rx, tx in rows:
        if rx < 0 or tx < 0:
            raise ValueError(f"negative counter rx={rx} tx={tx}")
        new_last[key] = LastSeen(epoch, rx, tx)
        name = owner_of(key.removeprefix(OVERLAP_PREFIX))
        if name is None:
            unknown.append(key)
            continue
        # counter_delta, inlined: this loop runs once per peer of the fleet on every sync.
        last = previous(key)
        if not (last is None or last[0] != epoch or rx < last[1] or tx < last[2]):
            rx, tx = rx - last[1], tx - last[2]
        if rx or tx:
            old_rx, old_tx = usage.get(name, (0, 0))
            usage[name] = (old_rx + rx, old_tx + tx)
    return NodeAccounting(usage, new_last, tuple(sorted(unknown)))


def after_removal(epoch: str) -> LastSeen:
    """A peer removed from a node starts from zero if it is ever added back."""
    return LastSeen(epoch, 0, 0)


def encode_last_seen(last_seen: Mapping[str, LastSeen]) -> str:
    """A node's last-seen counters as one text (``key TAB epoch TAB rx TAB tx`` per line): the
    store keeps one row per node, not one per peer, so a sync writes 1,000 rows, not 100,000."""
    return "\n".join(f"{key}\t{e}\t{rx}\t{tx}" for key, (e, rx, tx) in last_seen.items())


def decode_last_seen(text: str) -> dict[str, LastSeen]:
    if not text:
        return {}
    fields = text.replace("\n", "\t").split("\t")
    if len(fields) % 4:
        raise ValueError("last-seen counters: each line needs a key, an epoch, rx and tx")
    rxs, txs = map(int, fields[2::4]), map(int, fields[3::4])
    return dict(zip(fields[0::4], map(LastSeen, fields[1::4], rxs, txs), strict=True))
