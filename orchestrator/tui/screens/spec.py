"""What sets one table screen apart from the others; the classes in base.py do the rest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScreenSpec:
    name: str  # its keys in keymap.KEYMAP and, for a tab, its mode in keymap.SCREENS
    load: str  # names the read in an error notification
    focus: str  # selector of the widget the keyboard starts on
    filter: str  # id of the filter box
