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

from collections.abc import Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import methodcaller, or_, sub
from typing import Any, Generic, NamedTuple, TypeVar, cast, overload

from orchestrator.core.errors import NodeAnswerInvalid

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
            raise NodeAnswerInvalid("sample columns of different lengths")
        self.keys, self.rx, self.tx = keys, rx, tx

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> SampleColumns:
        if isinstance(samples, SampleColumns):
            return samples
        rows = list(samples)
        return cls([s[0] for s in rows], [s[1] for s in rows], [s[2] for s in rows])

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
        raise NodeAnswerInvalid(f"negative counter rx={rx} tx={tx}")
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
    last_seen: Mapping[str, LastSeen] | PeerCounters,
    owner: Mapping[str, str],
) -> NodeAccounting:
    """Fold one node's counters into usage per configuration (``owner``: public key -> name):
    ``account_columns`` with mappings in and out."""
    columns = SampleColumns.of(samples)
    result = account_columns(
        epoch, columns.keys, columns.rx, columns.tx, PeerCounters.of(last_seen), owner
    )
    return NodeAccounting(result.usage, result.seen.as_dict(), result.unknown_keys)


def after_removal(epoch: str) -> LastSeen:
    """A peer removed from a node starts from zero if it is ever added back."""
    return LastSeen(epoch, 0, 0)


# --- columns: what a sync runs on --------------------------------------------------------------
#
# A sync folds 100,000 counters. Per node, the peers come in the order the node lists them, which
# only changes when a peer is added or removed; the store keeps each node's last-seen counters in
# that order. When a node lists the same peers as last time (one list comparison), the deltas are
# column arithmetic in C (map over the lists), with no object or dictionary lookup per counter;
# anything else (peers added or removed, a restart, a counter that went backwards, a rotation's
# overlap) takes the per-peer path with the same rules as ``account_node``.


class PeerCounters:
    """One node's last-seen counters as columns, in the node's own peer order.

    ``stored``: the text the store's row holds for exactly these keys, when known; a write then
    leaves the keys alone and rewrites the numbers only. ``saved``: the store's row holds
    exactly these counters (read from it and unchanged since), so there is nothing to write.
    """

    __slots__ = ("epochs", "keys", "rx", "saved", "stored", "tx")

    def __init__(
        self,
        keys: list[str],
        epochs: list[str],
        rx: list[int],
        tx: list[int],
        stored: str | None = None,
        *,
        saved: bool = False,
    ) -> None:
        if not len(keys) == len(epochs) == len(rx) == len(tx):
            raise NodeAnswerInvalid("last-seen columns of different lengths")
        self.keys, self.epochs, self.rx, self.tx, self.stored = keys, epochs, rx, tx, stored
        self.saved = saved and stored is not None

    @classmethod
    def of(cls, seen: Mapping[str, LastSeen] | PeerCounters) -> PeerCounters:
        if isinstance(seen, PeerCounters):
            return seen
        keys = list(seen)
        values = [seen[k] for k in keys]
        return cls(keys, [v[0] for v in values], [v[1] for v in values], [v[2] for v in values])

    def as_dict(self) -> dict[str, LastSeen]:
        return dict(zip(self.keys, map(LastSeen, self.epochs, self.rx, self.tx), strict=True))

    def __len__(self) -> int:
        return len(self.keys)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PeerCounters):
            return self.as_dict() == other.as_dict()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PeerCounters({self.as_dict()!r})"

    def without(self, keys: Collection[str]) -> PeerCounters:
        """These counters but for ``keys`` (order kept)."""
        drop = set(keys)
        if not drop or drop.isdisjoint(self.keys):
            return self
        kept = [i for i, key in enumerate(self.keys) if key not in drop]
        return PeerCounters(
            [self.keys[i] for i in kept],
            [self.epochs[i] for i in kept],
            [self.rx[i] for i in kept],
            [self.tx[i] for i in kept],
        )


