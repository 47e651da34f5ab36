"""Turn counter observations into usage, and check the running totals against the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from orchestrator.core.accounting import NodeAccounting, Sample, account_node, after_removal
from orchestrator.core.models import Configuration, Plan, TopUp, UsageTotal
from orchestrator.core.quota import QuotaStatus, period_start, quota_status
from orchestrator.service.context import Fleet


@dataclass(frozen=True)
class Ledger:
    """Who owns which key and which plan bills it: read once per run, not once per node."""

    owners: dict[str, str]  # public key -> configuration
    plan_of: dict[str, str | None]  # configuration -> plan name
    plans: dict[str, Plan]

    def period(self, configuration: str, today: date) -> date:
        name = self.plan_of.get(configuration)
        return period_start(self.plans.get(name) if name else None, today)


def load_ledger(fleet: Fleet) -> Ledger:
    store = fleet.store
    return Ledger(
        store.key_owners(), store.configuration_plans(), {p.name: p for p in store.plans()}
    )


def account_observation(
    fleet: Fleet,
    node: str,
    epoch: str,
    samples: Iterable[Sample],
    today: date,
    *,
    removed: bool = False,
    ledger: Ledger | None = None,
) -> NodeAccounting:
    """Apply one node's counters in one transaction; ``removed``: those peers just left it."""
    store = fleet.store
    samples = list(samples)
    with store.transaction():
        ledger = ledger or load_ledger(fleet)
        result = account_node(epoch, samples, store.last_seen(node), ledger.owners)
        periods = {name: ledger.period(name, today) for name in result.usage}
        last_seen = result.last_seen
        if removed:
            last_seen = {s.public_key: after_removal(epoch) for s in samples}
        store.apply_counters(node, result.usage, periods, last_seen)
    return result


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
    configuration: str
    stored: tuple[int, int]
    recomputed: tuple[int, int]


def usage_check(fleet: Fleet) -> list[TotalsMismatch]:
    """Every configuration whose kept granted/used totals differ from its top-ups and usage."""
    stored = fleet.store.running_totals()
    recomputed = fleet.store.recomputed_totals()
    return [
        TotalsMismatch(name, stored[name], recomputed.get(name, (0, 0)))
        for name in sorted(stored)
        if stored[name] != recomputed.get(name, (0, 0))
    ]
