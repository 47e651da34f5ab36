"""Each screen at 80x24 and 160x48 on fixed data (fixed dates, fixed keys, pushes refused
before any packet). Update after a deliberate change with `--snapshot-update`, and look."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RichLog

from orchestrator.settings import Settings
from orchestrator.tui.app import WgfleetApp
from tests.tui.conftest import TODAY, settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def steps(*keys: str, search: str | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if search is not None:
            pilot.app.screen.query_one(Input).value = search
            await pilot.pause()
            pilot.app.screen.query_one("VirtualTable").focus()
            await settle(pilot)
        # A text cursor blinks every 0.5 s: on a slow machine the capture could catch it off.
        # Steady on, as the stored images show it.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


class Shows(Protocol):
    def __call__(self, size: tuple[int, int], *keys: str, search: str | None = None) -> bool: ...


@pytest.fixture
def shows(snap_compare: Any, settings: Settings) -> Shows:
    """Whether the app on the test fleet, at ``size`` once ``keys`` are pressed (and ``search``
    typed in the filter), looks as the test's stored image."""

    def compare(size: tuple[int, int], *keys: str, search: str | None = None) -> bool:
        app = WgfleetApp(settings, today=TODAY)
        return bool(snap_compare(app, terminal_size=size, run_before=steps(*keys, search=search)))

    return compare


@pytest.mark.parametrize("size", SIZES)
def test_fleet(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_with_daily_totals(shows: Shows, settings: Settings, size: tuple[int, int]) -> None:
    """A provider whose policy keeps a daily total per location sees it charted per node."""
    from datetime import timedelta

    from orchestrator.service.context import open_fleet

    with open_fleet(settings, write=True) as fleet:
        fleet.store.replace_policies({"privacy.node_daily_totals": "true"})
        for back in range(14):
            day = TODAY - timedelta(days=back)
            fleet.store.add_node_daily(
                day, {"node1": (back % 5 + 1) * 2**28, "node2": (back % 3) * 2**27}
            )
    assert shows(size)


@pytest.mark.parametrize("size", SIZES)
def test_configurations(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "2")


@pytest.mark.parametrize("size", SIZES)
def test_configurations_filtered(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "2", search="bob")


@pytest.mark.parametrize("size", SIZES)
def test_accounts(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "3")


@pytest.mark.parametrize("size", SIZES)
def test_operations_after_a_failed_sync(
    snap_compare: Any, settings: Settings, size: tuple[int, int]
) -> None:
    app = WgfleetApp(settings, today=TODAY)

    async def run_before(pilot: Pilot[Any]) -> None:
        await steps("4", "s")(pilot)
        pilot.app.clear_notifications()
        # The log follows its last line once it knows its width, which a loaded machine may
        # learn after the capture: the image shows it at its end, as an operator sees it.
        pilot.app.screen.query_one(RichLog).scroll_end(animate=False, immediate=True)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "question_mark")


@pytest.mark.parametrize("size", SIZES)
def test_disable_dialog(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "2", "d")


@pytest.mark.parametrize("size", SIZES)
def test_delete_account_dialog(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "3", "x")


@pytest.mark.parametrize("size", SIZES)
def test_keys(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "5")


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "keys", [pytest.param((), id="dashboard"), pytest.param(("enter",), id="node")]
)
def test_with_every_alert(
    snap_compare: Any, alerting: Settings, size: tuple[int, int], keys: tuple[str]
) -> None:
    """The fleet dashboard listing every alert kind the seed raises, and its first node."""
    app = WgfleetApp(alerting, today=TODAY)
    assert snap_compare(app, terminal_size=size, run_before=steps(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_operations_before_a_run(shows: Shows, size: tuple[int, int]) -> None:
    assert shows(size, "4")


def test_light_theme(snap_compare: Any, alerting: Settings) -> None:
    """Ctrl+T: the same dashboard in the light theme (every colour from the theme's variables)."""
    app = WgfleetApp(alerting, today=TODAY)
    assert snap_compare(app, terminal_size=(80, 24), run_before=steps("ctrl+t"))