def encode_counters(counters: PeerCounters) -> tuple[str, str]:
    """(peers, counters) texts for the store's row: the keys one a line; then the epochs (one
    for all when they agree, else one per peer), the rx and the tx counters, a line each."""
    if not counters.keys:
        return "", ""
    peers = counters.stored if counters.stored is not None else "\n".join(counters.keys)
    epochs = counters.epochs
    epoch_line = epochs[0] if epochs.count(epochs[0]) == len(epochs) else "\t".join(epochs)
    numbers = "\t".join(map(str, counters.rx)), "\t".join(map(str, counters.tx))
    return peers, f"{epoch_line}\n{numbers[0]}\n{numbers[1]}"


def decode_counters(peers: str | None, counters: str) -> PeerCounters:
    """The store's row back as columns; ``peers`` None: a row written before the columns (one
    ``key TAB epoch TAB rx TAB tx`` line per peer in ``counters``)."""
    if peers is None:
        return PeerCounters.of(decode_last_seen(counters))
    if not peers:
        if counters:
            raise NodeAnswerInvalid("last-seen counters without peers")
        return PeerCounters([], [], [], [])
    keys = peers.split("\n")
    lines = counters.split("\n")
    if len(lines) != 3:
        raise NodeAnswerInvalid("last-seen counters: expected epochs, rx and tx lines")
    epochs = lines[0].split("\t")
    if len(epochs) == 1:
        epochs *= len(keys)
    rx, tx = list(map(int, lines[1].split("\t"))), list(map(int, lines[2].split("\t")))
    if not len(keys) == len(epochs) == len(rx) == len(tx):
        raise NodeAnswerInvalid("last-seen counters: the columns do not match the peers")
    return PeerCounters(keys, epochs, rx, tx, peers, saved=True)


Owner = TypeVar("Owner", bound=Hashable)  # what a key's owner is known as: a name, an index


class UsageColumns(NamedTuple, Generic[Owner]):
    """Bytes to add per owner as columns: the owners whose counters moved (one may appear more
    than once, billed under two keys or on several nodes)."""

    owners: list[Owner]
    rx: list[int]
    tx: list[int]

    def totals(self) -> dict[Owner, tuple[int, int]]:
        """owner -> (rx, tx), summed over its entries."""
        usage = dict(zip(self.owners, zip(self.rx, self.tx, strict=True), strict=True))
        if len(usage) < len(self.owners):
            usage = {}
            for owner, r, t in zip(self.owners, self.rx, self.tx, strict=True):
                old_rx, old_tx = usage.get(owner, (0, 0))
                usage[owner] = (old_rx + r, old_tx + t)
        return usage


class ColumnAccounting(NamedTuple, Generic[Owner]):
    """What one node's observation changes, from ``account_columns``."""

    billed: UsageColumns[Owner]  # what to add, per owner
    seen: PeerCounters  # every observed peer's new last-seen counters, unknown ones included
    unknown_keys: tuple[str, ...]  # peers on the node that no configuration owns
    bytes_added: int

    @property
    def usage(self) -> dict[Owner, tuple[int, int]]:
        """owner -> (rx, tx) to add."""
        return self.billed.totals()


_is_overlap = methodcaller("startswith", OVERLAP_PREFIX)


