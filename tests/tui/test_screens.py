"""Accounts, fleet, operations, help and the command palette, on a real SQLite store."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Label, RichLog, Static

from orchestrator.core.overview import AccountRow
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings
from orchestrator.tui.app import WgfleetCommands
from orchestrator.tui.screens.accounts import AccountsScreen
from orchestrator.tui.screens.fleet import FleetScreen
from orchestrator.tui.screens.help import HelpScreen
from orchestrator.tui.screens.operations import OperationsScreen
from orchestrator.tui.widgets.dialogs import ConfirmDialog
from orchestrator.tui.widgets.virtual_table import VirtualTable
from tests.tui.conftest import dump, run_cli, running_app, settle, switch_to


def cells(table: DataTable[object]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_fleet_shows_one_row_per_node_and_the_totals(settings: Settings):
    with open_fleet(settings, write=True) as fleet:
        fleet.store.mark_pushed("node1", fleet.store.node_revisions()["node1"][0], True)
        fleet.store.mark_sync_failed(["node2"])
        fleet.store.mark_audited({"node1": True, "node2": False})
    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        rows = cells(screen.query_one(DataTable))
        # node, reachable, last sync, audit, push, peers, key age (most important first)
        unreachable = "no, just now"  # the settings pin no known_hosts file
        assert rows == [
            ["node1", unreachable, "never", "passed", "ok", "3/3", "135 d"],
            ["node2", unreachable, "failed", "failed", "pending", "2/3", "125 d"],
            ["node3", unreachable, "never", "never", "pending", "2/2", "115 d"],
        ]
        totals = str(screen.query_one("#totals", Static).render())
        assert "5 configurations, 4 enabled, 1 over quota" in totals
        assert "2 pending push" in totals
        assert "6.11 GiB this period" in totals


async def test_accounts_search_and_detail(settings: Settings):
    async with running_app(settings) as (_app, pilot, _notes):
        screen = await switch_to(pilot, "3", AccountsScreen)
        screen.query_one("#search", Input).value = "bob"
        await pilot.pause()
        table = screen.query_one(VirtualTable)
        assert [a.username for a in table.rows] == ["bob"]
        configs = cells(screen.query_one("#account-configurations", DataTable))
        assert [c[0] for c in configs] == ["bob-1", "bob-2"]
        topups = cells(screen.query_one("#account-topups", DataTable))
        assert topups == [["INV-2", "2.99", "1.00 GiB", "2024-05-03"]]  # what fits 80 columns


async def test_delete_account_states_what_goes_and_what_stays(twins: tuple[Settings, Settings]):
    tui, cli = twins
    async with running_app(tui) as (app, pilot, notes):
        await switch_to(pilot, "3", AccountsScreen)
        app.screen.query_one("#search", Input).value = "bob"
        await pilot.pause()
        app.screen.query_one(VirtualTable).focus()
        await pilot.press("x")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        statement = dialog.body
        assert "the account bob" in statement and "bob-1, bob-2" in statement
        assert "usage" in statement and "removed from node1, node2" in statement
        assert (
            "Kept, for the books:" in statement
            and "INV-2" in statement
            and "configuration set to none" in (statement)
        )
        # A wrong name confirms nothing.
        dialog.query_one("#confirm", Input).value = "bo"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "type bob exactly" in str(dialog.query_one("#dialog-error", Label).render())
        dialog.query_one("#confirm", Input).value = "bob"
        await pilot.press("enter")
        await settle(pilot)
        assert [a.username for a in app.screen.query_one(VirtualTable).rows] == []
    assert run_cli(cli, "accounts", "delete", "bob", "--yes") == 1
    assert dump(tui) == dump(cli)
    kept = [t for t in dump(tui)["topups"] if t.invoice == "INV-2"]
    assert kept and kept[0].configuration is None
    assert notes.having("account bob erased with 2 configuration(s)")
    assert notes.having("push failed", "error")


async def test_sync_from_operations_names_each_failed_node(settings: Settings):
    async with running_app(settings) as (app, pilot, notes):
        screen = await switch_to(pilot, "4", OperationsScreen)
        await pilot.press("s")
        await settle(pilot)
        title = str(screen.query_one("#summary-title", Label).render())
        summary = str(screen.query_one("#summary", Static).render())
        assert title == "sync: 4 failure(s)"
        for node in ("node1", "node2", "node3"):
            assert f"  {node}: no pinned known_hosts file" in summary
        assert "  node3: push: no pinned known_hosts" in summary  # alice-2 went over quota
        states = {r[0]: r[1] for r in cells(screen.query_one("#operation-nodes", DataTable))}
        assert states == {"node1": "failed", "node2": "failed", "node3": "failed"}
        assert len(screen.query_one(RichLog).lines) >= 3
        assert notes.having("sync: 4 failure(s)", "error")
        assert app.is_running
    with open_fleet(settings, write=True) as fleet:
        assert fleet.store.node_health() == {
            "node1": (None, False),
            "node2": (None, False),
            "node3": (False, False),
        }


async def test_apply_and_plan_and_audit_and_deploy_fail_cleanly(settings: Settings):
    async with running_app(settings) as (app, pilot, notes):
        screen = await switch_to(pilot, "4", OperationsScreen)
        for key, title in (("p", "apply"), ("n", "plan (dry run, nothing changed)")):
            await pilot.press(key)
            await settle(pilot)
            assert str(screen.query_one("#summary-title", Label).render()) == (
                f"{title}: 3 failure(s)"
            )
        # No inventory here: audit and deploy refuse with the settings error, as the CLI does.
        for key in ("u", "d"):
            await pilot.press(key)
            await settle(pilot)
        assert [n[1] for n in notes.seen if n[0] == "error" and "inventory" in n[2]] == [
            "audit",
            "deploy",
        ]
        assert str(screen.query_one("#summary-title", Label).render()) == "deploy: did not run"
        assert app.is_running


async def test_help_lists_every_screens_keys(settings: Settings):
    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-body Static", Static).render())
        for words in ("Top-up", "Disable", "Delete account", "Sync", "Deploy", "Audit", "Cancel"):
            assert words in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_command_palette_offers_every_action(settings: Settings):
    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        provider = WgfleetCommands(app.screen)
        titles = [title for title, _help, _call in provider.commands()]
        for title in (
            "Go to Configurations",
            "Configurations: Disable",
            "Configurations: Top-up",
            "Configurations: Remove",
            "Configurations: Add",
            "Accounts: Delete account",
            "Operations: Sync",
            "Operations: Deploy",
            "Help",
        ):
            assert title in titles
        hits = [hit async for hit in provider.search("top-up")]
        assert hits
        # Running one switches to its screen and runs the action there.
        await app.run_on_screen("operations", "run('sync')")
        await settle(pilot)
        assert isinstance(app.screen, OperationsScreen)
        assert "sync" in str(app.screen.query_one("#summary-title", Label).render())


def test_account_row_search_text_is_lowercase() -> None:
    row = AccountRow("Eve", "DEV", None, (), ())
    assert row.search_text == "eve dev "


def test_wgfleet_tui_is_a_command() -> None:
    from orchestrator.cli import build_parser

    args = build_parser().parse_args(["tui"])
    assert args.handler.__name__ == "cmd_tui"


async def test_the_palette_runs_an_action_on_its_screen(settings: Settings):
    from orchestrator.tui.screens.configurations import ConfigurationsScreen
    from orchestrator.tui.widgets.dialogs import TopUpDialog

    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Configurations: Top")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, TopUpDialog)
        assert dialog.config_name == "alice-1"  # the first row, once the screen had loaded
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfigurationsScreen)
