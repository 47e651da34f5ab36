"""The TUI on the lab: deploy and sync from the Operations screen, then the Fleet screen shows
every node reachable and the usage the sync brought in. The test puts traffic through the
session lab itself first (it needs nothing from the tests before it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import DataTable

from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import open_fleet
from orchestrator.service.overview import fleet_overview
from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.screens.operations import OperationsScreen
from tests.conftest import LAB_NODES, Lab
from tests.integration.conftest import deployed, layout  # noqa: F401 (fixtures used here)
from tests.integration.fleet_lab import account, ping

pytestmark = pytest.mark.lab

ACCOUNT = "tuiops"


@pytest.fixture
def usage_synced(lab: Lab, layout, deployed: None) -> None:  # noqa: F811
    """Traffic of the test's own through a tunnel, synced once: the Fleet screen has usage to
    show whichever tests ran before, and the TUI's sync brings in the last bytes."""
    node, client = layout.nodes[0], layout.clients[0]
    with open_fleet(lab.settings, write=True) as fleet:
        account(fleet, ACCOUNT)
        made = peers_service.add_configuration(fleet, ACCOUNT, nodes=[node.name])
        lab_service.tunnel_up(lab.settings, client.name, made.client_configs[node.name])
        try:
            assert ping(client.netns, str(node.tunnel_address), count=5)
            assert sync_service.sync(fleet, nodes=[node.name]).ok
            assert ping(client.netns, str(node.tunnel_address), count=5)
        finally:
            lab_service.tunnel_down(lab.settings, client.name)


async def run_to_the_end(pilot: Any, screen: OperationsScreen, key: str, limit: float) -> str:
    await pilot.press(key)
    await pilot.pause()
    waited = 0.0
    while screen.running is not None and waited < limit:
        await asyncio.sleep(0.5)
        waited += 0.5
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return str(screen.query_one("#summary-title").render())


async def test_deploy_and_sync_from_the_operations_screen(lab: Lab, usage_synced: None) -> None:
    with open_fleet(lab.settings, write=True) as fleet:
        before = fleet_overview(fleet, fleet_today()).totals.bytes_this_period
    app = WgfleetApp(lab.settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, OperationsScreen)
        deployed = await run_to_the_end(pilot, screen, "d", 600)
        assert deployed.endswith("deploy: ok"), deployed
        synced = await run_to_the_end(pilot, screen, "s", 120)
        assert synced.endswith("sync: ok"), synced
        await pilot.press("1")
        for _ in range(3):  # the dashboard's read and its reachability check (a key exchange)
            await app.workers.wait_for_complete()
            await pilot.pause()
        shown = str(app.screen.query_one("#totals").render())
        table = app.screen.query_one("#nodes", DataTable)
        reachable = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert len(reachable) == LAB_NODES and all(r.startswith("yes, ") for r in reachable)
        assert "unreachable" not in str(app.screen.query_one("#alert-lines").render())
    with open_fleet(lab.settings, write=True) as fleet:
        overview = fleet_overview(fleet, fleet_today())
    assert len(overview.nodes) == LAB_NODES
    assert all(n.reachable and n.last_sync_ok for n in overview.nodes), overview.nodes
    assert overview.totals.bytes_this_period >= before > 0
    assert f"{overview.totals.configurations} configurations" in shown


def fleet_today():
    from datetime import date

    return date.today()
