"""A footer that shows only the keys that fit, whole, and always `? Help`.

Textual's Footer lays every key out in one line and lets the terminal cut the last ones
mid-word ("3 Account▏"). This one measures each key as the compact footer draws it and keeps
them from the left (keymap.py lists a screen's keys most important first) while they fit,
with Help and Quit always; what it leaves out stays in `?` help and the command palette.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ALWAYS_SHOWN = ("help", "quit")  # actions every footer keeps, whatever the width
PALETTE_WIDTH = 12  # "^p palette" docked right, with its border and padding


def key_width(key: FooterKey) -> int:
    """Cells a key takes in a compact footer: key, space, description, then a margin."""
    description = f" {key.description}" if key.description else ""
    return cell_len(key.key_display) + cell_len(description) + 1


class FittedFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)
        self._laid_out_for = 0

    def compose(self) -> ComposeResult:
        keys: list[Widget] = list(super().compose())
        room = self.app.size.width - PALETTE_WIDTH
        self._laid_out_for = self.app.size.width
        plain = [
            k for k in keys if isinstance(k, FooterKey) and "-command-palette" not in k.classes
        ]
        kept = {id(k) for k in plain if k.action in ALWAYS_SHOWN}
        room -= sum(key_width(k) for k in plain if id(k) in kept)
        for key in plain:
            if id(key) in kept:
                continue
            width = key_width(key)
            if width > room:
                break  # the rest, in order, are in `?` and the palette
            kept.add(id(key))
            room -= width
        for widget in keys:
            if not isinstance(widget, FooterKey) or id(widget) in kept or widget not in plain:
                yield widget

    def on_resize(self, event: events.Resize) -> None:
        if self._laid_out_for and self.app.size.width != self._laid_out_for:
            self.call_after_refresh(self.recompose)
