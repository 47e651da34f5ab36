"""Every key of the operator's UI, in one table: the app's, each screen's and the dialogs'.

A screen's keys are listed most important first: the footer shows as many as fit the terminal
from the left (widgets/fitted_footer.py), and every key, shown or not, is in `?` help and the
command palette. Keys shared by several screens are defined once below. The habits are k9s's
and lazygit's: `/` filters, `enter` opens, `esc` goes back, `r` reloads, `?` helps.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

# The screens, as (mode, title) in the order of their number keys and tabs.
SCREENS = (
    ("fleet", "Fleet"),
    ("configurations", "Configurations"),
    ("accounts", "Accounts"),
    ("operations", "Operations"),
    ("keys", "Keys"),
)
# A tab's name in the footer and help where its title is too long for them.
SHORT_TITLES = {"configurations": "Configs", "operations": "Ops"}
# A number key per tab, in the tabs' order. The tabs at the top show these; the footer leaves
# them out to make room.
TAB_KEYS = tuple(
    Binding(str(number), f"switch_mode('{mode}')", SHORT_TITLES.get(mode, title), show=False)
    for number, (mode, title) in enumerate(SCREENS, start=1)
)

RELOAD = Binding("r", "reload", "Reload")
FILTER = Binding("slash", "focus_filter", "Filter")
SEARCH = Binding("slash", "focus_filter", "Search")
# Escape leaves the filter box for the table (a screen's own; dialogs cancel with it).
BACK_TO_TABLE = Binding("escape", "focus_table", "Table", show=False)
# Over the table's own Enter, so that the footer shows it.
OPEN = Binding("enter", "open", "Open", priority=True)

KEYMAP: dict[str, tuple[Binding, ...]] = {
    "app": (
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit", "Quit"),
        *TAB_KEYS,
        Binding("ctrl+t", "toggle_theme", "Light/dark theme", show=False),
    ),
    "fleet": (OPEN, FILTER, RELOAD, BACK_TO_TABLE),
    "node": (
        Binding("escape", "back", "Back"),
        Binding("u", "audit", "Audit this node"),
        # lazygit's keys for the panel's tabs: configurations, audit, keys.
        Binding("right_square_bracket", "tab(1)", "Next tab"),
        Binding("left_square_bracket", "tab(-1)", "Previous tab", show=False),
        FILTER,
        RELOAD,
    ),
    "configurations": (
        FILTER,
        Binding("e", "enable", "Enable"),
        Binding("d", "disable", "Disable"),
        Binding("t", "topup", "Top-up"),
        Binding("a", "add", "Add"),
        Binding("x", "remove", "Remove"),
        Binding("space", "mark", "Mark"),
        Binding("asterisk", "mark_all", "Mark shown"),
        Binding("k", "rotate", "Rotate keys"),
        Binding("o", "sort", "Sort"),
        RELOAD,
        BACK_TO_TABLE,
    ),
    "accounts": (SEARCH, Binding("x", "delete", "Delete account"), RELOAD, BACK_TO_TABLE),
    "operations": (
        Binding("s", "run('sync')", "Sync"),
        Binding("p", "run('apply')", "Apply"),
        Binding("u", "run('audit')", "Audit"),
        Binding("n", "run('plan')", "Plan"),
        Binding("d", "run('deploy')", "Deploy"),
        Binding("c", "cancel", "Cancel"),
        Binding("l", "log_scope", "Log: all/node"),
        FILTER,
        BACK_TO_TABLE,
    ),
    "keys": (
        Binding("o", "toggle_overdue", "Overdue only"),
        Binding("p", "rotate_peer", "Rotate peer key"),
        Binding("k", "rotate_psk", "Rotate PSK"),
        Binding("n", "rotate_node", "Rotate node key (overlap)"),
        Binding("f", "finish_node", "Finish node rotation"),
        FILTER,
        RELOAD,
        BACK_TO_TABLE,
    ),
    "help": (Binding("escape,q,question_mark", "dismiss", "Close"),),
}


def bindings(name: str) -> list[BindingType]:
    """The keys of the app, a screen or a dialog, for its ``BINDINGS``."""
    return list(KEYMAP[name])
