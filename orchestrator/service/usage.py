"""Turn counter observations into usage, and check the running totals against the ledger.

Counters from a node are believed only as far as the store placed peers there
(`core.node_trust`): a sync's or a push's observations are vetted node by node in the same
transaction as their accounting, and a node whose answer fails is named and applies nothing,
while the others' land.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from orchestrator.adapters.store import RowUsage, SyncLedger
from orchestrator.adapters.store.quota_pages import QuotaPage
from orchestrator.core.accounting import (
    OVERLAP_PREFIX,
    ColumnAccounting,
    PeerCounters,
    Sample,
    SampleColumns,
    UsageColumns,
    account_columns,
    merge_seen,
)
from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.models import Configuration, Plan, TopUp, UsageTotal
from orchestrator.core.node_trust import (
    MAX_TOTAL,
    NodeTrust,
    foreign_keys,
    foreign_problem,
    regression,
)
from orchestrator.core.quota import QuotaStatus, period_start, quota_status
from orchestrator.service.context import Fleet


@dataclass(frozen=True)
class Ledger:
    """Who owns which key and which plan bills it: read once per run, not once per node. One
    entry per configuration; keys map to entries."""

    read: SyncLedger
    plans: dict[str, Plan]

    def periods(self, entries: Iterable[int], today: date) -> list[date]:
        """The start of each entry's billing period today (computed once per plan)."""
        plan_names = list(map(self.read.plan_of.__getitem__, entries))
        by_plan = {
            plan: period_start(self.plans.get(plan) if plan else None, today)
            for plan in set(plan_names)
        }
        return list(map(by_plan.__getitem__, plan_names))


def load_ledger(fleet: Fleet, observations: Sequence[Observation]) -> Ledger:
    """The ledger of what these observations can bill: their nodes' configurations and the
    owners of any other key they hold, not the whole store's (a sync's memory follows its
    batch of nodes, not the fleet)."""
    store = fleet.store
    keys = {
        key.removeprefix(OVERLAP_PREFIX)
        for o in observations
        for key in SampleColumns.of(o.samples).keys
    }
    read = store.sync_ledger(nodes={o.node for o in observations}, keys=keys)
    return Ledger(read, {p.name: p for p in store.plans()})


class Accounted(NamedTuple):
    """What one observation added: bytes, and to which configurations (as ledger entries, with
    the ledger's names to read them by). ``problem``: why its node's answer was refused
    (nothing of it was applied)."""

    result: ColumnAccounting[int]
    names: list[str]  # ledger entry -> configuration
    problem: str = ""
    ids: Sequence[int] = ()  # ledger entry -> configuration row id

    @property
    def billed_ids(self) -> list[int]:
        """The row ids of the configurations this observation billed."""
        return list(map(self.ids.__getitem__, self.entries))

    @property
    def bytes_added(self) -> int:
        return self.result.bytes_added

    @property
    def entries(self) -> list[int]:
        """The ledger entries of the configurations this observation billed."""
        return self.result.billed.owners

    @property
    def usage(self) -> dict[str, tuple[int, int]]:
        """configuration -> (rx, tx) added."""
        return {self.names[e]: pair for e, pair in self.result.usage.items()}


class Observation(NamedTuple):
    """One node's counters as fetched; ``removed``: those peers just left the node (a push's
    answer), else the whole list of one interface (a sync); ``overlap``: the interface serving
    the node's next key during a rotation (keys prefixed with OVERLAP_PREFIX)."""

    node: str
    epoch: str
    samples: Sequence[Sample]
    removed: bool = False
    overlap: bool = False


def node_trust(fleet: Fleet, ledger: Ledger, nodes: Collection[str]) -> dict[str, NodeTrust]:
    """What the store placed on each of ``nodes``, read in the caller's transaction."""
    store = fleet.store
    placements = store.placements_of(nodes)
    pending = store.pending_removals(nodes)
    entry_of = dict(zip(ledger.read.ids, range(len(ledger.read.ids)), strict=True))
    trust = {}
    for node in nodes:
        # Not in the ledger: a configuration added since it was read.
        placed = frozenset(e for e in map(entry_of.get, placements.get(node, ())) if e is not None)
        trust[node] = NodeTrust(placed, frozenset(pending.get(node, ())), ledger.read.leaving)
    return trust


