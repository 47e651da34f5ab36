"""The TUI on the lab: deploy and sync from the Operations screen, then the Fleet screen shows
every node reachable and the usage the sync brought in. Runs after the integration tests, on
the session lab they deployed and put traffic through."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.service.context import open_fleet
from orchestrator.service.overview import fleet_overview
from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.screens.operations import OperationsScreen
from tests.conftest import LAB_NODES, Lab

pytestmark = pytest.mark.lab


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


async def test_deploy_and_sync_from_the_operations_screen(lab: Lab) -> None:
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
        await pilot.pause()
        shown = str(app.screen.query_one("#totals").render())
    with open_fleet(lab.settings, write=True) as fleet:
        overview = fleet_overview(fleet, fleet_today())
    assert len(overview.nodes) == LAB_NODES
    assert all(n.reachable and n.last_sync_ok for n in overview.nodes), overview.nodes
    assert overview.totals.bytes_this_period >= before > 0
    assert f"{overview.totals.configurations} configurations" in shown


def fleet_today():
    from datetime import date

    return date.today()
