"""The operator's dashboard: what needs them first (core.alerts), then each node, read in one
pass over the store; and the reachability check behind its "reachable" column.

Read only: nothing here writes, takes the lock or opens a transaction. The reachability check
is a key exchange with each node against its pinned host key, no login (the same check a run
makes before it reaches a node, service/host_keys.py), all nodes at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orchestrator.core.alerts import (
    Alert,
    AlertKind,
    AlertRules,
    Reachability,
    fleet_alerts,
    node_alerts,
)
from orchestrator.core.keys import KeyKind, parse_duration
from orchestrator.core.overview import FleetOverview
from orchestrator.service.context import Fleet
from orchestrator.service.host_keys import refused_nodes
from orchestrator.service.keys import key_status
from orchestrator.service.overview import fleet_overview_and_rows
from orchestrator.service.sync import collector_target


@dataclass(frozen=True)
class FleetDashboard:
    overview: FleetOverview
    alerts: tuple[Alert, ...]
    # node -> its last reachability check (empty until one ran)
    reachability: Mapping[str, Reachability] = field(default_factory=dict)
    # node -> the kinds of alert it raises itself (its row is coloured by them)
    node_alerts: Mapping[str, frozenset[AlertKind]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alerts": [a.as_dict() for a in self.alerts],
            "reachability": {
                name: {"reachable": r.reachable, "checked_at": r.checked_at, "error": r.error}
                for name, r in sorted(self.reachability.items())
            },
        }


def alert_rules(fleet: Fleet, today: date, now: int) -> AlertRules:
    usage = fleet.settings.usage
    return AlertRules(
        now=now,
        today=today,
        sync_interval=parse_duration(usage.sync_interval),
        warn_ratio=usage.warn_percent / 100,
        expiry_warn_days=usage.expiry_warn_days,
    )


def fleet_dashboard(
    fleet: Fleet,
    today: date,
    now: int,
    reachability: Mapping[str, Reachability] | None = None,
) -> FleetDashboard:
    """The alerts (errors first) and the fleet overview they were judged from;
    ``reachability`` is the last check's result (check_reachability), if one ran."""
    reach = dict(reachability or {})
    overview, rows = fleet_overview_and_rows(fleet, today)
    keys = key_status(fleet, today, now, record=False)
    rules = alert_rules(fleet, today, now)
    alerts = fleet_alerts(overview.nodes, reach, rows, keys, rules)
    overdue_nodes = {k.record.subject for k in keys if k.overdue and k.record.kind == KeyKind.NODE}
    kinds = {
        n.name: frozenset(a.kind for a in node_alerts(n, reach.get(n.name), rules))
        | ({AlertKind.KEY_OVERDUE} if n.name in overdue_nodes else set())
        for n in overview.nodes
    }
    return FleetDashboard(overview, tuple(alerts), reach, kinds)


def check_reachability(fleet: Fleet, now: int) -> dict[str, Reachability]:
    """Each node's answer to a key exchange against its pinned host key, asked now."""
    nodes = fleet.store.nodes()
    refused = refused_nodes(collector_target(fleet, n) for n in nodes)
    return {
        n.name: Reachability(
            n.name not in refused,
            now,
            str(refused[n.name]).removeprefix(f"{n.name}: ") if n.name in refused else "",
        )
        for n in nodes
    }
