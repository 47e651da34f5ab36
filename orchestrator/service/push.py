"""Carry the store's desired peer sets to the nodes, live, in parallel.

Each node receives its complete desired set through its `wgfleet-peers` entry point (the push
account's forced command); the node changes only the peers that differ, so every other
tunnel and its counters are untouched. A node that cannot be reached keeps its pending
revision and converges on the next push.

A push that follows one store change (a `Change`: enable, disable, add, remove) sends a node
only the peers that change touched, when the store knows the node holds the revision just
before it (its last successful push was that revision, and nothing else moved it since) and
no replaced key's grace has ended on it; the node checks the same revision on its side and
that its live peers are the set it persisted, else it answers `resync`. In every other case,
and after a resync, the node gets its complete set as above.

No access outlives its revocation: every store change that takes a key off a node records the
removal as pending (per node and key, `SqlStore.pending_removals`) in the same transaction.
A full set leaves such keys out; a delta names each of them in a `remove` line. Only once the
node applied the push is the removal confirmed (and the key's last-seen counters there
forgotten), in one transaction with the removed peers' last counters; until then every sync
and push that reaches the node sends it again. The removed peers' counters bill only keys the
store was taking off that node: a node cannot charge another node's peer through them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any, TypeVar

from orchestrator.adapters import ssh
from orchestrator.adapters.store import SqlStore
from orchestrator.core.accounting import OVERLAP_PREFIX, Sample
from orchestrator.core.addressing import TunnelNetworks
from orchestrator.core.models import Configuration, Node
from orchestrator.core.node_protocol import PUSH_USER
from orchestrator.core.peers import DesiredPeer, PeerDelta, desired_peers, peer_delta
from orchestrator.core.push_protocol import (
    PushAnswer,
    PushProtocolError,
    parse_answer,
    render_delta_request,
    render_request,
)
from orchestrator.core.shard import Shard
from orchestrator.errors import NodeError, StoreError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.lease import run_holder
from orchestrator.service.retry import retry_conflicts
from orchestrator.service.usage import Observation, account_observations

T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """One store transaction's effect on peers, for a push that sends only that: the
    configurations it touched as they were (``before``; missing: added) and are (``after``;
    missing: removed), and ``revisions``: node -> (revision before, after) for each node the
    transaction moved by exactly one revision (see `record_change`)."""

    before: tuple[Configuration, ...]
    after: tuple[Configuration, ...]
    revisions: dict[str, tuple[int, int]]


def record_change(store: SqlStore, write: Callable[[], T]) -> tuple[T, dict[str, tuple[int, int]]]:
    """Run ``write`` in one store transaction; return its result and, for each node whose
    desired revision it moved by exactly one, (revision before, revision after).

    Exactly one: the write bumped the node once and nobody else did in between (on SQLite the
    transaction holds the write lock from its start; on PostgreSQL a bump committed between
    the first read and the write shows as a second one). A node moved by more is left out,
    and its next push sends the full set.
    """
    with store.transaction():
        before = store.node_revisions()
        result = write()
        after = store.node_revisions()
    return result, moved_by_one(before, after)


def moved_by_one(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """From two `node_revisions` read in one transaction, around a write: the nodes whose
    desired revision moved by exactly one, with (revision before, revision after)."""
    return {
        name: (before[name][0], desired)
        for name, (desired, _) in after.items()
        if name in before and desired == before[name][0] + 1
    }


@dataclass(frozen=True)
class NodePush:
    node: str
    ok: bool
    answer: PushAnswer | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        answer = self.answer
        return {
            "node": self.node,
            "ok": self.ok,
            "error": self.error,
            "interface_up": answer.interface_up if answer else None,
            "added": len(answer.added) if answer else 0,
            "changed": len(answer.changed) if answer else 0,
            "removed": len(answer.removed) if answer else 0,
            "unchanged": answer.unchanged if answer else 0,
            # Only the peers the change touched went (see the module's docstring).
            "delta": answer.delta if answer else False,
        }


@dataclass(frozen=True)
class PushResult:
    dry_run: bool
    nodes: tuple[NodePush, ...] = field(default=())
    # Nodes another run holds a lease on, or left to the push worker (`not_pushed`): still
    # pending, that run, the worker or the next sync pushes them.
    skipped: tuple[str, ...] = ()

    @property
    def failed(self) -> list[NodePush]:
        return [n for n in self.nodes if not n.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "failed_nodes": [n.node for n in self.failed],
            "skipped_nodes": list(self.skipped),
            "nodes": [n.as_dict() for n in self.nodes],
        }


def push_target(fleet: Fleet, node: Node) -> ssh.Target:
    return fleet.target(node, PUSH_USER, fleet.settings.ssh.push_key)


@dataclass(frozen=True)
class NodeDelta:
    base: int  # the revision the node must hold
    revision: int  # the revision the delta brings it to
    peers: PeerDelta


@dataclass(frozen=True)
class Sent:
    """What a push asked of one node, to settle its answer against: ``pending``, the key
    removals pending there when the request was made (confirmed once the node applied it);
    ``kept``, the keys the request leaves on the node; ``removable``, the keys whose removal
    from that node may bill their last counters (the store placed them there)."""

    pending: frozenset[str] = frozenset()
    kept: frozenset[str] = frozenset()
    removable: frozenset[str] = frozenset()


def _exchange(fleet: Fleet, node: Node, request: str) -> NodePush:
    try:
        result = fleet.run(push_target(fleet, node), "wgfleet-peers", stdin=request, timeout=120)
    except NodeError as exc:
        return NodePush(node.name, False, error=str(exc).removeprefix(f"{node.name}: "))
    try:
        answer = parse_answer(result.stdout)
    except PushProtocolError as exc:
        # The node's one `error` line says why; stderr's last line only when there is one.
        detail = result.stderr.strip().splitlines()[-1:]
        shown = f"push refused: {exc} ({detail[0]})" if detail else f"push refused: {exc}"
        return NodePush(node.name, False, error=shown)
    return NodePush(node.name, True, answer)


def _push_one(
    fleet: Fleet,
    node: Node,
    configurations: list[Configuration],
    dry_run: bool,
    now: int,
    revision: int,
    pending: frozenset[str],
    opened: Mapping[str, str | StoreError],
) -> tuple[NodePush, Sent]:
    peers = desired_peers(node.name, configurations, now, tunnel_networks(node))
    kept = frozenset(p.public_key for p in peers)
    placed = {k for c in configurations for k in (c.public_key, c.previous_public_key) if k}
    sent = Sent(pending, kept, frozenset((placed | pending) - kept))
    try:
        preshared = _keys_for(peers, opened)
    except StoreError as exc:
        return NodePush(node.name, False, error=str(exc)), sent
    mode = "plan" if dry_run else "apply"
    pushed = _exchange(
        fleet, node, render_request(mode, node.interface, peers, preshared, revision)
    )
    if pushed.answer is not None and pushed.answer.resync:  # only ever the answer to a delta
        refused = f"push refused: resync ({pushed.answer.resync})"
        return NodePush(node.name, False, error=refused), sent
    return pushed, sent


def _push_delta(
    fleet: Fleet,
    node: Node,
    delta: NodeDelta,
    pending: frozenset[str],
    opened: Mapping[str, str | StoreError],
) -> tuple[NodePush, Sent]:
    held = frozenset(p.public_key for p in delta.peers.hold)
    sent = Sent(pending, held, frozenset(delta.peers.drop))
    try:
        preshared = _keys_for(delta.peers.hold, opened)
    except StoreError as exc:
        return NodePush(node.name, False, error=str(exc)), sent
    request = render_delta_request(
        "apply", node.interface, delta.base, delta.revision, delta.peers, preshared
    )
    return _exchange(fleet, node, request), sent


def _keys_for(
    peers: Iterable[DesiredPeer], opened: Mapping[str, str | StoreError]
) -> dict[str, str]:
    """The preshared keys of ``peers``, from those opened before the push's threads started;
    the first that could not be opened fails the node."""
    keys = {}
    for peer in peers:
        if peer.psk_ref:
            value = opened.get(peer.psk_ref, StoreError(f"secret {peer.psk_ref} was not opened"))
            if isinstance(value, StoreError):
                raise value
            keys[peer.psk_ref] = value
    return keys


def _open_keys(
    fleet: Fleet, placed: Mapping[str, list[Configuration]], deltas: Mapping[str, NodeDelta]
) -> dict[str, str | StoreError]:
    """Every preshared key the nodes of this push may need, opened in the session's thread."""
    refs = {r for cs in placed.values() for c in cs for r in (c.psk_ref, c.previous_psk_ref) if r}
    refs |= {p.psk_ref for d in deltas.values() for p in d.peers.hold if p.psk_ref}
    return fleet.secrets.get_many(refs)