def _vet(
    observation: Observation,
    columns: SampleColumns,
    last: PeerCounters | None,
    trust: NodeTrust,
    owners: dict[str, int],
) -> str:
    """Why a node's observation cannot be believed ('' when it can): a sync's list holds only
    keys placed on the node; no key goes backwards or (in a whole list) missing within an
    epoch. A push's removed peers were already limited to keys the store removed there."""
    if not observation.removed:
        foreign = foreign_keys(columns.keys, owners, trust)
        if foreign:
            return foreign_problem(foreign, owners)
    return (
        regression(
            observation.epoch,
            columns.keys,
            columns.rx,
            columns.tx,
            last,
            overlap=observation.overlap,
            complete=not observation.removed,
            excused=trust.pending,
        )
        or ""
    )


def account_observations(
    fleet: Fleet,
    observations: Iterable[Observation],
    today: date,
    *,
    ledger: Ledger | None = None,
    synced: Collection[str] = (),
    vet: bool = False,
) -> list[Accounted]:
    """Apply observations in one transaction: one read of the last-seen counters, accounting
    on columns, one set-based write. ``synced``: nodes to mark as having answered a sync.

    ``vet``: each node's observations are first checked against what the store placed there
    (`core.node_trust`) and against the store's 64-bit totals; a node that fails applies
    nothing, its results carry the ``problem``, and it is not marked as synced. Nodes are
    taken in name order, so which one would overflow the totals is decided the same way on
    every run."""
    store = fleet.store
    observations = list(observations)
    results: list[Accounted | None] = [None] * len(observations)
    by_node: dict[str, list[int]] = {}
    for index, observation in enumerate(observations):
        by_node.setdefault(observation.node, []).append(index)
    with store.transaction():
        ledger = ledger or load_ledger(fleet, observations)
        owners = ledger.read.owners
        seen = store.peer_counters_of(set(by_node))
        trust = node_trust(fleet, ledger, set(by_node)) if vet else {}
        room = MAX_TOTAL - store.used_total() if vet else 0
        refused: set[str] = set()
        entries: list[int] = []
        rxs: list[int] = []
        txs: list[int] = []
        for node in sorted(by_node) if vet else by_node:
            last = seen.get(node)
            staged = []
            problem = ""
            for index in by_node[node]:
                observation = observations[index]
                columns = SampleColumns.of(observation.samples)
                if vet:
                    problem = _vet(observation, columns, last, trust[node], owners)
                    if problem:
                        break
                result = account_columns(
                    observation.epoch, columns.keys, columns.rx, columns.tx, last, owners
                )
                last = _seen_after(last, result, removed=observation.removed)
                staged.append((index, result))
            added = sum(result.bytes_added for _, result in staged)
            if vet and not problem and added > room:
                problem = (
                    f"counters out of range: {added} bytes more would take the store's "
                    "totals past 2^63-1"
                )
            if problem:
                refused.add(node)
                empty = account_columns("", [], [], [], None, owners)
                for index in by_node[node]:
                    results[index] = Accounted(empty, ledger.read.names, problem, ledger.read.ids)
                continue
            room -= added
            if last is not None:
                seen[node] = last
            for index, result in staged:
                entries += result.billed.owners
                rxs += result.billed.rx
                txs += result.billed.tx
                results[index] = Accounted(result, ledger.read.names, ids=ledger.read.ids)
        seen = {node: counters for node, counters in seen.items() if node not in refused}
        if len(set(entries)) < len(entries):  # a configuration on several nodes or two keys
            totals = UsageColumns(entries, rxs, txs).totals()
            pairs = list(totals.values())
            entries, rxs, txs = list(totals), [p[0] for p in pairs], [p[1] for p in pairs]
        ids = list(map(ledger.read.ids.__getitem__, entries))
        usage = RowUsage(ids, ledger.periods(entries, today), rxs, txs)
        store.apply_accounting(usage, seen, [n for n in synced if n not in refused])
    return [result for result in results if result is not None]


