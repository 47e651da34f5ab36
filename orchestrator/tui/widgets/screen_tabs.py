"""The bar at the top of every screen: a tab per screen (click one, or press its number) and
which settings file the fleet was opened from."""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static, Tab, Tabs


class ScreenTabs(Tabs, can_focus=False):
    """Tabs that switch the app's mode; the keyboard stays on the screen's table."""


class TopBar(Horizontal):
    def __init__(self, screens: Iterable[tuple[str, str]], active: str, source: str) -> None:
        """``screens``: (mode, title) in the order of their number keys."""
        super().__init__(classes="top-bar")
        self.screens = list(screens)
        self.active = active
        self.source = source

    def compose(self) -> ComposeResult:
        yield ScreenTabs(
            *(
                Tab(f"{number} {title}", id=mode)
                for number, (mode, title) in enumerate(self.screens, start=1)
            ),
            active=self.active,
        )
        yield Static(self.source, classes="source", markup=False)

    @on(Tabs.TabActivated)
    def _switch(self, event: Tabs.TabActivated) -> None:
        event.stop()
        mode = event.tab.id
        if mode is not None and mode != self.active:
            self.tabs.active = self.active  # this screen stays as it is; the mode changes
            self.app.switch_mode(mode)

    @property
    def tabs(self) -> ScreenTabs:
        return self.query_one(ScreenTabs)