def tunnel_networks(node: Node) -> TunnelNetworks:
    return TunnelNetworks(node.tunnel_network, node.tunnel_network6)


def _deltas(
    fleet: Fleet,
    wanted: dict[str, Node],
    revisions: dict[str, tuple[int, int]],
    change: Change,
    now: int,
    pending: dict[str, set[str]],
) -> dict[str, NodeDelta]:
    """The nodes a delta of ``change`` brings exactly to their desired state; each delta also
    names every key removal pending on its node."""
    # A replaced key whose grace ended leaves its nodes with the next full push (and only
    # then does the store forget it): such nodes get the full set.
    ending = {n for c in fleet.store.rotations_ending(now) for n in c.nodes}
    deltas = {}
    for name in wanted:
        moved = change.revisions.get(name)
        if moved is None or name in ending:
            continue
        base, revision = moved
        # Its last successful push was the revision just before the change, and nothing
        # moved it since: else it is behind (down, failed) or another change came after.
        if revisions.get(name) != (revision, base):
            continue
        peers = peer_delta(name, change.before, change.after, now, tunnel_networks(wanted[name]))
        if peers is not None:
            held = {p.public_key for p in peers.hold}
            drop = tuple(sorted((set(peers.drop) | pending.get(name, set())) - held))
            deltas[name] = NodeDelta(base, revision, PeerDelta(peers.hold, drop))
    return deltas


