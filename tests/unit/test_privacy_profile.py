"""The store keeps daily per-node totals only while the privacy profile allows them, only for
as long as it allows, and never anything per user by day."""

from __future__ import annotations

from datetime import date, timedelta

from orchestrator.core.overview import CHART_DAYS
from orchestrator.service.context import open_fleet
from orchestrator.service.overview import fleet_overview
from orchestrator.service.sync import NodeSync, keep_node_daily_totals
from orchestrator.settings import Settings

TODAY = date(2026, 11, 23)
OUTCOMES = [NodeSync("node1", True, 3, 1000), NodeSync("node2", False, error="down")]


def test_nothing_is_kept_by_default_and_narrowing_the_profile_erases(settings: Settings) -> None:
    with open_fleet(settings) as fleet:
        assert not fleet.settings.privacy.node_daily_totals
        keep_node_daily_totals(fleet, OUTCOMES, TODAY)
        assert fleet.store.node_daily(date(2000, 1, 1)) == {}
        assert fleet_overview(fleet, TODAY).daily is None

        fleet.store.replace_policies(
            {"privacy.node_daily_totals": "true", "privacy.node_daily_retention_days": "30"}
        )
    with open_fleet(settings) as fleet:
        keep_node_daily_totals(fleet, OUTCOMES, TODAY - timedelta(days=40))
        keep_node_daily_totals(fleet, OUTCOMES, TODAY)
        keep_node_daily_totals(fleet, OUTCOMES, TODAY)
        # The failed node adds nothing; the 40-day-old total outlived the 30-day retention.
        assert fleet.store.node_daily(date(2000, 1, 1)) == {"node1": [(TODAY, 2000)]}
        daily = fleet_overview(fleet, TODAY).daily
        assert daily is not None and daily["node1"][-1] == 2000 and sum(daily["node2"]) == 0
        assert len(daily["node1"]) == CHART_DAYS == 30

        fleet.store.replace_policies({})
    with open_fleet(settings) as fleet:
        keep_node_daily_totals(fleet, OUTCOMES, TODAY)
        assert fleet.store.node_daily(date(2000, 1, 1)) == {}