def account_columns(
    epoch: str,
    keys: list[str],
    rx: list[int],
    tx: list[int],
    last: PeerCounters | None,
    owner: Mapping[str, Owner],
) -> ColumnAccounting[Owner]:
    """``account_node`` on columns, with the same rules and results; ``last``: the node's
    last-seen counters (any peers, any order)."""
    count = len(keys)
    if not count == len(rx) == len(tx):
        raise NodeAnswerInvalid("sample columns of different lengths")
    if count and (min(rx) < 0 or min(tx) < 0):
        bad = next(i for i in range(count) if rx[i] < 0 or tx[i] < 0)
        raise NodeAnswerInvalid(f"negative counter rx={rx[bad]} tx={tx[bad]}")
    if last is not None and last.keys == keys and last.epochs.count(epoch) == count:
        # The same peers in the same order, in the same epoch: deltas in C.
        add_rx, add_tx = list(map(sub, rx, last.rx)), list(map(sub, tx, last.tx))
        if count and (min(add_rx) < 0 or min(add_tx) < 0):
            for i in range(count):
                if add_rx[i] < 0 or add_tx[i] < 0:  # went backwards: counting restarted
                    add_rx[i], add_tx[i] = rx[i], tx[i]
    elif last is None or not last.keys:
        add_rx, add_tx = rx, tx
    else:
        index = dict(zip(last.keys, range(len(last.keys)), strict=True))
        l_epochs, l_rx, l_tx = last.epochs, last.rx, last.tx
        add_rx, add_tx = list(rx), list(tx)
        for i, j in enumerate(map(index.get, keys)):
            if j is None or l_epochs[j] != epoch:
                continue
            r, t = rx[i] - l_rx[j], tx[i] - l_tx[j]
            if r >= 0 and t >= 0:
                add_rx[i], add_tx[i] = r, t
    bare = (
        list(map(methodcaller("removeprefix", OVERLAP_PREFIX), keys))
        if any(map(_is_overlap, keys))
        else keys
    )
    names = list(map(owner.get, bare))
    unknown: tuple[str, ...] = ()
    moved = list(map(or_, add_rx, add_tx))  # counters are never negative: 0 when neither moved
    if None in names:
        unknown = tuple(sorted(k for k, name in zip(keys, names, strict=True) if name is None))
        moved = [m if name is not None else 0 for m, name in zip(moved, names, strict=True)]
    billed: UsageColumns[Owner] = UsageColumns([], [], [])
    if all(moved):
        billed = UsageColumns(cast(list[Owner], names), add_rx, add_tx)
    elif any(moved):
        billed = UsageColumns(
            cast(list[Owner], list(compress(names, moved))),  # unknown keys never moved
            list(compress(add_rx, moved)),
            list(compress(add_tx, moved)),
        )
    added = sum(billed.rx) + sum(billed.tx)
    return ColumnAccounting(billed, PeerCounters(keys, [epoch] * count, rx, tx), unknown, added)


def merge_seen(
    last: PeerCounters | None, observed: PeerCounters, *, removed: bool = False
) -> PeerCounters:
    """A node's last-seen counters after an observation: the observed peers' counters replace
    theirs (``removed``: the observed peers are forgotten, they left the node), every other
    peer's are kept."""
    if removed:
        return (last or PeerCounters([], [], [], [])).without(observed.keys)
    if last is None or not last.keys:
        return observed
    if last.keys == observed.keys:
        if last.rx == observed.rx and last.tx == observed.tx and last.epochs == observed.epochs:
            return last  # nothing moved: what the store holds already
        observed.stored = last.stored
        return observed
    count, total = len(observed.keys), len(last.keys)
    first = observed.keys[0] if count else None
    at = last.keys.index(first) if first in last.keys else -1
    if at >= 0 and at + count <= total and last.keys[at : at + count] == observed.keys:
        # A contiguous run of the node's peers (the main or the overlap interface's).
        def spliced(old: list[Any], new: list[Any]) -> list[Any]:
            return old[:at] + new + old[at + count :]

        return PeerCounters(
            spliced(last.keys, observed.keys),
            spliced(last.epochs, observed.epochs),
            spliced(last.rx, observed.rx),
            spliced(last.tx, observed.tx),
            last.stored,
        )
    kept = last.without(observed.keys)
    return PeerCounters(
        observed.keys + kept.keys,
        observed.epochs + kept.epochs,
        observed.rx + kept.rx,
        observed.tx + kept.tx,
    )


def decode_last_seen(text: str) -> dict[str, LastSeen]:
    if not text:
        return {}
    fields = text.replace("\n", "\t").split("\t")
    if len(fields) % 4:
        raise NodeAnswerInvalid("last-seen counters: each line needs a key, an epoch, rx and tx")
    rxs, txs = map(int, fields[2::4]), map(int, fields[3::4])
    return dict(zip(fields[0::4], map(LastSeen, fields[1::4], rxs, txs), strict=True))