def _placed(fleet: Fleet, names: list[str]) -> dict[str, list[Configuration]]:
    """The configurations placed on each of ``names``."""
    # A push to a few nodes reads only the configurations placed on them.
    few = len(names) <= 500
    placed: dict[str, list[Configuration]] = {name: [] for name in names}
    if not names:
        return placed
    for config in fleet.store.configurations(on_nodes=names if few else None):
        for node_name in config.addresses:
            if node_name in placed:
                placed[node_name].append(config)
    return placed


@writes
def push(
    fleet: Fleet,
    nodes: Iterable[str] | None = None,
    *,
    dry_run: bool = False,
    progress: Callable[[NodePush], None] | None = None,
    today: date | None = None,
    now: int | None = None,
    cancelled: Callable[[], bool] | None = None,
    shard: Shard | None = None,
    held: Collection[str] = (),
    change: Change | None = None,
) -> PushResult:
    """Push the desired state to ``nodes`` (all nodes in the store when None).

    ``shard`` keeps this run's share of them. Each node is leased while it is pushed (``held``:
    nodes the caller already leased); a node another run holds is skipped and stays pending.

    ``cancelled`` is asked before each node: a node not yet contacted is left pending.
    ``change``: the store change this push carries out; nodes known to hold the revision just
    before it get only the peers it touched (see the module's docstring).
    Peers a node removes report their counters as they leave; those bytes are accounted here,
    so nothing between the last sync and a disable, removal or rotation is lost. Replaced peer
    keys whose grace ended (``now``, unix seconds) leave the nodes, and once no node holds
    one any more the store forgets it.
    """
    started = time.monotonic()
    now = int(time.time()) if now is None else now
    if not dry_run:
        retire_ended_keys(fleet, now)
    known = fleet.nodes(nodes)
    wanted = shard.select(known) if shard is not None else sorted(known)
    to_lease = [n for n in wanted if n not in held]
    with fleet.store.lease_nodes(to_lease, run_holder()) as claimed:
        mine = {n: known[n] for n in wanted if n in claimed or n in held}
        result = _push_leased(fleet, mine, dry_run, progress, today, now, cancelled, change)
    skipped = tuple(n for n in wanted if n not in mine)
    for node in result.nodes:
        verb = "would push" if dry_run else "pushed"
        fleet.record(f"{node.node}: {verb}" + ("" if node.ok else f": FAILED {node.error}"))
    if skipped:
        fleet.record(f"pushed by another run, left to it: {', '.join(skipped)}")
    if result.nodes and not dry_run:
        fleet.observer.push_ran(time.monotonic() - started)
        if result.failed:
            fleet.observer.failed("push_failed", len(result.failed))
    return PushResult(result.dry_run, result.nodes, skipped)


