"""Read models for the operator's screens, each read in one pass over the store.

Nothing here writes or opens a transaction (a read must never queue behind a sync); the TUI
filters and sorts the rows in memory (see core.overview).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from orchestrator.core.keys import KeyAge, KeyKind
from orchestrator.core.models import Configuration
from orchestrator.core.overview import (
    CHART_DAYS,
    AccountRow,
    ConfigurationRow,
    FleetOverview,
    NodeRow,
    account_rows,
    configuration_rows,
    daily_series,
    fleet_totals,
    node_rows,
)
from orchestrator.errors import NotFound
from orchestrator.service.context import Fleet
from orchestrator.service.keys import key_status
from orchestrator.service.push import pending_nodes
from orchestrator.service.usage import quota_statuses


def configuration_overview(fleet: Fleet, today: date) -> list[ConfigurationRow]:
    """Every configuration with its usage this billing period and its allowance."""
    return configuration_rows(fleet.store.configurations(), quota_statuses(fleet, today))


def fleet_overview(fleet: Fleet, today: date) -> FleetOverview:
    """One row per node (peers, pending push, last push, sync and audit) and the fleet's
    totals."""
    return fleet_overview_and_rows(fleet, today)[0]


def fleet_overview_and_rows(
    fleet: Fleet, today: date
) -> tuple[FleetOverview, list[ConfigurationRow]]:
    """The fleet overview and the configuration rows it was counted from (one read of each)."""
    store = fleet.store
    configurations = store.configurations()
    rows = configuration_rows(configurations, quota_statuses(fleet, today))
    nodes = node_rows(
        store.nodes(),
        configurations,
        pending_nodes(fleet),
        store.node_health(),
        today,
        store.node_audits(),
        store.node_sync_times(),
    )
    daily = None
    if fleet.settings.privacy.node_daily_totals:
        since = today - timedelta(days=CHART_DAYS - 1)
        daily = daily_series(store.node_daily(since), [n.name for n in nodes], today)
    return FleetOverview(tuple(nodes), fleet_totals(nodes, rows), daily), rows


@dataclass(frozen=True)
class NodeDetail:
    """One node for an operator who drilled into it: its row, the configurations placed on it
    and the keys that concern it (its own, then its configurations' client and preshared)."""

    node: NodeRow
    configurations: tuple[ConfigurationRow, ...]
    keys: tuple[KeyAge, ...]


def node_detail(fleet: Fleet, name: str, today: date) -> NodeDetail:
    """The node ``name`` (NotFound if the store has none) with its configurations and keys."""
    overview, rows = fleet_overview_and_rows(fleet, today)
    node = next((n for n in overview.nodes if n.name == name), None)
    if node is None:
        raise NotFound(f"no node {name!r} in the store")
    placed = tuple(r for r in rows if name in r.nodes)
    names = {r.name for r in placed}
    keys = tuple(
        k
        for k in key_status(fleet, today, record=False)
        if (k.record.kind == KeyKind.NODE and k.record.subject == name)
        or (k.record.kind in (KeyKind.PEER, KeyKind.PSK) and k.record.subject in names)
    )
    return NodeDetail(node, placed, keys)


def accounts_overview(fleet: Fleet, today: date) -> list[AccountRow]:
    """Every account with its configurations and the top-ups bought for them."""
    store = fleet.store
    rows = configuration_rows(store.configurations(), quota_statuses(fleet, today))
    return account_rows(store.accounts(), rows, store.topups())


@dataclass(frozen=True)
class ConfigurationStatus:
    """What a billing backend or an app shows of one configuration: its plan, validity, quota
    this billing period, and whether it is on (or why not). Nothing per session, no time of
    use: the store has none."""

    configuration: Configuration
    period_start: date
    allowance: int | None  # None: unmetered
    used: int

    def as_dict(self) -> dict[str, Any]:
        c = self.configuration
        return {
            "name": c.name,
            "account": c.account,
            "plan": c.plan,
            "valid_until": c.valid_until.isoformat() if c.valid_until else None,
            "period_start": self.period_start.isoformat(),
            "quota_bytes": self.allowance,
            "used_bytes": self.used,
            "remaining_bytes": None if self.allowance is None else self.allowance - self.used,
            "enabled": c.enabled,
            "disabled_reason": c.disabled_reason.value if c.disabled_reason else None,
            "nodes": list(c.nodes),
        }


def configuration_status(fleet: Fleet, name: str, today: date) -> ConfigurationStatus:
    """One configuration's status (a name the store lacks is NotFound)."""
    config = fleet.store.configuration(name)
    status = quota_statuses(fleet, today, [config])[name]
    return ConfigurationStatus(config, status.period_start, status.allowance, status.used)


@dataclass(frozen=True)
class FleetHealth:
    """For operators: each node's state, what waits for a push, which keys are overdue."""

    nodes: tuple[NodeRow, ...]
    pending: tuple[str, ...]
    overdue_keys: dict[str, int]  # key kind -> how many are past their maximum age
    overdue_node_keys: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "name": n.name,
                    "peers_enabled": n.peers_enabled,
                    "peers_total": n.peers_total,
                    "pending_push": n.pending_push,
                    "last_push_ok": n.last_push_ok,
                    "last_sync_ok": n.last_sync_ok,
                    "last_audit_ok": n.last_audit_ok,
                    "key_age_days": n.key_age_days,
                }
                for n in self.nodes
            ],
            "pending_nodes": list(self.pending),
            "overdue_keys": dict(self.overdue_keys),
            "overdue_node_keys": list(self.overdue_node_keys),
        }


def fleet_health(fleet: Fleet, today: date) -> FleetHealth:
    """Nodes (last push, sync and audit), pending pushes and overdue keys, read only."""
    store = fleet.store
    pending = pending_nodes(fleet)
    rows = node_rows(
        store.nodes(),
        store.configurations(),
        pending,
        store.node_health(),
        today,
        store.node_audits(),
    )
    overdue = [k for k in key_status(fleet, today, record=False) if k.overdue]
    return FleetHealth(
        tuple(rows),
        tuple(pending),
        dict(Counter(str(k.record.kind) for k in overdue)),
        tuple(sorted(k.record.subject for k in overdue if str(k.record.kind) == "node")),
    )
