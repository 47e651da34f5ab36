"""`wgfleet sync`: pull counters from every node, account them exactly, enforce quotas.

Collecting runs in parallel over pinned SSH as the collector account, whose forced command
prints only the epoch token and `wg show IFACE transfer`. Each node's answer is parsed strictly
and believed only as far as the store placed peers on that node (`core.node_trust`): a node
whose answer fails is named as failed and moves nobody's usage, while the others' answers are
applied in batches of nodes, one transaction each, so a crash anywhere loses or doubles
nothing and a sync's memory follows the batch, not the fleet. Then quota decisions
are made and pushed in the same run, and every key removal still pending on a node that
answered goes out with it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import partial
from typing import Any

from orchestrator.adapters import ssh
from orchestrator.core.accounting import OVERLAP_PREFIX, SampleColumns
from orchestrator.core.collector import CounterParseError, CounterReport, parse_counters
from orchestrator.core.id_set import IdSet
from orchestrator.core.metrics import RunObserver
from orchestrator.core.models import Configuration, DisabledReason, Node
from orchestrator.core.node_protocol import COLLECTOR_USER
from orchestrator.core.quota import enforce
from orchestrator.core.shard import Shard
from orchestrator.errors import Cancelled, NodeError
from orchestrator.service import notify
from orchestrator.service.context import Fleet, writes
from orchestrator.service.lease import run_holder
from orchestrator.service.node_keys import finish_due_rotations
from orchestrator.service.privacy import apply_retention
from orchestrator.service.push import (
    Change,
    PushResult,
    push,
    record_change,
    retire_ended_keys,
)
from orchestrator.service.quota_pass import judge_every_configuration, warn_once
from orchestrator.service.retry import retry_conflicts
from orchestrator.service.usage import Observation, account_observations, quota_statuses

# Concurrent SSH sessions of one sync: enough to hide the nodes' latency, few enough that the
# controller's CPU (key exchanges, parsing) is not the bottleneck on a small machine.
FETCH_THREADS = 32
# Nodes whose answers are accounted in one transaction. A sync holds at most two batches of
# counters (one accounted while the next is fetched), so its memory follows this figure, not
# the fleet's size; each batch reloads the ledger, so fewer, larger batches cost less time.
SYNC_BATCH_NODES = 250
DEFAULT_WARN_RATIO = 0.8


@dataclass(frozen=True)
class NodeSync:
    node: str
    ok: bool
    peers: int = 0
    bytes_added: int = 0
    error: str = ""
    # It answered (its answer may still have been refused): a push can reach it.
    answered: bool = False


@dataclass(frozen=True)
class SyncResult:
    nodes: tuple[NodeSync, ...]
    configurations_updated: int
    bytes_added: int
    over_quota: tuple[str, ...]
    re_enabled: tuple[str, ...]
    warned: tuple[str, ...]
    push: PushResult | None = None
    notes: tuple[str, ...] = field(default=())
    # Nodes another run (another shard, another controller) was syncing: theirs, not failed.
    skipped: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()  # newly past their plan's validity
    # node -> key removals it has not confirmed yet (it did not answer, or refused the push)
    removals_pending: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[NodeSync]:
        failed = [n for n in self.nodes if not n.ok]
        if self.push is not None:
            failed += [NodeSync(p.node, False, error=f"push: {p.error}") for p in self.push.failed]
        return failed

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "nodes_ok": sorted(n.node for n in self.nodes if n.ok),
            "nodes_failed": {n.node: n.error for n in self.failed},
            "nodes_skipped": list(self.skipped),
            "configurations_updated": self.configurations_updated,
            "bytes_added": self.bytes_added,
            "newly_over_quota": list(self.over_quota),
            "re_enabled": list(self.re_enabled),
            "newly_expired": list(self.expired),
            "warned": list(self.warned),
            "removals_pending": dict(sorted(self.removals_pending.items())),
            "notes": list(self.notes),
        }


def collector_target(fleet: Fleet, node: Node) -> ssh.Target:
    ssh_settings = fleet.settings.ssh
    return fleet.target(
        node, COLLECTOR_USER, ssh_settings.collector_key, kex=ssh_settings.collector_kex
    )


def fetch_counters(fleet: Fleet, node: Node) -> CounterReport:
    """One exec of the node's counters entry point; the reply is parsed strictly or refused."""
    result = fleet.run(collector_target(fleet, node), "wgfleet-counters", timeout=60)
    try:
        report = parse_counters(result.stdout)
    except CounterParseError as exc:
        raise NodeError(node.name, f"counters refused, {exc}") from None
    if result.status != 0:
        raise NodeError(node.name, f"counters unavailable (exit {result.status}): interface down?")
    return report


