"""What the fleet's monitoring metrics say, as plain data: per node and fleet-wide, never per user.

Pure: the service reads the store and hands the rows here; prometheus_client lives in
``service/metrics.py`` only. Every label value a metric can carry is either a node's name
(an operator-chosen infrastructure name) or one of the fixed words below, so no label can
ever hold a username, a configuration name, a key or an address.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from orchestrator.core.listen import parse_listen
from orchestrator.core.models import DisabledReason, Node

# The one label value set of `wgfleet_configurations{state}`: a configuration is on, or why not.
CONFIGURATION_STATES = ("enabled", "disabled", "over_quota", "expired")

# The one label value set of `wgfleet_failures_total{kind}`.
FAILURE_KINDS = (
    "node_unreachable",  # a sync asked a node for its counters and got no answer
    "counters_refused",  # a node answered a sync with counters the store cannot believe
    "push_failed",  # a node did not take a push (unreachable, refused, or a resync it failed)
    "store_unavailable",  # a `sync --every` run did not happen: the store could not be used
    "fleet_busy",  # a `sync --every` run did not happen: another run held the fleet lock
    "run_failed",  # a `sync --every` run stopped on a node error before accounting
)

SECONDS_PER_DAY = 86_400


def configuration_state(enabled: bool, reason: DisabledReason | None) -> str:
    """The state label of a configuration: enabled, or the reason it is off."""
    if enabled:
        return "enabled"
    if reason == DisabledReason.OVER_QUOTA:
        return "over_quota"
    if reason == DisabledReason.EXPIRED:
        return "expired"
    return "disabled"  # by an operator (or a reason this version does not know)


def configurations_by_state(
    counts: Iterable[tuple[bool, DisabledReason | None, int]],
) -> dict[str, int]:
    """(enabled, reason, how many) rows folded onto the fixed states, every state present."""
    states = dict.fromkeys(CONFIGURATION_STATES, 0)
    for enabled, reason, count in counts:
        states[configuration_state(enabled, reason)] += count
    return states


@dataclass(frozen=True)
class NodeMetrics:
    """One node's gauges. None: not known yet (never synced, never deployed), left out."""

    name: str
    up: bool  # its last sync and its last push both reached it (False until either has)
    last_sync: int | None  # unix seconds of its last successful sync
    peers: int  # enabled configurations placed on it: the peers its interface should carry
    push_pending: bool  # its desired peer set changed since its last successful push
    removals_pending: int  # keys whose removal it has not confirmed yet
    key_age_seconds: int | None  # whole days since its WireGuard key was made, in seconds
    audit_passed: bool | None
    # Bytes counted on it over the last complete day; None when the privacy profile keeps no
    # daily node totals (then no per-node volume is exposed at all: see docs/METRICS.md).
    bytes_last_day: int | None


def node_metrics(
    nodes: Iterable[Node],
    peers: Mapping[str, int],
    revisions: Mapping[str, tuple[int, int]],
    removals: Mapping[str, int],
    health: Mapping[str, tuple[bool | None, bool | None]],
    last_sync: Mapping[str, int | None],
    audits: Mapping[str, bool | None],
    daily: Mapping[str, Iterable[tuple[date, int]]] | None,
    today: date,
) -> list[NodeMetrics]:
    """Each node's gauges from the store's per-node records; ``daily`` is None when the privacy
    profile keeps no daily totals, else node -> (day, bytes) rows including yesterday's."""
    yesterday = today - timedelta(days=1)
    rows = []
    for node in sorted(nodes, key=lambda n: n.name):
        pushed_ok, synced_ok = health.get(node.name, (None, None))
        desired, pushed = revisions.get(node.name, (0, -1))
        day_bytes = None
        if daily is not None:
            day_bytes = dict(daily.get(node.name, ())).get(yesterday, 0)
        rows.append(
            NodeMetrics(
                name=node.name,
                up=is_up(pushed_ok, synced_ok),
                last_sync=last_sync.get(node.name),
                peers=peers.get(node.name, 0),
                push_pending=desired != pushed,
                removals_pending=removals.get(node.name, 0),
                key_age_seconds=(
                    (today - node.key_created_on).days * SECONDS_PER_DAY
                    if node.key_created_on
                    else None
                ),
                audit_passed=audits.get(node.name),
                bytes_last_day=day_bytes,
            )
        )
    return rows


def is_up(pushed_ok: bool | None, synced_ok: bool | None) -> bool:
    """Reached by its last push and its last sync (one of them at least was tried)."""
    seen = [ok for ok in (pushed_ok, synced_ok) if ok is not None]
    return bool(seen) and all(seen)


def parse_metrics_listen(text: str) -> tuple[str, int]:
    """``--metrics ADDR:PORT``; port 0: any free port (``-v`` says which)."""
    return parse_listen(text, "--metrics", lowest_port=0)


def metrics_facts(node_daily_totals: bool) -> list[str]:
    """What the monitoring metrics expose and never do, for `privacy report`."""
    volume = (
        "bytes counted per node over the last complete day, all its users together (the "
        "daily node totals this profile keeps)"
        if node_daily_totals
        else "no traffic volume at all (this profile keeps no daily node totals)"
    )
    return [
        "per node and fleet-wide only: health, peers and pending changes per node, key age, "
        "configurations by state, sync and push durations, failures by kind; " + volume,
        "no label or value holds a username, a configuration name, a key or an address: "
        "labels are node names and fixed words",
        "the metrics endpoint writes no access log and keeps no client address",
    ]


class RunObserver(Protocol):
    """What a process that syncs and pushes reports for its metrics. Implemented with
    prometheus_client in the service; core and the use cases know only this."""

    def sync_ran(self, seconds: float) -> None:
        """A sync finished (accounted, enforced, pushed) in ``seconds``."""

    def push_ran(self, seconds: float) -> None:
        """A push to one or more nodes finished in ``seconds``."""

    def failed(self, kind: str, count: int = 1) -> None:
        """``count`` failures of ``kind``, one of FAILURE_KINDS."""


class NoObserver:
    """The observer of a process that exposes no metrics."""

    def sync_ran(self, seconds: float) -> None:
        pass

    def push_ran(self, seconds: float) -> None:
        pass

    def failed(self, kind: str, count: int = 1) -> None:
        pass


NO_OBSERVER = NoObserver()
