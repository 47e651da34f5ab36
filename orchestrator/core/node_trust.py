"""Whether a node's counters may be believed: a node is not trusted either.

A node's answer may only move the usage of peers the store placed on that node. Before anything
from an answer is accounted, each of its sections (the interface, and during a node key
rotation its overlap interface) is checked against what the store knows about that node:

- every key in it is placed there (a configuration's key, or its replaced key in grace) or
  has a removal pending there (the controller is taking it off; its last bytes still count).
  A key placed only on other nodes, or on none, refuses the answer: a tampered node could
  otherwise charge a peer that lives elsewhere;
- a key last seen in the same epoch (the interface has not restarted since) is in the answer,
  unless its removal is pending there: only a new epoch or a removal the controller made
  itself resets a peer's counters, so a peer left out of one answer and back in the next is
  the node's error, never counted again from zero;
- and its counters did not go backwards within that epoch, for the same reason.

Any of these refuses the node's whole answer (the service names the node as failed and
accounts nothing from it). Pure: the service reads the store and hands the facts in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from operator import sub

from orchestrator.core.accounting import OVERLAP_PREFIX, PeerCounters

# Store totals are 64-bit signed integers (BIGINT) on both engines: no sum may pass this.
MAX_TOTAL = 2**63 - 1


@dataclass(frozen=True)
class NodeTrust:
    """What the store placed on one node, as a sync reads it in its transaction."""

    placed: Collection[int]  # ledger entries of the configurations placed on the node
    pending: Collection[str]  # keys whose removal from the node is pending
    # Keys their configuration owns only while leaving some nodes (the fleet's, not the
    # node's): such a key is believed where its removal is pending, not wherever its
    # configuration is placed.
    leaving: frozenset[str] = frozenset()


def short(key: str) -> str:
    """Enough of a key to find it on the node (`wg show`), not a whole identifier in a log."""
    bare = key.removeprefix(OVERLAP_PREFIX)
    return f"{bare[:10]}..." if len(bare) > 10 else bare


def foreign_keys(keys: Sequence[str], owners: dict[str, int], trust: NodeTrust) -> list[str]:
    """Keys of ``keys`` (bare or overlap-prefixed) the store did not place on the node and is
    not removing from it. The usual answer holds none: one set check in C then."""
    overlap = bool(keys) and keys[0].startswith(OVERLAP_PREFIX)  # a section is one or other
    bare = [k.removeprefix(OVERLAP_PREFIX) for k in keys] if overlap else keys
    placed = trust.placed if isinstance(trust.placed, set | frozenset) else set(trust.placed)
    leaving = trust.leaving
    if placed.issuperset(map(owners.get, bare)) and leaving.isdisjoint(bare):
        return []
    entries = list(map(owners.get, bare))
    return [
        key
        for key, entry in zip(bare, entries, strict=True)
        if (entry not in placed or key in leaving) and key not in trust.pending
    ]


def regression(
    epoch: str,
    keys: list[str],
    rx: list[int],
    tx: list[int],
    last: PeerCounters | None,
    *,
    overlap: bool,
    complete: bool,
    excused: Collection[str] = (),
) -> str | None:
    """Why an observation cannot be believed against the node's last-seen counters, or None.

    ``keys`` are the section's keys as stored (overlap ones prefixed); ``overlap``: the section
    is the overlap interface's; ``complete``: it is the node's whole list for that interface
    (a sync), so a peer last seen in this epoch must be in it, unless its key is in
    ``excused`` (bare keys whose removal is pending there); a push's removed peers are not a
    whole list. A counter that went backwards within the epoch is refused either way.
    """
    if last is None or not last.keys:
        return None
    count = len(keys)
    if last.keys == keys and last.epochs.count(epoch) == count:
        # The same peers in the same order, in the same epoch (the usual sync): in C.
        if count and (min(map(sub, rx, last.rx)) < 0 or min(map(sub, tx, last.tx)) < 0):
            bad = next(i for i in range(count) if rx[i] < last.rx[i] or tx[i] < last.tx[i])
            return _backwards(keys[bad], epoch)
        return None
    l_epochs, l_rx, l_tx = last.epochs, last.rx, last.tx
    if not complete:  # a few removed peers against a node's whole row: look each one up
        where = dict(zip(last.keys, range(len(last.keys)), strict=True))
        for now, key in enumerate(keys):
            was = where.get(key)
            if was is None or l_epochs[was] != epoch:
                continue
            if rx[now] < l_rx[was] or tx[now] < l_tx[was]:
                return _backwards(key, epoch)
        return None
    index = dict(zip(keys, range(count), strict=True))
    for j, key in enumerate(last.keys):
        if l_epochs[j] != epoch or key.startswith(OVERLAP_PREFIX) != overlap:
            continue
        i = index.get(key)
        if i is None:
            if key.removeprefix(OVERLAP_PREFIX) not in excused:
                return (
                    f"peer {short(key)} is missing from the answer within epoch {epoch}, and "
                    "the controller did not remove it (only a new epoch or a removal by the "
                    "controller resets a peer's counters)"
                )
        elif rx[i] < l_rx[j] or tx[i] < l_tx[j]:
            return _backwards(key, epoch)
    return None


def _backwards(key: str, epoch: str) -> str:
    return (
        f"the counters of peer {short(key)} went backwards within epoch {epoch} (only a new "
        "epoch or a removal by the controller resets them)"
    )


def foreign_problem(keys: Sequence[str], owners: dict[str, int]) -> str:
    """The refusal of an answer naming keys the store did not place on the node."""
    first = keys[0]
    where = "placed on other nodes only" if first in owners else "unknown to the store"
    more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
    return (
        f"peer {short(first)}{more} is not placed on this node ({where}); `wgfleet apply "
        "--nodes NODE` takes off what the store did not place there"
    )