def account_reports(
    fleet: Fleet, reports: dict[str, CounterReport | NodeError], today: date
) -> tuple[list[NodeSync], list[int]]:
    """Every answer of a batch vetted and accounted in one transaction: a crash anywhere applies
    nothing, and the next run, reading the same absolute counters, counts every byte exactly
    once. A node whose answer the store cannot believe is failed, named, and applies nothing."""
    observations = []
    for name, report in reports.items():
        if isinstance(report, NodeError):
            continue
        observations.append(Observation(name, report.epoch, report.samples))
        overlap = report.overlap
        if overlap is not None and overlap.epoch != "none":
            columns = SampleColumns.of(overlap.samples)
            keys = [OVERLAP_PREFIX + key for key in columns.keys]
            samples = SampleColumns(keys, columns.rx, columns.tx)
            observations.append(Observation(name, overlap.epoch, samples, overlap=True))
    answered = [o.node for o in observations]
    with fleet.store.transaction():
        results = account_observations(fleet, observations, today, synced=answered, vet=True)
        refused = {o.node: r.problem for o, r in zip(observations, results, strict=True)}
        refused = {name: problem for name, problem in refused.items() if problem}
        failed = [name for name, report in reports.items() if isinstance(report, NodeError)]
        newly = fleet.store.mark_sync_failed([*failed, *refused])
        notify.queue(fleet, "node_unreachable", newly)
    added: dict[str, int] = {}
    billed: list[int] = []  # the configurations' row ids: entries number one batch's ledger
    for observation, result in zip(observations, results, strict=True):
        added[observation.node] = added.get(observation.node, 0) + result.bytes_added
        billed += result.billed_ids
    outcomes = []
    for name, report in reports.items():
        if isinstance(report, NodeError):
            outcomes.append(NodeSync(name, False, error=str(report).removeprefix(f"{name}: ")))
        elif name in refused:
            error = f"counters refused, {refused[name]}"
            outcomes.append(NodeSync(name, False, error=error, answered=True))
        else:
            outcome = NodeSync(name, True, len(report.samples), added.get(name, 0), answered=True)
            outcomes.append(outcome)
    return outcomes, billed


def _fetch_and_account(
    fleet: Fleet,
    known: dict[str, Node],
    today: date,
    progress: Callable[[NodeSync], None] | None,
    stop: Callable[[], bool],
    batch_nodes: int,
) -> tuple[list[NodeSync], IdSet]:
    """Nodes stream through fetch, parse and account in batches: each batch is one transaction,
    so a crash loses or doubles nothing (a node's counters and the usage they add land
    together), and only two batches of counters are ever held, whatever the fleet's size."""
    wanted = sorted(known)
    batches = [wanted[i : i + batch_nodes] for i in range(0, len(wanted), batch_nodes)]

    def fetch(name: str) -> CounterReport | NodeError:
        if stop():
            return NodeError(name, "cancelled before this node was asked")
        try:
            return fetch_counters(fleet, known[name])
        except NodeError as exc:
            return exc

    outcomes: list[NodeSync] = []
    updated = IdSet()  # the configurations billed, each once whichever batches billed it
    with ThreadPoolExecutor(max_workers=max(1, min(FETCH_THREADS, len(wanted)))) as pool:

        def submit(index: int) -> list[Future[CounterReport | NodeError]]:
            return [pool.submit(fetch, n) for n in batches[index]] if index < len(batches) else []

        ahead = submit(0)
        for index, batch in enumerate(batches):
            # The next batch is fetched while this one is accounted: the pool runs in order.
            current, ahead = ahead, submit(index + 1)
            reports = {name: future.result() for name, future in zip(batch, current, strict=True)}
            if stop():
                for future in ahead:
                    future.cancel()
                raise Cancelled(_cancelled_after(len(outcomes), len(wanted)))
            done, billed = retry_conflicts(partial(account_reports, fleet, reports, today))
            # A batch's samples are dead once committed: free them before the next arrives,
            # and the SSH sessions that fetched them, which only the cyclic collector frees.
            reports.clear()
            del current
            gc.collect()
            outcomes += done
            updated.update(billed)
            if progress is not None:
                for outcome in done:
                    progress(outcome)
    return outcomes, updated


