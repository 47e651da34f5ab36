"""The keys screen: ages from the store, overdue first, and a peer rotation that changes the
store as `wgfleet keys rotate peer` does, showing the new client config once."""

from __future__ import annotations

from dataclasses import replace

from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Static

from orchestrator.service.context import open_fleet
from orchestrator.settings import KeySettings, Settings
from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.screens.keys import KeysScreen
from orchestrator.tui.widgets.dialogs import ClientConfigDialog, ConfirmDialog
from tests.tui.conftest import TODAY, running_app, settle, switch_to


async def open_keys(pilot: Pilot[None]) -> KeysScreen:
    return await switch_to(pilot, "5", KeysScreen)


async def test_keys_are_listed_overdue_first(settings: Settings):
    strict = replace(settings, keys=KeySettings(node_max_age_days=100))
    app = WgfleetApp(strict, today=TODAY)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_keys(pilot)
        table = screen.query_one(DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        # The seeded nodes' keys are 115 to 135 days old: past 100 days, so they lead.
        # Columns most important first (screens/keys.py KEY_COLUMNS): kind, subject, status.
        assert [str(r[0]) for r in rows[:3]] == ["node", "node", "node"]
        assert all(str(r[2]) == "overdue" for r in rows[:3])
        assert {str(r[1]) for r in rows if str(r[0]) == "peer"} >= {"alice-1", "bob-1"}
        assert "3 overdue" in str(screen.query_one("#key-totals", Static).render())
        await pilot.press("o")
        await pilot.pause()
        assert table.row_count == 3


async def test_rotating_a_peer_keeps_its_identity_and_shows_the_config_once(settings: Settings):
    with open_fleet(settings, write=True) as fleet:
        before = fleet.store.configuration("bob-1")
    async with running_app(settings, size=(160, 48)) as (app, pilot, notes):
        screen = await open_keys(pilot)
        table = screen.query_one(DataTable)
        row = next(
            i
            for i in range(table.row_count)
            if [str(c) for c in table.get_row_at(i)[:2]] == ["peer", "bob-1"]
        )
        table.move_cursor(row=row)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        app.screen.query_one("#ok", Button).press()
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ClientConfigDialog)
        shown = dialog.client_configs["node1"]
    with open_fleet(settings, write=True) as fleet:
        after = fleet.store.configuration("bob-1")
    assert after.previous_public_key == before.public_key != after.public_key
    assert (after.addresses, after.quota_bytes, after.account) == (
        before.addresses,
        before.quota_bytes,
        before.account,
    )
    assert "PrivateKey = " in shown and f"Address = {before.addresses['node1']}/32" in shown
    # No node answers in these tests: the push failure is a notification, not a crash.
    assert notes.having("push failed", "error")
    assert not any("PrivateKey" in message for _s, _t, message in notes.seen)


async def test_a_node_action_on_a_peer_row_is_refused_politely(settings: Settings):
    async with running_app(settings) as (app, pilot, notes):
        screen = await open_keys(pilot)
        table = screen.query_one(DataTable)
        row = next(i for i in range(table.row_count) if str(table.get_row_at(i)[0]) == "peer")
        table.move_cursor(row=row)
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        assert notes.having("", "warning")
