"""The operator's terminal UI: five screens over the same service functions as the CLI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import date
from functools import partial
from typing import Any, ClassVar

from textual.app import App
from textual.binding import BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from orchestrator.service.audit import AuditResult
from orchestrator.settings import Settings
from orchestrator.tui.backend import Backend
from orchestrator.tui.keymap import KEYMAP, SCREENS, bindings
from orchestrator.tui.screens.accounts import AccountsScreen
from orchestrator.tui.screens.base import WgfleetScreen
from orchestrator.tui.screens.configurations import ConfigurationsScreen
from orchestrator.tui.screens.fleet import FleetScreen
from orchestrator.tui.screens.help import HelpScreen, bindings_of
from orchestrator.tui.screens.keys import KeysScreen
from orchestrator.tui.screens.operations import OperationsScreen

SCREEN_CLASSES: dict[str, str | Callable[[], Screen[Any]]] = {
    "fleet": FleetScreen,
    "configurations": ConfigurationsScreen,
    "accounts": AccountsScreen,
    "operations": OperationsScreen,
    "keys": KeysScreen,
}
THEMES = ("textual-dark", "textual-light")  # ctrl+t switches between them


class WgfleetCommands(Provider):
    """Every screen and every action of every screen, for the command palette."""

    def commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app = self.app
        assert isinstance(app, WgfleetApp)
        for mode, title in SCREENS:
            yield (
                f"Go to {title}",
                f"show the {title.lower()} screen",
                partial(app.switch_mode, mode),
            )
            for binding in bindings_of(KEYMAP[mode]):
                if binding.action == "focus_table":
                    continue  # a way back from the filter box, not an action
                yield (
                    f"{title}: {binding.description}",
                    f"key {binding.key} on the {title.lower()} screen",
                    partial(app.run_on_screen, mode, binding.action),
                )
        yield (
            "Light/dark theme",
            "switch between the light and the dark theme (ctrl+t)",
            app.action_toggle_theme,
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
    MODES: ClassVar = SCREEN_CLASSES
    DEFAULT_MODE = "fleet"
    COMMANDS: ClassVar = App.COMMANDS | {WgfleetCommands}

    BINDINGS: ClassVar[list[BindingType]] = bindings("app")

    def __init__(self, settings: Settings, *, today: date | None = None) -> None:
        super().__init__()
        self.backend = Backend(settings, today=today)
        self.sub_title = settings.source  # never the store URL: it may carry a password
        self.theme = THEMES[0]
        # The last audit run in this session, with its rows (the store keeps only verdicts).
        self.last_audit: AuditResult | None = None

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
        sections += [(title, list(KEYMAP[mode])) for mode, title in SCREENS]
        sections.append(("A node (enter on the Fleet screen)", list(KEYMAP["node"])))
        self.push_screen(HelpScreen(sections))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

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
