"""Turn counter observations into usage, and check the running totals against the ledger."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from orchestrator.adapters.store import RowUsage, SyncLedger
from orchestrator.core.accounting import (
    ColumnAccounting,
    Sample,
    SampleColumns,
    UsageColumns,
    account_columns,
    merge_seen,
)
from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.models import Configuration, Plan, TopUp, UsageTotal
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


def load_ledger(fleet: Fleet) -> Ledger:
    store = fleet.store
    return Ledger(store.sync_ledger(), {p.name: p for p in store.plans()})


class Accounted(NamedTuple):
    """What one observation added: bytes, and to which configurations (as ledger entries, with
    the ledger's names to read them by)."""

    result: ColumnAccounting[int]
    names: list[str]  # ledger entry -> configuration

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
    """One node's counters as fetched; ``removed``: those peers just left the node."""

    node: str
    epoch: str
    samples: Sequence[Sample]
    removed: bool = False


def account_observations(
    fleet: Fleet,
    observations: Iterable[Observation],
    today: date,
    *,
    ledger: Ledger | None = None,
    synced: Collection[str] = (),
) -> list[Accounted]:
    """Apply observations in one transaction: one read of the last-seen counters, accounting
    on columns, one set-based write. ``synced``: nodes to mark as having answered a sync."""
    store = fleet.store
    observations = list(observations)
    with store.transaction():
        ledger = ledger or load_ledger(fleet)
        seen = store.peer_counters_of({o.node for o in observations})
        entries: list[int] = []
        rxs: list[int] = []
        txs: list[int] = []
        results = []
        for node, epoch, samples, removed in observations:
            columns = SampleColumns.of(samples)
            last = seen.get(node)
            result = account_columns(
                epoch, columns.keys, columns.rx, columns.tx, last, ledger.read.owners
            )
            entries += result.billed.owners
            rxs += result.billed.rx
            txs += result.billed.tx
            # A peer taken off a node restarts from zero if it is ever added back: having no
            # last-seen counters counts exactly that, and keeps nothing about it. Peers no
            # configuration owns (a deleted account's, on a node that was down) bill nobody:
            # their counters are not kept either.
            if removed or not result.unknown_keys:
                seen[node] = merge_seen(last, result.seen, removed=removed)
            else:
                unknown = result.unknown_keys
                kept = last.without(unknown) if last is not None else None
                seen[node] = merge_seen(kept, result.seen.without(unknown))
            results.append(Accounted(result, ledger.read.names))
        if len(set(entries)) < len(entries):  # a configuration on several nodes or two keys
            totals = UsageColumns(entries, rxs, txs).totals()
            pairs = list(totals.values())
            entries, rxs, txs = list(totals), [p[0] for p in pairs], [p[1] for p in pairs]
        ids = list(map(ledger.read.ids.__getitem__, entries))
        usage = RowUsage(ids, ledger.periods(entries, today), rxs, txs)
        store.apply_accounting(usage, seen, synced)
    return results


def account_observation(
    fleet: Fleet,
    node: str,
    epoch: str,
    samples: Iterable[Sample],
    today: date,
    *,
    removed: bool = False,
    ledger: Ledger | None = None,
) -> Accounted:
    """Apply one node's counters in one transaction; ``removed``: those peers just left it."""
    observation = Observation(node, epoch, list(samples), removed)
    return account_observations(fleet, [observation], today, ledger=ledger)[0]


FEW_CONFIGURATIONS = 20  # judged one query each; more: one query for the whole store


def quota_statuses(
    fleet: Fleet, today: date, configurations: list[Configuration] | None = None
) -> dict[str, QuotaStatus]:
    """``configurations``: the caller's copy of those to judge (all of them when None, read
    once instead of twice); a few are judged on their own top-ups and usage alone, so a
    notification about one configuration does not read the whole store's usage."""
    store = fleet.store
    plans = {p.name: p for p in store.plans()}
    few = configurations is not None and len(configurations) <= FEW_CONFIGURATIONS
    names: list[str | None] = [c.name for c in configurations or ()] if few else [None]
    topups: dict[str, list[TopUp]] = {}
    usage: dict[str, list[UsageTotal]] = {}
    for name in names:
        for t in store.topups(name):
            if t.configuration:
                topups.setdefault(t.configuration, []).append(t)
        for u in store.usage(name):
            usage.setdefault(u.configuration, []).append(u)
    return {
        c.name: quota_status(
            c,
            plans.get(c.plan) if c.plan else None,
            topups.get(c.name, []),
            usage.get(c.name, []),
            today,
        )
        for c in (store.configurations() if configurations is None else configurations)
    }


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
