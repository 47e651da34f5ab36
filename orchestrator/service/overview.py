"""Read models for the operator's screens, each read in one pass over the store.

Nothing here writes or opens a transaction (a read must never queue behind a sync); the TUI
filters and sorts the rows in memory (see core.overview).
"""

from __future__ import annotations

from datetime import date, timedelta

from orchestrator.core.overview import (
    CHART_DAYS,
    AccountRow,
    ConfigurationRow,
    FleetOverview,
    account_rows,
    configuration_rows,
    daily_series,
    fleet_totals,
    node_rows,
)
from orchestrator.service.context import Fleet
from orchestrator.service.push import pending_nodes
from orchestrator.service.usage import quota_statuses


def configuration_overview(fleet: Fleet, today: date) -> list[ConfigurationRow]:
    """Every configuration with its usage this billing period and its allowance."""
    return configuration_rows(fleet.store.configurations(), quota_statuses(fleet, today))


def fleet_overview(fleet: Fleet, today: date) -> FleetOverview:
    """One row per node (peers, pending push, last push and sync) and the fleet's totals."""
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
    )
    daily = None
    if fleet.settings.privacy.node_daily_totals:
        since = today - timedelta(days=CHART_DAYS - 1)
        daily = daily_series(store.node_daily(since), [n.name for n in nodes], today)
    return FleetOverview(tuple(nodes), fleet_totals(nodes, rows), daily)


def accounts_overview(fleet: Fleet, today: date) -> list[AccountRow]:
    """Every account with its configurations and the top-ups bought for them."""
    store = fleet.store
    rows = configuration_rows(store.configurations(), quota_statuses(fleet, today))
    return account_rows(store.accounts(), rows, store.topups())
