"""The fleet dashboard on a real SQLite store: every alert kind, live refresh from another
process, drilling into a node, footers that fit, the filter, the theme."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent

from orchestrator.core.alerts import AlertKind
from orchestrator.service.context import open_fleet
from orchestrator.service.dashboard import check_reachability, fleet_dashboard
from orchestrator.settings import Settings, TuiSettings
from orchestrator.tui.screens.fleet import FleetScreen
from orchestrator.tui.screens.node import NodeScreen
from orchestrator.tui.widgets.fitted_footer import key_width
from tests.tui.conftest import NOON, TODAY, running_app, settle, switch_to


def alert_text(screen: FleetScreen) -> str:
    return str(screen.query_one("#alert-lines", Static).render())


def test_the_seed_raises_every_alert_kind_errors_first(alerting: Settings) -> None:
    """The read model the dashboard draws (and a CLI could print as JSON)."""
    with open_fleet(alerting) as fleet:
        reach = check_reachability(fleet, NOON)
        dashboard = fleet_dashboard(fleet, TODAY, NOON, reach)
    kinds = [a.kind for a in dashboard.alerts]
    assert set(kinds) == set(AlertKind)
    severities = [a.severity for a in dashboard.alerts]
    assert severities == sorted(severities)  # "error" sorts before "warning"
    assert dashboard.node_alerts["node1"] >= {AlertKind.SYNC_STALE, AlertKind.KEY_OVERDUE}
    assert dashboard.as_dict()["alerts"][0]["kind"] == "unreachable"


async def test_the_dashboard_lists_the_alerts_above_the_nodes(alerting: Settings) -> None:
    async with running_app(alerting, size=(160, 48)) as (app, pilot, _notes):
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        text = alert_text(screen)
        for kind in AlertKind:
            assert f" {kind}  " in text, kind
        assert text.index("unreachable") < text.index("sync stale")  # errors first
        table = screen.query_one(DataTable)
        rows = {
            str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(3)
        }
        assert rows["node1"][:3] == ["node1", "no, just now", "ok, 2d ago"]
        assert rows["node3"][2] == "ok, 2m ago"


async def test_a_sync_finished_by_another_process_shows_without_a_keypress(
    settings: Settings,
) -> None:
    """A real `wgfleet sync` in a second process writes the same store (every node refuses
    before any packet: no pinned host keys); the open dashboard shows it on its own."""
    live = replace(settings, tui=TuiSettings("1s"))
    config = Path(settings.data_dir).parent / "settings.yml"
    async with running_app(live, size=(120, 36)) as (app, pilot, _notes):
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        assert "sync failed" not in alert_text(screen)
        wgfleet = Path(sys.executable).parent / "wgfleet"
        sync = await asyncio.create_subprocess_exec(
            str(wgfleet), "--config", str(config), "sync", stdout=asyncio.subprocess.DEVNULL
        )
        try:
            assert await asyncio.wait_for(sync.wait(), timeout=60) == 1  # every node failed
        finally:
            if sync.returncode is None:
                sync.kill()
                await sync.wait()
        for _ in range(50):  # no key pressed: only the refresh timer reads the store again
            if "sync failed" in alert_text(screen):
                break
            await pilot.pause(0.1)
        assert "✖ sync failed  node1, node2, node3" in alert_text(screen)
        cells = [str(screen.query_one(DataTable).get_row_at(i)[2]) for i in range(3)]
        assert cells == ["failed", "failed", "failed"]


async def test_enter_drills_into_a_node_and_escape_comes_back(alerting: Settings) -> None:
    async with running_app(alerting) as (app, pilot, _notes):
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # node3: audited, failed
        await settle(pilot)
        node = app.screen
        assert isinstance(node, NodeScreen) and node.node_name == "node3"
        configs = node.query_one("#node-configurations", DataTable)
        assert [str(configs.get_row_at(i)[0]) for i in range(configs.row_count)] == [
            "alice-2",
            "carol-1",
        ]
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert node.query_one(TabbedContent).active == "tab-audit"
        note = str(node.query_one("#audit-note", Static).render())
        assert note.startswith("last audit: failed") and "press u" in note
        await pilot.press("right_square_bracket")
        keys = node.query_one("#node-keys", DataTable)
        assert {str(keys.get_row_at(i)[1]) for i in range(keys.row_count)} == {
            "node3",
            "alice-2",
            "carol-1",
        }
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)


async def test_slash_filters_the_nodes(settings: Settings) -> None:
    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        await pilot.press("slash", *"node2", "enter")
        await pilot.pause()
        table = app.screen.query_one("#nodes", DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["node2"]
        assert app.screen.query_one("#node-filter", Input).display  # kept while it filters
        assert app.screen.focused is table


@pytest.mark.parametrize("width", [80, 250])
async def test_footers_show_only_whole_keys_and_always_help(settings: Settings, width: int):
    async with running_app(settings, size=(width, 24)) as (app, pilot, _notes):
        for key in ("1", "2", "3", "4", "5"):
            await pilot.press(key)
            await settle(pilot)
            footer_keys = [
                k for k in app.screen.query("FooterKey") if "-command-palette" not in k.classes
            ]
            assert sum(key_width(k) for k in footer_keys) <= width - 12
            assert "help" in {k.action for k in footer_keys}


async def test_ctrl_t_switches_between_the_light_and_the_dark_theme(settings: Settings):
    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"


async def test_a_click_on_a_tab_switches_the_screen(settings: Settings):
    from orchestrator.tui.screens.keys import KeysScreen

    async with running_app(settings, size=(120, 30)) as (app, pilot, _notes):
        await settle(pilot)
        await pilot.click("#keys")  # the Keys tab
        await settle(pilot)
        assert isinstance(app.screen, KeysScreen)


async def test_slash_filters_the_keys(settings: Settings) -> None:
    from orchestrator.tui.screens.keys import KeysScreen

    async with running_app(settings, size=(120, 30)) as (_app, pilot, _notes):
        screen = await switch_to(pilot, "5", KeysScreen)
        await pilot.press("slash", *"bob")
        await pilot.pause()
        assert {a.record.subject for a in screen.shown} == {"bob-1", "bob-2"}
        await pilot.press("escape")
        assert screen.focused is screen.query_one("#keys")


def test_wgfleet_alerts_prints_the_same_alerts_and_exits_1_on_an_error(
    alerting: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.tui.conftest import run_cli

    assert run_cli(alerting, "--json", "alerts") == 1
    out, err = capsys.readouterr()
    kinds = {a["kind"] for a in json.loads(out)["alerts"]}
    assert kinds >= {"unreachable", "sync failed", "audit failed", "over quota", "key overdue"}
    assert "wgfleet: sync failed: node2: its last sync failed" in err
    assert run_cli(alerting, "--json", "alerts", "--no-check") == 1
    assert "unreachable" not in capsys.readouterr().out  # no node was asked


async def test_a_narrowed_terminal_refits_the_footer_and_the_nodes(settings: Settings):
    async with running_app(settings, size=(160, 40)) as (app, pilot, _notes):
        await settle(pilot)
        table = app.screen.query_one("#nodes", DataTable)
        assert len(table.columns) == 7
        await pilot.resize_terminal(50, 24)
        await settle(pilot)
        keys = [k for k in app.screen.query("FooterKey") if "-command-palette" not in k.classes]
        assert sum(key_width(k) for k in keys) <= 50 - 12
        shown = [str(c.label) for c in table.columns.values()]
        assert shown == ["node", "reachable", "last sync", "audit", "push"]  # the first that fit
        assert sum(c.width + 2 for c in table.columns.values()) <= 50


async def test_a_click_on_the_highlighted_node_opens_it(settings: Settings):
    async with running_app(settings) as (app, pilot, _notes):
        await settle(pilot)
        await pilot.click("#nodes", offset=(3, 2))  # the second node's row (a header above)
        await pilot.click("#nodes", offset=(3, 2))  # clicked again: opened
        await settle(pilot)
        assert isinstance(app.screen, NodeScreen) and app.screen.node_name == "node2"


async def test_slash_filters_the_operations_log(settings: Settings) -> None:
    from textual.widgets import RichLog

    from orchestrator.tui.screens.operations import OperationsScreen

    async with running_app(settings, size=(120, 30)) as (_app, pilot, _notes):
        screen = await switch_to(pilot, "4", OperationsScreen)
        await pilot.press("s")
        await settle(pilot)
        everything = len(screen.query_one(RichLog).lines)
        await pilot.press("slash", *"node2")
        await pilot.pause()
        shown = " ".join(line.text for line in screen.query_one(RichLog).lines)  # lines wrap
        assert len(screen.query_one(RichLog).lines) < everything
        assert shown.startswith("node2: failed") and "node1:" not in shown
