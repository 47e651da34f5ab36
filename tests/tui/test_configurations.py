"""The configurations screen changes the store exactly as the equivalent CLI command does,
shows a failed push as a notification, and filters 5,000 rows at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, SelectionList, Static

from orchestrator.core.models import DisabledReason
from orchestrator.core.overview import ConfigurationRow
from orchestrator.service.context import open_fleet
from orchestrator.service.lock import fleet_lock
from orchestrator.settings import Settings
from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.screens.configurations import ConfigurationsScreen
from orchestrator.tui.widgets.dialogs import ClientConfigDialog, ConfirmDialog, TopUpDialog
from orchestrator.tui.widgets.virtual_table import VirtualTable
from tests.tui.conftest import (
    GIB,
    TODAY,
    Notes,
    dump,
    make_settings,
    run_cli,
    running_app,
    seed,
    settle,
    switch_to,
)


async def open_configurations(pilot: Pilot[None], name: str | None = None) -> ConfigurationsScreen:
    screen = await switch_to(pilot, "2", ConfigurationsScreen)
    if name is not None:
        screen.query_one("#filter", Input).value = name
        await pilot.pause()
        screen.query_one(VirtualTable).focus()
        current = screen.query_one(VirtualTable).current
        assert isinstance(current, ConfigurationRow) and current.name == name
    return screen


async def filtered(pilot: Pilot[None], query: str) -> ConfigurationsScreen:
    screen = await open_configurations(pilot)
    screen.query_one("#filter", Input).value = query
    await pilot.pause()
    screen.query_one(VirtualTable).focus()
    return screen


@asynccontextmanager
async def configurations_app(
    settings: Settings,
    name: str | None = None,
    *,
    size: tuple[int, int] = (80, 24),
    today: date | None = TODAY,
) -> AsyncIterator[tuple[WgfleetApp, Pilot[None], Notes]]:
    """The app on the configurations screen (``name`` highlighted), recording notifications."""
    async with running_app(settings, size=size, today=today) as (app, pilot, notes):
        await open_configurations(pilot, name)
        yield app, pilot, notes


def same_as_cli(tui: Settings, cli: Settings, exit_code: int, *argv: str) -> None:
    """The CLI twin of what the TUI did exits with ``exit_code`` and leaves the same store."""
    assert run_cli(cli, *argv) == exit_code
    assert dump(tui) == dump(cli)


async def top_up(
    pilot: Pilot[None], invoice: str, amount: str, *, bytes_granted: str = "", plan: str = ""
) -> None:
    """Fill the top-up dialog of the highlighted configuration and press OK."""
    await pilot.press("t")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, TopUpDialog)
    dialog.query_one("#invoice", Input).value = invoice
    dialog.query_one("#amount", Input).value = amount
    if bytes_granted:
        dialog.query_one("#bytes", Input).value = bytes_granted
    if plan:
        dialog.query_one("#plan", Select).value = plan
    await pilot.click("#ok")
    await settle(pilot)


def pushed_failure(notes: Notes, node: str) -> None:
    failures = notes.having("push failed", "error")
    assert failures, notes.seen
    assert any(node in message for _s, _t, message in failures)
    assert "no pinned known_hosts" in failures[0][2]


async def test_disable_changes_the_store_as_peers_disable(twins: tuple[Settings, Settings]):
    tui, cli = twins
    async with configurations_app(tui, "alice-1") as (app, pilot, notes):
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("enter")  # the dialog's Disable button has focus; reason: operator
        await settle(pilot)
        assert app.is_running
    same_as_cli(tui, cli, 1, "peers", "disable", "alice-1")  # the push fails on both
    with open_fleet(tui, write=True) as fleet:
        config = fleet.store.configuration("alice-1")
    assert (config.enabled, config.disabled_reason) == (False, DisabledReason.OPERATOR)
    assert notes.having("disabled: alice-1")
    pushed_failure(notes, "node1")
    pushed_failure(notes, "node2")


async def test_enable_changes_the_store_as_peers_enable(twins: tuple[Settings, Settings]):
    tui, cli = twins
    async with configurations_app(tui, "bob-2") as (_app, pilot, notes):
        await pilot.press("e")
        await settle(pilot)
    same_as_cli(tui, cli, 1, "peers", "enable", "bob-2")
    with open_fleet(tui, write=True) as fleet:
        assert fleet.store.configuration("bob-2").enabled
    pushed_failure(notes, "node2")


async def test_top_up_changes_the_store_as_topup(twins: tuple[Settings, Settings]):
    tui, cli = twins
    # today=None: the CLI dates the purchase today too
    async with configurations_app(tui, "bob-1", today=None) as (_app, pilot, notes):
        # Sizes as the CLI takes them: 5GiB and its number of bytes are the same purchase.
        await top_up(pilot, "INV-9", "4.99", bytes_granted="5GiB")
        # The same purchase again grants nothing, and says so; the same invoice with other
        # fields is a conflict that grants nothing either.
        await top_up(pilot, "INV-9", "4.99", bytes_granted=str(5 * GIB))
        await top_up(pilot, "INV-9", "4.99", plan="basic")
    same_as_cli(
        tui,
        cli,
        0,
        "topup",
        "bob-1",
        "--bytes",
        str(5 * GIB),
        "--amount",
        "4.99",
        "--invoice",
        "INV-9",
    )
    assert notes.having(f"granted {5 * GIB} bytes to bob-1")
    assert notes.having("already recorded", "warning")
    assert notes.having("invoice INV-9 was recorded before with", "error")
    with open_fleet(tui, write=True) as fleet:
        assert fleet.store.topup("INV-9") is not None
        assert fleet.store.topup("INV-9").purchased_on == date.today()  # type: ignore[union-attr]


async def test_top_up_refused_by_the_service_is_an_error_notification(settings: Settings):
    before = dump(settings)
    async with configurations_app(settings, "bob-1") as (app, pilot, notes):
        await top_up(pilot, "bad invoice!", "4.99", bytes_granted="10")
        assert app.is_running
    assert dump(settings) == before
    assert notes.having("--invoice 'bad invoice!'", "error")


async def test_remove_asks_then_changes_the_store_as_peers_remove(
    twins: tuple[Settings, Settings],
):
    tui, cli = twins
    async with configurations_app(tui, "alice-2") as (app, pilot, notes):
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # Cancel has the focus: nothing happens
        await settle(pilot)
        assert dump(tui)["configurations"] == dump(cli)["configurations"]
        await pilot.press("x")
        await pilot.pause()
        await pilot.click("#ok")
        await settle(pilot)
    same_as_cli(tui, cli, 1, "peers", "remove", "alice-2", "--yes")
    assert "alice-2" not in [c[0] for c in dump(tui)["configurations"]]
    pushed_failure(notes, "node3")


async def test_add_shows_the_client_config_and_qr_once(settings: Settings):
    async with configurations_app(settings, "carol-1", size=(160, 48)) as (app, pilot, notes):
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert dialog.query_one("#account", Input).value == "carol"  # from the highlighted row
        nodes = dialog.query_one("#nodes", SelectionList)
        nodes.deselect("node2")
        nodes.deselect("node3")
        dialog.query_one("#quota", Input).value = "3 GiB"
        dialog.query_one("#plan", Select).value = "basic"
        await pilot.click("#ok")
        await pilot.pause()
        assert "quota or a plan, not both" in str(dialog.query_one("#dialog-error").render())
        dialog.query_one("#plan", Select).clear()
        dialog.query_one("#quota", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        shown = app.screen
        assert isinstance(shown, ClientConfigDialog)
        texts = [str(s.render()) for s in shown.query(Static)]
        assert any("[Interface]" in t and "PrivateKey = " in t for t in texts)
        assert shown.query(".qr")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfigurationsScreen)
    with open_fleet(settings, write=True) as fleet:
        config = fleet.store.configuration("carol-2")
    assert (config.account, config.nodes, config.quota_bytes) == ("carol", ("node1",), 3 * GIB)
    assert config.key_created_on == TODAY
    assert notes.having("configuration carol-2 for carol on node1")
    pushed_failure(notes, "node1")
    # The private key went to the screen only: no notification carried it.
    assert not [n for n in notes.seen if "PrivateKey" in n[2]]


async def test_a_held_fleet_lock_is_a_warning_and_changes_nothing(settings: Settings):
    before = dump(settings)
    async with configurations_app(settings, "alice-1") as (app, pilot, notes):
        with fleet_lock(settings):
            await pilot.press("e")
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("enter")
            await settle(pilot)
        assert app.is_running
    assert dump(settings) == before
    assert notes.having("fleet busy", "warning")


@pytest.fixture
def big(tmp_path: object) -> Settings:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    settings = make_settings(tmp_path / "big")
    seed(settings, extra=5000)
    return settings


async def test_filter_finds_one_configuration_among_5000_at_once(big: Settings):
    async with running_app(big) as (_app, pilot, _notes):
        screen = await open_configurations(pilot)
        table = screen.query_one(VirtualTable)
        assert len(table.rows) == 5005
        screen.query_one("#filter", Input).value = "user04321"
        await pilot.pause()
        assert [r.name for r in table.rows] == ["user04321-1"]
        assert "user04321-1" in table.render_line(1).text
        assert str(screen.query_one("#count", Static).render()) == "1 of 5005"
        screen.query_one("#filter", Input).value = ""
        await pilot.pause()
        assert len(table.rows) == 5005


async def test_sorting_by_usage_puts_the_fullest_first(settings: Settings):
    async with running_app(settings, size=(160, 48)) as (_app, pilot, _notes):
        screen = await open_configurations(pilot)
        for _ in range(3):  # name -> account -> nodes -> usage (descending)
            await pilot.press("o")
        await pilot.pause()
        names = [r.name for r in screen.query_one(VirtualTable).rows]
        assert names[:3] == ["alice-2", "alice-1", "bob-1"]


async def test_rotate_keys_keeps_the_configuration_and_shows_its_new_config_once(
    settings: Settings,
):
    with open_fleet(settings, write=True) as fleet:
        before = fleet.store.configuration("carol-1")
        usage = fleet.store.usage("carol-1")
    async with configurations_app(settings, "carol-1", size=(160, 48)) as (app, pilot, notes):
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        app.screen.query_one("#ok", Button).press()
        await settle(pilot)
        assert isinstance(app.screen, ClientConfigDialog)
        assert set(app.screen.client_configs) == {"node1", "node2", "node3"}
    with open_fleet(settings, write=True) as fleet:
        after = fleet.store.configuration("carol-1")
        assert fleet.store.usage("carol-1") == usage
    assert after.previous_public_key == before.public_key != after.public_key
    assert after.addresses == before.addresses
    assert notes.having("carol-1: new keys", None)
    pushed_failure(notes, "node3")


async def test_marked_rows_are_disabled_together_as_one_peers_disable(
    twins: tuple[Settings, Settings],
):
    tui, cli = twins
    async with running_app(tui) as (_app, pilot, _notes):
        screen = await filtered(pilot, "alice")
        await pilot.press("space", "space")  # alice-1 and alice-2, the cursor moving down
        assert screen.marked == {"alice-1", "alice-2"}
        assert "2 marked" in str(screen.query_one("#count", Static).render())
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert screen.marked == set()
    same_as_cli(tui, cli, 1, "peers", "disable", "alice-1", "alice-2")  # the pushes fail


async def test_mark_shown_marks_what_the_filter_shows_and_remove_takes_them_all(
    twins: tuple[Settings, Settings],
):
    tui, cli = twins
    async with running_app(tui, size=(160, 48)) as (app, pilot, _notes):
        screen = await filtered(pilot, "bob")
        await pilot.press("asterisk")
        assert screen.marked == {"bob-1", "bob-2"}
        await pilot.press("asterisk")  # again: unmarked
        assert screen.marked == set()
        await pilot.press("asterisk", "x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#ok")
        await settle(pilot)
    same_as_cli(tui, cli, 1, "peers", "remove", "bob-1", "bob-2", "--yes")
    assert not [c for c in dump(tui)["configurations"] if c[0].startswith("bob")]
