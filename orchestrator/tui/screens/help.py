"""Every key of every screen, read from the screens' own bindings so it cannot drift."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from orchestrator.tui.keymap import bindings

INTRO = (
    "wgfleet: the same service functions as the `wgfleet` command. Changes to configurations "
    "and accounts are pushed live to the nodes concerned; a node that does not take a change "
    "keeps it pending until Apply. Writers take the fleet lock: if cron or a pipeline holds "
    "it, you are told at once and nothing changes."
)


def bindings_of(bindings: Iterable[BindingType]) -> list[Binding]:
    found = []
    for b in bindings:
        if isinstance(b, Binding):
            found.append(b)
        else:
            found.append(Binding(*b))
    return [b for b in found if b.description]


def key_name(key: str) -> str:
    names = {
        "slash": "/",
        "question_mark": "?",
        "escape": "Esc",
        "enter": "Enter",
        "space": "Space",
        "asterisk": "*",
        "right_square_bracket": "]",
        "left_square_bracket": "[",
        "ctrl+p": "Ctrl+P",
        "ctrl+t": "Ctrl+T",
    }
    return ", ".join(names.get(k, k) for k in key.split(","))


def help_text(sections: Iterable[tuple[str, Iterable[BindingType]]]) -> str:
    lines = [INTRO, ""]
    for title, keys in sections:
        lines.append(title)
        for b in bindings_of(keys):
            lines.append(f"  {key_name(b.key):<10} {b.description}")
        lines.append("")
    lines.append(
        "Ctrl+P opens the command palette, which offers every action above. The footer shows "
        "the keys that fit the terminal; the mouse works too: click a tab, a row, a header."
    )
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("help")

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label("Help", classes="dialog-title")
            with VerticalScroll(classes="dialog-body", id="help-body"):
                yield Static(help_text(self.sections), markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
