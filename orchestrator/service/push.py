"""Carry the store's desired peer sets to the nodes, live, in parallel.

Each node receives its complete desired set through its `wgfleet-peers` entry point (the push
account's forced command); the node changes only the peers that differ, so every other
tunnel and its counters are untouched. A node that cannot be reached keeps its pending
revision and converges on the next push.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from orchestrator.adapters import ssh
from orchestrator.core.accounting import OVERLAP_PREFIX, Sample
from orchestrator.core.models import Configuration, Node
from orchestrator.core.peers import desired_peers
from orchestrator.core.push_protocol import (
    PushAnswer,
    PushProtocolError,
    parse_answer,
    render_request,
)
from orchestrator.core.shard import Shard
from orchestrator.errors import NodeError, StoreError
from orchestrator.service.context import Fleet
from orchestrator.service.lease import run_holder
from orchestrator.service.retry import retry_conflicts
from orchestrator.service.usage import account_observation

PUSH_USER = "wgpush"


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
        }


@dataclass(frozen=True)
class PushResult:
    dry_run: bool
    nodes: tuple[NodePush, ...] = field(default=())
    # Nodes another run holds a lease on: still pending, that run or the next one pushes them.
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


def _push_one(
    fleet: Fleet, node: Node, configurations: list[Configuration], dry_run: bool, now: int
) -> NodePush:
    peers = desired_peers(node.name, configurations, now)
    try:
        preshared = {p.psk_ref: fleet.secrets.get(p.psk_ref) for p in peers if p.psk_ref}
    except StoreError as exc:
        return NodePush(node.name, False, error=str(exc))
    request = render_request("plan" if dry_run else "apply", node.interface, peers, preshared)
    try:
        result = fleet.run(push_target(fleet, node), "wgfleet-peers", stdin=request, timeout=120)
    except NodeError as exc:
        return NodePush(node.name, False, error=str(exc).removeprefix(f"{node.name}: "))
    try:
        answer = parse_answer(result.stdout)
    except PushProtocolError as exc:
        detail = result.stderr.strip().splitlines()[-1:] or [str(exc)]
        return NodePush(node.name, False, error=f"push refused: {exc} ({detail[0]})")
    return NodePush(node.name, True, answer)


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
) -> PushResult:
    """Push the desired state to ``nodes`` (all nodes in the store when None).

    ``shard`` keeps this run's share of them. Each node is leased while it is pushed (``held``:
    nodes the caller already leased); a node another run holds is skipped and stays pending.

    ``cancelled`` is asked before each node: a node not yet contacted is left pending.
    Peers a node removes report their counters as they leave; those bytes are accounted here,
    so nothing between the last sync and a disable, removal or rotation is lost. Replaced peer
    keys whose grace ended (``now``, unix seconds) leave the nodes, and once no node holds
    one any more the store forgets it.
    """
    now = int(time.time()) if now is None else now
    known = fleet.nodes(nodes)
    wanted = shard.select(known) if shard is not None else sorted(known)
    to_lease = [n for n in wanted if n not in held]
    with fleet.store.lease_nodes(to_lease, run_holder()) as claimed:
        mine = {n: known[n] for n in wanted if n in claimed or n in held}
        result = _push_leased(fleet, mine, dry_run, progress, today, now, cancelled)
    skipped = tuple(n for n in wanted if n not in mine)
    return PushResult(result.dry_run, result.nodes, skipped)


def _push_leased(
    fleet: Fleet,
    known: dict[str, Node],
    dry_run: bool,
    progress: Callable[[NodePush], None] | None,
    today: date | None,
    now: int,
    cancelled: Callable[[], bool] | None,
) -> PushResult:
    store = fleet.store
    wanted = sorted(known)
    if not wanted:
        return PushResult(dry_run)
    revisions = store.node_revisions()
    # A push to a few nodes reads only the configurations placed on them.
    few = len(wanted) <= 500
    placed: dict[str, list[Configuration]] = {name: [] for name in wanted}
    for config in store.configurations(on_nodes=wanted if few else None):
        for node_name in config.addresses:
            if node_name in placed:
                placed[node_name].append(config)

    def one(name: str) -> NodePush:
        if cancelled is not None and cancelled():
            # Not contacted: the node keeps its pending revision and converges next run.
            outcome = NodePush(name, False, error="cancelled before this node; still pending")
        else:
            outcome = _push_one(fleet, known[name], placed[name], dry_run, now)
        if progress is not None:
            progress(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=min(32, len(wanted))) as pool:
        outcomes = tuple(pool.map(one, wanted))
    if not dry_run:
        day = today or date.today()
        for outcome in outcomes:
            answer = outcome.answer
            if outcome.ok and answer is not None:
                removals = partial(_account_removals, fleet, outcome.node, answer, day)
                retry_conflicts(removals)
            store.mark_pushed(outcome.node, revisions[outcome.node][0], outcome.ok)
        retire_replaced_keys(fleet, now)
    return PushResult(dry_run, outcomes)


def _account_removals(fleet: Fleet, node: str, answer: PushAnswer, today: date) -> None:
    """The last counters of the peers a node just removed, so no byte before it is lost."""
    if answer.removed:
        account_observation(
            fleet,
            node,
            answer.epoch,
            [Sample(r.public_key, r.rx_bytes, r.tx_bytes) for r in answer.removed],
            today,
            removed=True,
        )
    if answer.overlap and answer.overlap.removed:
        account_observation(
            fleet,
            node,
            answer.overlap.epoch,
            [
                Sample(OVERLAP_PREFIX + r.public_key, r.rx_bytes, r.tx_bytes)
                for r in answer.overlap.removed
            ],
            today,
            removed=True,
        )


def end_of_grace(fleet: Fleet, now: int) -> set[str]:
    """Nodes that must drop a replaced peer key because its grace ended (marked pending)."""
    nodes = {n for c in fleet.store.rotations_ending(now) for n in c.nodes}
    fleet.store.bump_nodes(nodes)
    return nodes


def retire_replaced_keys(fleet: Fleet, now: int) -> list[str]:
    """Forget replaced keys past their grace once every node they were on has dropped them."""
    store = fleet.store
    revisions = store.node_revisions()
    retired = []
    for config in store.rotations_ending(now):
        if all(revisions[n][0] == revisions[n][1] for n in config.nodes if n in revisions):
            before = store.end_peer_rotation(config.name)
            if before.previous_psk_ref:
                fleet.secrets.delete(before.previous_psk_ref)
            retired.append(config.name)
    return retired


def pending_nodes(fleet: Fleet) -> list[str]:
    """Nodes whose desired state changed since their last successful push."""
    return sorted(
        n for n, (desired, pushed) in fleet.store.node_revisions().items() if desired != pushed
    )
