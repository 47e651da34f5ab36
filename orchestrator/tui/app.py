"""The operator's terminal UI: four screens over the same service functions as the CLI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from orchestrator.settings import Settings
from orchestrator.tui.backend import Backend
from orchestrator.tui.screens.accounts import AccountsScreen
from orchestrator.tui.screens.base import WgfleetScreen
from orchestrator.tui.screens.configurations import ConfigurationsScreen
from orchestrator.tui.screens.fleet import FleetScreen
from orchestrator.tui.screens.help import HelpScreen, bindings_of
from orchestrator.tui.screens.keys import KeysScreen
from orchestrator.tui.screens.operations import OperationsScreen

# mode -> (title, screen class), in the order of their number keys.
SCREENS: dict[str, tuple[str, type[Screen[None]]]] = {
    "fleet": ("Fleet", FleetScreen),
    "configurations": ("Configurations", ConfigurationsScreen),
    "accounts": ("Accounts", AccountsScreen),
    "operations": ("Operations", OperationsScreen),
    "keys": ("Keys", KeysScreen),
}


class WgfleetCommands(Provider):
    """Every screen and every action of every screen, for the command palette."""

    def commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, WgfleetApp)
        for mode, (title, screen) in SCREENS.items():
            yield (
                f"Go to {title}",
                f"show the {title.lower()} screen",
                partial(app.switch_mode, mode),
            )
            for binding in bindings_of(screen.BINDINGS):
                if not binding.show:
                    continue
                yield (
                    f"{title}: {binding.description}",
                    f"key {binding.key} on the {title.lower()} screen",
                    partial(app.run_on_screen, mode, binding.action),
                )
        yield ("Help", "every key of every screen", app.action_help)

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class WgfleetApp(App[None]):
    CSS_PATH = "wgfleet.tcss"
    TITLE = "wgfleet"
    MODES: ClassVar = {mode: screen for mode, (_title, screen) in SCREENS.items()}
    DEFAULT_MODE = "fleet"
    COMMANDS: ClassVar = App.COMMANDS | {WgfleetCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('fleet')", "Fleet"),
        Binding("2", "switch_mode('configurations')", "Configs"),
        Binding("3", "switch_mode('accounts')", "Accounts"),
        Binding("4", "switch_mode('operations')", "Ops"),
        Binding("5", "switch_mode('keys')", "Keys"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, settings: Settings, *, today: date | None = None) -> None:
        super().__init__()
        self.backend = Backend(settings, today=today)
        self.sub_title = settings.source  # never the store URL: it may carry a password

    def _fatal_error(self) -> None:
        """Textual prints a crash's traceback with every frame's local variables, and a local
        may be a client's private key (a configuration being shown): wgfleet's shows none."""
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None)
        self._exit_renderables.append(
            Segments(self.console.render(traceback, self.console.options))
        )
        self._close_messages_no_wait()

    def action_help(self) -> None:
        sections = [("Everywhere", list(self.BINDINGS))]
        sections += [(title, list(screen.BINDINGS)) for title, screen in SCREENS.values()]
        self.push_screen(HelpScreen(sections))

    async def run_on_screen(self, mode: str, action: str) -> None:
        """Show ``mode``'s screen and run one of its actions there (for the command palette)."""
        await self.switch_mode(mode)
        screen = self.screen
        if isinstance(screen, WgfleetScreen):  # act on its rows, not on an empty table
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(screen.ready.wait(), timeout=10)
        await screen.run_action(action)


def run(settings: Settings) -> None:
    WgfleetApp(settings).run()