def _cancelled_after(accounted: int, total: int) -> str:
    if not accounted:
        return "sync cancelled: nothing was written; the next sync counts every byte"
    return (
        f"sync cancelled: {accounted} of {total} nodes were accounted, the others wrote "
        "nothing; the next sync counts every byte exactly once"
    )


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """A sync allocates a few objects per counter, none of them in reference cycles, and
    Python's cyclic collector would rescan the heap every 700 allocations: at 100,000 counters
    that was a third of the parsing time. Reference counting frees the counters; the SSH
    sessions (paramiko's transports hold cycles) are collected once per batch instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def keep_node_daily_totals(fleet: Fleet, outcomes: Iterable[NodeSync], today: date) -> None:
    """Only what the privacy profile permits: a node's bytes per day, or nothing at all."""
    privacy = fleet.settings.privacy
    if not privacy.node_daily_totals:
        fleet.store.erase_node_daily(None)  # the profile was narrowed: what it forbids goes
        return
    fleet.store.add_node_daily(today, {o.node: o.bytes_added for o in outcomes if o.ok})
    fleet.store.erase_node_daily(today - timedelta(days=privacy.node_daily_retention_days))


@writes
def sync(
    fleet: Fleet,
    *,
    nodes: Iterable[str] | None = None,
    today: date | None = None,
    warn_ratio: float = DEFAULT_WARN_RATIO,
    enforce_quota: bool = True,
    progress: Callable[[NodeSync], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    shard: Shard | None = None,
    batch_nodes: int = SYNC_BATCH_NODES,
) -> SyncResult:
    """Fetch every node's counters, account them in batches of ``batch_nodes`` nodes (one
    transaction each), then enforce quotas.

    ``shard`` limits the run to its share of the nodes. Each node is leased for the whole run,
    so two runs (shards, controllers, a stray cron job) never sync or push one node at once; a
    node leased elsewhere is skipped, not failed. ``cancelled`` is asked before each node is
    contacted and once more before each batch's transaction: a sync cancelled before its first
    batch writes nothing, one cancelled later keeps the batches it committed, and the next one
    counts every byte either way (counters are absolute, a node's baseline moves with its usage).
    """
    if batch_nodes < 1:
        raise ValueError(f"batch_nodes must be at least 1, not {batch_nodes}")
    started = time.monotonic()
    today = today or date.today()
    known = fleet.nodes(nodes)
    wanted = shard.select(known) if shard is not None else sorted(known)
    with fleet.store.lease_nodes(wanted, run_holder()) as claimed, cyclic_gc_paused():
        result = _sync_leased(
            fleet,
            {name: known[name] for name in sorted(claimed)},
            tuple(n for n in wanted if n not in claimed),
            today,
            warn_ratio,
            enforce_quota,
            progress,
            cancelled or (lambda: False),
            set(wanted) if shard is not None else None,
            batch_nodes,
        )
    _observe_sync(fleet.observer, time.monotonic() - started, result.nodes)
    return result


def _observe_sync(observer: RunObserver, seconds: float, outcomes: Iterable[NodeSync]) -> None:
    """A finished sync's duration and its nodes' failures, by kind (a push's own failures
    are its own: `push` reports them)."""
    observer.sync_ran(seconds)
    failed = [o for o in outcomes if not o.ok]
    refused = sum(o.answered for o in failed)
    if refused:
        observer.failed("counters_refused", refused)
    if len(failed) > refused:
        observer.failed("node_unreachable", len(failed) - refused)


def _sync_leased(
    fleet: Fleet,
    known: dict[str, Node],
    skipped: tuple[str, ...],
    today: date,
    warn_ratio: float,
    enforce_quota: bool,
    progress: Callable[[NodeSync], None] | None,
    stop: Callable[[], bool],
    scope: set[str] | None,
    batch_nodes: int,
) -> SyncResult:
    store = fleet.store
    wanted = sorted(known)
    outcomes, updated = _fetch_and_account(fleet, known, today, progress, stop, batch_nodes)
    total = sum(o.bytes_added for o in outcomes)

    # What the privacy profile no longer permits goes on every sync.
    retry_conflicts(lambda: apply_retention(fleet, today))
    retry_conflicts(lambda: keep_node_daily_totals(fleet, outcomes, today))
    if not enforce_quota:
        return SyncResult(tuple(outcomes), len(updated), total, (), (), (), skipped=skipped)
    quotas = judge_every_configuration(fleet, today, warn_ratio)
    decision = quotas.decision
    transitions = (
        ("expired", decision.expire, False, DisabledReason.EXPIRED),
        ("over_quota", decision.disable, False, DisabledReason.OVER_QUOTA),
        ("re_enabled", decision.enable, True, None),
    )

    def transition() -> tuple[list[Configuration], list[Configuration]]:
        """Every cut-off and re-enable as (before, after); each event is queued with the change
        that causes it: both land or neither.

        The decision above was read outside this transaction, and a top-up needs no fleet lock
        (`writes_store`): the configurations it names are held and judged again here, so one
        topped up since is not cut off, and one a top-up re-enabled is left alone."""
        decided = sorted({n for _, names, _, _ in transitions for n in names})
        store.hold_configurations(decided)
        fresh = store.configurations(names=decided, placements=False)
        judged = enforce(fresh, quota_statuses(fleet, today, fresh), warn_ratio, today)
        current = (judged.expire, judged.disable, judged.enable)
        before: list[Configuration] = []
        after: list[Configuration] = []
        for (event, decided_names, enabled, reason), still in zip(
            transitions, current, strict=True
        ):
            names = tuple(n for n in decided_names if n in still)
            if names:
                changed = store.set_enabled(names, enabled, reason)
                notify.queue(fleet, event, [c.name for c in changed])
                before += changed
                after += (replace(c, enabled=enabled, disabled_reason=reason) for c in changed)
        return before, after

    # One transaction for all of them, so a node they move by exactly one revision gets only
    # the peers they touched (a delta) in the push below.
    before: list[Configuration] = []
    after: list[Configuration] = []
    moved: dict[str, tuple[int, int]] = {}
    if decision.expire or decision.disable or decision.enable:
        (before, after), moved = retry_conflicts(lambda: record_change(store, transition))
    change = Change(tuple(before), tuple(after), moved) if before else None
    transitioned = {c.name for c in before}
    decision = replace(
        decision,
        disable=tuple(n for n in decision.disable if n in transitioned),
        enable=tuple(n for n in decision.enable if n in transitioned),
        expire=tuple(n for n in decision.expire if n in transitioned),
    )
    changed_nodes = {n for config in before for n in config.nodes}
    retry_conflicts(lambda: warn_once(fleet, quotas.warn_periods))
    now = int(time.time())
    changed_nodes |= retire_ended_keys(fleet, now)
    finished = finish_due_rotations(fleet, {o.node for o in outcomes if o.ok}, now)
    # Nodes that missed an earlier push (they were down) converge now that they answer, and
    # every key removal still pending on one goes out. A node whose counters were refused
    # answered too: its full set takes off any key the store did not place there.
    reachable = {o.node for o in outcomes if o.answered}
    pending = {n for n, (desired, done) in store.node_revisions().items() if desired != done}
    pending |= set(store.pending_removals(reachable))
    changed_nodes |= pending & reachable
    # A shard pushes its own nodes only: the others are pending and their shard pushes them.
    # Nodes another run holds are pushed by that run, which sees them pending.
    if scope is not None:
        changed_nodes &= scope
    changed_nodes -= set(skipped)
    pushed = (
        push(fleet, changed_nodes, today=today, now=now, held=set(wanted), change=change)
        if changed_nodes
        else None
    )
    delivery = notify.deliver_pending(fleet, today)
    for problem in delivery.problems:
        fleet.record(f"notification not delivered, kept for the next run: {problem}")
    left = {n: len(keys) for n, keys in store.pending_removals(wanted).items()}
    return SyncResult(
        tuple(outcomes),
        len(updated),
        total,
        decision.disable,
        decision.enable,
        decision.warn,
        pushed,
        notes=tuple(f"{n}: node key rotation finished, the next key is its own" for n in finished)
        + tuple(
            f"notification not delivered, kept for the next run: {p}" for p in delivery.problems
        ),
        skipped=skipped,
        expired=decision.expire,
        removals_pending=left,
    )
