"""Every key with its age, overdue first, and the rotations (the same service calls as
`wgfleet keys ...`). New client configs and preshared keys are shown once, in a dialog."""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from orchestrator.core.keys import KeyAge, KeyKind, parse_duration
from orchestrator.core.models import Node
from orchestrator.core.overview import filter_rows
from orchestrator.service import keys as key_service
from orchestrator.service import node_keys
from orchestrator.service.context import Fleet
from orchestrator.service.push import PushResult
from orchestrator.tui.screens.base import FilteredTableScreen
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.dialogs import ClientConfigDialog, ConfirmDialog
from orchestrator.tui.widgets.table_fit import fill_table

# Most important first: a narrow terminal leaves out the last ones.
KEY_COLUMNS = ("kind", "subject", "status", "age (d)", "max", "created", "note")


def key_cells(age: KeyAge) -> tuple[str | Text, ...]:
    kind, subject, created, days, most, status, note = age.cells()
    styled = Text(status, style="bold red" if age.overdue else "")
    return (kind, subject, styled, days, most, created, note)


def key_search_text(age: KeyAge) -> str:
    return " ".join(age.cells()).lower()


class KeysScreen(FilteredTableScreen[list[KeyAge]]):
    SPEC = ScreenSpec("keys", load="load the keys", focus="#keys", filter="key-filter")

    def __init__(self) -> None:
        super().__init__()
        self.overdue_only = False
        self.ages: list[KeyAge] = []
        self.shown: list[KeyAge] = []

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        yield Static("loading…", id="key-totals", classes="totals", markup=False)
        yield self.filter_box("filter: kind, subject, status")
        yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
        yield self.footer()

    def read_model(self, fleet: Fleet, today: date) -> list[KeyAge]:
        return key_service.key_status(fleet, today, record=False)

    def loaded(self, ages: list[KeyAge]) -> None:
        self.ages = ages
        self.show_rows()
        self.ready.set()

    def show_rows(self) -> None:
        ages = self.ages
        shown = [a for a in ages if a.overdue] if self.overdue_only else ages
        shown = filter_rows(shown, self.filter_text, key_search_text)
        overdue = sum(a.overdue for a in ages)
        self.query_one("#key-totals", Static).update(
            f"{len(ages)} keys, {overdue} overdue"
            + ("   (overdue only)" if self.overdue_only else "")
            + (f"   {len(shown)} shown" if self.filter_text.strip() else "")
        )
        rows = [(str(index), key_cells(age)) for index, age in enumerate(shown)]
        fill_table(self.query_one(DataTable), KEY_COLUMNS, rows, self.app.size.width - 2)
        self.shown = shown

    def on_resize(self, event: events.Resize) -> None:
        self.show_rows()

    def action_toggle_overdue(self) -> None:
        self.overdue_only = not self.overdue_only
        self.show_rows()

    def _selected(self, *kinds: KeyKind) -> KeyAge | None:
        table: DataTable[str | Text] = self.query_one(DataTable)
        shown = self.shown
        if not shown or table.cursor_row >= len(shown):
            return None
        age: KeyAge = shown[table.cursor_row]
        if age.record.kind not in kinds:
            wanted = " or ".join(str(k) for k in kinds)
            self.notify(f"select a {wanted} key for this action", severity="warning")
            return None
        return age

    def _grace(self) -> int:
        return parse_duration(self.backend.settings.keys.grace)

    def action_rotate_peer(self) -> None:
        age = self._selected(KeyKind.PEER, KeyKind.PSK)
        if age is not None:
            self.rotate_peer_keys(age.record.subject)

    def action_rotate_psk(self) -> None:
        age = self._selected(KeyKind.PEER, KeyKind.PSK)
        if age is None:
            return
        name = age.record.subject
        today = self.backend.today()

        self.confirm_then_write(
            ConfirmDialog(
                f"Rotate {name}'s preshared key",
                "A peer holds one preshared key, so there is no grace: the client cannot "
                "connect until its PresharedKey line is replaced with the key shown next.",
                "Rotate",
            ),
            f"rotate {name}'s preshared key",
            lambda fleet: key_service.rotate_psk(fleet, [name], today=today),
            self.psk_rotated,
        )

    def psk_rotated(self, result: tuple[list[key_service.RotatedPsk], PushResult]) -> None:
        rotated, push = result
        for r in rotated:
            self.app.push_screen(
                ClientConfigDialog(
                    r.configuration.name,
                    {"PresharedKey": f"PresharedKey = {r.preshared_key}\n"},
                    qr=False,
                )
            )
        self.report_push(f"{len(rotated)} preshared key(s) rotated", push)
        self.action_reload()

    def action_rotate_node(self) -> None:
        age = self._selected(KeyKind.NODE)
        if age is None:
            return
        name, grace = age.record.subject, self._grace()
        today = self.backend.today()

        self.confirm_then_write(
            ConfirmDialog(
                f"Rotate {name}'s key with overlap",
                f"{name} makes its next key and serves it on its other port beside the current "
                f"one for {self.backend.settings.keys.grace}; new client configs name it. "
                "Reissue the configurations on it (`wgfleet keys reissue --node`) before the "
                "grace ends.",
                "Rotate",
            ),
            f"rotate {name}'s key",
            lambda fleet: node_keys.rotate_node(
                fleet, name, overlap=True, grace_seconds=grace, today=today
            ),
            self.node_rotated,
        )

    def node_rotated(self, rotated: node_keys.RotatedNode) -> None:
        self.notify(
            f"{rotated.node.name}: next key on port {rotated.node.next_listen_port}; "
            f"{len(rotated.reissue)} configuration(s) to reissue",
            markup=False,
        )
        self.action_reload()

    def action_finish_node(self) -> None:
        age = self._selected(KeyKind.NODE)
        if age is None:
            return
        name = age.record.subject
        today = self.backend.today()
        self.call_service(
            f"finish {name}'s rotation",
            lambda fleet: node_keys.finish_node_rotation(fleet, name, today=today),
            self.node_finished,
            write=True,
        )

    def node_finished(self, node: Node) -> None:
        self.notify(f"{node.name}: key {node.public_key} on port {node.listen_port}", markup=False)
        self.action_reload()
