"""The operator's dashboard: what needs them first (core.alerts), then each node, read in one
pass over the store; and the reachability check behind its "reachable" column.

Read only: nothing here writes, takes the lock or opens a transaction. The reachability check
is a key exchange with each node against its pinned host key, no login (the same check a run
makes before it reaches a node, service/host_keys.py), all nodes at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from orchestrator.core.alerts import AlertRules, Reachability
from orchestrator.core.dashboard import FleetDashboard, judge
from orchestrator.core.keys import parse_duration
from orchestrator.service.context import Fleet
from orchestrator.service.host_keys import refused_nodes
from orchestrator.service.keys import key_status
from orchestrator.service.overview import fleet_overview_and_rows
from orchestrator.service.sync import collector_target


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
    overview, rows = fleet_overview_and_rows(fleet, today)
    keys = key_status(fleet, today, now, record=False)
    return judge(overview, rows, keys, alert_rules(fleet, today, now), reachability or {})


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
