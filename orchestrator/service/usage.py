"""Turn counter observations into usage, and check the running totals against the ledger."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from orchestrator.core.accounting import (
    ColumnAccounting,
    Sample,
    SampleColumns,
    UsageColumns,
    account_columns,
    merge_seen,
)
from orchestrator.core.models import Configuration, Plan, TopUp, UsageTotal
from orchestrator.core.quota import QuotaStatus, period_start, quota_status
from orchestrator.service.context import Fleet


@dataclass(frozen=True)
class Ledger:
    """Who owns which key and which plan bills it: read once per run, not once per node."""

    owners: dict[str, str]  # public key -> configuration
    plan_of: dict[str, str | None]  # configuration -> plan name
    plans: dict[str, Plan]
    ids: dict[str, int] | None = None  # configuration -> its store row id, when read

    def periods(self, configurations: Iterable[str], today: date) -> list[date]:
        """The start of each configuration's billing period today (computed once per plan)."""
        plan_names = list(map(self.plan_of.get, configurations))
        by_plan = {
            plan: period_start(self.plans.get(plan) if plan else None, today)
            for plan in set(plan_names)
        }
        return list(map(by_plan.__getitem__, plan_names))


def load_ledger(fleet: Fleet) -> Ledger:
    store = fleet.store
    read = store.sync_ledger()
    return Ledger(read.owners, read.plan_of, {p.name: p for p in store.plans()}, read.ids)


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
) -> list[ColumnAccounting]:
    """Apply observations in one transaction: one read of the last-seen counters, accounting
    on columns, one set-based write. ``synced``: nodes to mark as having answered a sync."""
    store = fleet.store
    observations = list(observations)
    with store.transaction():
        ledger = ledger or load_ledger(fleet)
        seen = store.peer_counters_of({o.node for o in observations})
        names: list[str] = []
        rxs: list[int] = []
        txs: list[int] = []
        results = []
        for node, epoch, samples, removed in observations:
            columns = SampleColumns.of(samples)
            last = seen.get(node)
            result = account_columns(
                epoch, columns.keys, columns.rx, columns.tx, last, ledger.owners
            )
            names += result.billed.names
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
            results.append(result)
        usage = UsageColumns(names, rxs, txs)
        if len(set(names)) < len(names):  # a configuration on several nodes or under two keys
            totals = usage.totals()
            pairs = list(totals.values())
            usage = UsageColumns(list(totals), [p[0] for p in pairs], [p[1] for p in pairs])
        store.apply_accounting(usage, ledger.periods(usage.names, today), seen, synced, ledger.ids)
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
) -> ColumnAccounting:
    """Apply one node's counters in one transaction; ``removed``: those peers just left it."""
    observation = Observation(node, epoch, list(samples), removed)
    return account_observations(fleet, [observation], today, ledger=ledger)[0]


def quota_statuses(
    fleet: Fleet, today: date, configurations: list[Configuration] | None = None
) -> dict[str, QuotaStatus]:
    """``configurations``: the caller's copy of all of them, read once instead of twice."""
    store = fleet.store
    plans = {p.name: p for p in store.plans()}
    topups: dict[str, list[TopUp]] = {}
    for t in store.topups():
        if t.configuration:
            topups.setdefault(t.configuration, []).append(t)
    usage: dict[str, list[UsageTotal]] = {}
    for u in store.usage():
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
    return mismatches