def _push_leased(
    fleet: Fleet,
    known: dict[str, Node],
    dry_run: bool,
    progress: Callable[[NodePush], None] | None,
    today: date | None,
    now: int,
    cancelled: Callable[[], bool] | None,
    change: Change | None = None,
) -> PushResult:
    store = fleet.store
    wanted = sorted(known)
    if not wanted:
        return PushResult(dry_run)
    revisions = store.node_revisions()
    # Read before the desired sets: a removal recorded after this is not confirmed by it.
    removals = store.pending_removals(wanted)
    pending = {name: frozenset(removals.get(name, ())) for name in wanted}
    deltas = (
        _deltas(fleet, known, revisions, change, now, removals) if change and not dry_run else {}
    )
    placed = _placed(fleet, [n for n in wanted if n not in deltas])
    opened = _open_keys(fleet, placed, deltas)
    sent: dict[str, Sent] = {}

    def full(name: str) -> NodePush:
        outcome, sent[name] = _push_one(
            fleet,
            known[name],
            placed[name],
            dry_run,
            now,
            revisions[name][0],
            pending[name],
            opened,
        )
        return outcome

    def one(name: str) -> NodePush:
        if cancelled is not None and cancelled():
            # Not contacted: the node keeps its pending revision and converges next run.
            outcome = NodePush(name, False, error="cancelled before this node; still pending")
        elif name in deltas:
            outcome, sent[name] = _push_delta(
                fleet, known[name], deltas[name], pending[name], opened
            )
            if outcome.answer is not None and outcome.answer.resync:
                return outcome  # nothing changed there: the full set follows
        else:
            outcome = full(name)
        if progress is not None:
            progress(outcome)
        return outcome

    def again(name: str) -> NodePush:
        outcome = full(name)
        if progress is not None:
            progress(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=min(32, len(wanted))) as pool:
        outcomes = tuple(pool.map(one, wanted))
        resync = [o.node for o in outcomes if o.answer is not None and o.answer.resync]
        if resync:
            placed.update(_placed(fleet, resync))
            opened.update(_open_keys(fleet, {n: placed[n] for n in resync}, {}))
            redone = dict(zip(resync, pool.map(again, resync), strict=True))
            outcomes = tuple(redone.get(o.node, o) for o in outcomes)
    if dry_run:
        return PushResult(dry_run, outcomes)
    day = today or date.today()
    settled = []
    scrub = False
    for outcome in outcomes:
        revision = revisions[outcome.node][0]
        what = sent.get(outcome.node, Sent())
        done = retry_conflicts(partial(_settle, fleet, outcome, what, revision, day))
        settled.append(done[0])
        scrub = scrub or done[1]
    if scrub:
        # A deleted account's keys left their last node: not even they stay in the files.
        store.scrub()
    return PushResult(dry_run, tuple(settled))


def _settle(
    fleet: Fleet, outcome: NodePush, sent: Sent, revision: int, today: date
) -> tuple[NodePush, bool]:
    """One node's answer, in one transaction: the last counters of the peers it removed, the
    removals it confirmed, its pushed revision. Return the outcome (failed if the removed
    peers' counters cannot be believed) and whether a deleted account's key left it."""
    store = fleet.store
    node, answer = outcome.node, outcome.answer
    with store.transaction():
        if not outcome.ok or answer is None:
            store.mark_pushed(node, revision, False)
            return outcome, False
        problem = _account_removals(fleet, node, answer, sent, today)
        if problem:
            store.mark_pushed(node, revision, False)
            error = f"push applied, but the removed peers' counters were refused: {problem}"
            return NodePush(node, False, answer, error), False
        unlinked = store.confirm_removals(node, sent.pending, sent.pending - sent.kept)
        store.mark_pushed(node, revision, True)
    return outcome, unlinked


def _account_removals(fleet: Fleet, node: str, answer: PushAnswer, sent: Sent, today: date) -> str:
    """The last counters of the peers a node just removed, so no byte before it is lost; only
    keys the store was taking off that node bill anyone (another node's peer, a static peer
    or a key the store never placed there bills nobody). Return why they were refused, or ''.
    """
    observations = []
    main = [
        Sample(r.public_key, r.rx_bytes, r.tx_bytes)
        for r in answer.removed
        if r.public_key in sent.removable
    ]
    if main:
        observations.append(Observation(node, answer.epoch, main, removed=True))
    if answer.overlap and answer.overlap.removed:
        overlap = [
            Sample(OVERLAP_PREFIX + r.public_key, r.rx_bytes, r.tx_bytes)
            for r in answer.overlap.removed
            if r.public_key in sent.removable
        ]
        if overlap:
            epoch = answer.overlap.epoch
            observations.append(Observation(node, epoch, overlap, removed=True, overlap=True))
    if not observations:
        return ""
    results = account_observations(fleet, observations, today, vet=True)
    return next((r.problem for r in results if r.problem), "")


@writes
def retire_ended_keys(fleet: Fleet, now: int) -> set[str]:
    """Replaced peer keys whose grace ended leave their configurations; their removal is
    pending on every node they were on (the store still bills their last bytes). Return those
    nodes, which need a push."""
    ending = retry_conflicts(lambda: fleet.store.retire_ended_keys(now))
    for config in ending:
        if config.previous_psk_ref:
            fleet.secrets.delete(config.previous_psk_ref)
        fleet.record(
            f"{config.name}: the grace of its replaced key ended: a client still on the old "
            "configuration is cut off"
        )
    return {n for c in ending for n in c.nodes}


def not_pushed(fleet: Fleet, nodes: Iterable[str]) -> PushResult:
    """The result of a write that leaves its push to the push worker (or the next sync): its
    nodes pending, none contacted."""
    pending = tuple(sorted(set(nodes)))
    if pending:
        fleet.record(f"left pending for the push worker: {', '.join(pending)}")
    return PushResult(False, (), pending)


def pending_nodes(fleet: Fleet) -> list[str]:
    """Nodes whose desired state changed since their last successful push."""
    return sorted(
        n for n, (desired, pushed) in fleet.store.node_revisions().items() if desired != pushed
    )