def _seen_after(
    last: PeerCounters | None, result: ColumnAccounting[int], *, removed: bool
) -> PeerCounters:
    """A node's last-seen counters after one observation.

    A peer taken off a node restarts from zero if it is ever added back: having no last-seen
    counters counts exactly that, and keeps nothing about it. Peers no configuration owns (a
    deleted account's, on a node that has not dropped it yet) bill nobody: their counters are
    not kept either."""
    if removed or not result.unknown_keys:
        return merge_seen(last, result.seen, removed=removed)
    unknown = result.unknown_keys
    kept = last.without(unknown) if last is not None else None
    return merge_seen(kept, result.seen.without(unknown))


def page_statuses(
    page: QuotaPage, plans: Mapping[str, Plan], today: date
) -> dict[str, QuotaStatus]:
    """Each configuration of ``page`` judged on its plan, top-ups and usage."""
    return {
        c.name: quota_status(
            c,
            plans.get(c.plan) if c.plan else None,
            page.topups.get(c.name, []),
            page.usage.get(c.name, []),
            today,
        )
        for c in page.configurations
    }


def quota_statuses(
    fleet: Fleet, today: date, configurations: list[Configuration] | None = None
) -> dict[str, QuotaStatus]:
    """``configurations``: the caller's copy of those to judge, read with their own top-ups
    and usage only (a notification about one configuration does not read the whole store's
    usage); all of them when None, the store read once."""
    store = fleet.store
    plans = {p.name: p for p in store.plans()}
    if configurations is not None:
        return page_statuses(store.quota_page_of(configurations), plans, today)
    topups: dict[str, list[TopUp]] = {}
    usage: dict[str, list[UsageTotal]] = {}
    for t in store.topups():
        if t.configuration:
            topups.setdefault(t.configuration, []).append(t)
    for u in store.usage():
        usage.setdefault(u.configuration, []).append(u)
    return page_statuses(QuotaPage(store.configurations(), topups, usage), plans, today)


@dataclass(frozen=True)
class TotalsMismatch:
    """``subject``: a configuration (granted bytes) or ``"store"`` (used bytes, kept for the
    whole store)."""

    subject: str
    kind: str  # "granted" or "used"
    stored: int
    recomputed: int
    note: str = ""  # e.g. a total past the store's 64 bits even where both sides agree


def usage_check(fleet: Fleet) -> list[TotalsMismatch]:
    """Every running total that differs from its recomputation from top-ups and usage."""
    stored = fleet.store.running_totals()
    recomputed = fleet.store.recomputed_totals()
    mismatches = [
        TotalsMismatch(name, "granted", stored.granted[name], recomputed.granted.get(name, 0))
        for name in sorted(stored.granted)
        if stored.granted[name] != recomputed.granted.get(name, 0)
    ]
    if stored.used != recomputed.used:
        mismatches.append(TotalsMismatch("store", "used", stored.used, recomputed.used))
    # Equal but past 2^63-1: SQLite kept the sum as a floating-point number (inexact past
    # 2^53), PostgreSQL would refuse the next change; either way the totals cannot be trusted.
    past = f"past {MAX_BYTES}, more than the store's 64-bit totals hold"
    mismatched = {(m.subject, m.kind) for m in mismatches}
    mismatches += [
        TotalsMismatch(name, "granted", stored.granted[name], total, past)
        for name, total in sorted(recomputed.granted.items())
        if name in stored.granted
        and max(total, stored.granted[name]) > MAX_BYTES
        and (name, "granted") not in mismatched
    ]
    if max(stored.used, recomputed.used) > MAX_BYTES and ("store", "used") not in mismatched:
        mismatches.append(TotalsMismatch("store", "used", stored.used, recomputed.used, past))
    return mismatches
