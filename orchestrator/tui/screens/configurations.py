"""Every configuration: filter, sort, and enable, disable, top up, remove or add one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Header, Input, Static

from orchestrator.core.models import DisabledReason, TopUp
from orchestrator.core.overview import (
    CONFIGURATION_SORTS,
    ConfigurationRow,
    filter_rows,
    sort_rows,
)
from orchestrator.service import peers
from orchestrator.service.context import Fleet
from orchestrator.service.overview import configuration_overview
from orchestrator.service.peers import NewConfiguration
from orchestrator.service.push import PushResult
from orchestrator.tui.screens.base import WgfleetScreen
from orchestrator.tui.widgets.dialogs import (
    AddConfigurationDialog,
    AddForm,
    ClientConfigDialog,
    ConfirmDialog,
    DisableDialog,
    TopUpDialog,
    TopUpForm,
)
from orchestrator.tui.widgets.virtual_table import Column, VirtualTable, column_width

COMPACT_BELOW = 120  # terminal columns under which the usage column drops the byte counts
SORT_ORDER = ("name", "account", "nodes", "usage", "status")
LABELS = {
    "name": "configuration",
    "account": "account",
    "nodes": "nodes",
    "usage": "used / quota",
    "status": "status",
}


@dataclass(frozen=True)
class ConfigurationsData:
    rows: list[ConfigurationRow]
    plans: list[str]
    nodes: list[str]


def tone(row: ConfigurationRow) -> str:
    if row.enabled:
        return "error" if row.over else ""
    return "warning" if row.disabled_reason == DisabledReason.OVER_QUOTA else "muted"


class ConfigurationsScreen(WgfleetScreen):
    TITLE = "Configurations"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("e", "enable", "Enable"),
        Binding("d", "disable", "Disable"),
        Binding("t", "topup", "Top-up"),
        Binding("x", "remove", "Remove"),
        Binding("a", "add", "Add"),
        Binding("k", "rotate", "Rotate keys"),
        Binding("o", "sort", "Sort"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data = ConfigurationsData([], [], [])
        self.sorted_rows: list[ConfigurationRow] = []
        self.shown: list[ConfigurationRow] = []
        self.sort_column = "name"
        self.sort_reverse = False
        self.compact = False
        self.widths: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="filter-bar"):
            yield Input(placeholder="filter: name, account, node, status, plan", id="filter")
            yield Static("", id="count", classes="count")
        yield VirtualTable(self.cells, id="configurations")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(VirtualTable).focus()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def on_resize(self, event: events.Resize) -> None:
        compact = event.size.width < COMPACT_BELOW
        if compact != self.compact:
            self.compact = compact
            self.show_rows()

    # --- data --------------------------------------------------------------------------------

    def action_reload(self) -> None:
        today = self.backend.today()

        def load(fleet: Fleet) -> ConfigurationsData:
            return ConfigurationsData(
                configuration_overview(fleet, today),
                [p.name for p in fleet.store.plans()],
                [n.name for n in fleet.store.nodes()],
            )

        self.call_service("load configurations", load, self.loaded, write=False, group="load")

    def loaded(self, data: ConfigurationsData) -> None:
        self.data = data
        self.ready.set()
        rows = data.rows
        self.widths = {
            "name": column_width(LABELS["name"] + " ▲", [r.name for r in rows], 28),
            "account": column_width(LABELS["account"] + " ▲", [r.account for r in rows], 20),
            "nodes": column_width(LABELS["nodes"] + " ▲", [",".join(r.nodes) for r in rows], 24),
        }
        self.resort()

    def resort(self) -> None:
        self.sorted_rows = sort_rows(
            self.data.rows, CONFIGURATION_SORTS, self.sort_column, self.sort_reverse
        )
        self.show_rows()

    def show_rows(self) -> None:
        table = self.query_one(VirtualTable)
        current = table.current
        query = self.query_one("#filter", Input).value
        self.shown = filter_rows(self.sorted_rows, query, lambda r: r.search_text)
        name = current.name if isinstance(current, ConfigurationRow) else None
        table.set_rows(self.columns(), self.shown, keep=lambda r: r.name == name)
        total = len(self.data.rows)
        self.query_one("#count", Static).update(
            f"{len(self.shown)} of {total}" if query.strip() else f"{total} configurations"
        )

    def columns(self) -> list[Column]:
        """Widths from the whole list (measured once per load), so filtering never jolts."""
        label = {**LABELS, "usage": "used" if self.compact else LABELS["usage"]}
        label[self.sort_column] += " ▼" if self.sort_reverse else " ▲"
        nodes = self.widths.get("nodes", 5)
        return [
            Column("name", label["name"], self.widths.get("name", 13)),
            Column("account", label["account"], self.widths.get("account", 7)),
            Column("nodes", label["nodes"], min(nodes, 12) if self.compact else nodes),
            Column("usage", label["usage"], 14 if self.compact else 40),
            Column("status", label["status"], 22),
        ]

    def cells(self, row: Any) -> tuple[Sequence[str], str]:
        assert isinstance(row, ConfigurationRow)
        usage = row.usage(10 if not self.compact else 8, compact=self.compact)
        return (row.name, row.account, ",".join(row.nodes), usage, row.status), tone(row)

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.show_rows()

    @on(Input.Submitted, "#filter")
    def action_focus_table(self) -> None:
        self.query_one(VirtualTable).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_sort(self) -> None:
        index = SORT_ORDER.index(self.sort_column)
        self.set_sort(SORT_ORDER[(index + 1) % len(SORT_ORDER)])

    def set_sort(self, column: str) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, column == "usage"
        self.resort()

    @on(VirtualTable.HeaderClicked)
    def _header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        self.set_sort(event.column)

    # --- actions -----------------------------------------------------------------------------

    def selected(self) -> ConfigurationRow | None:
        row = self.query_one(VirtualTable).current
        if not isinstance(row, ConfigurationRow):
            self.notify("no configuration selected", severity="warning")
            return None
        return row

    def changed(self, verb: str) -> Any:
        def done(result: tuple[list[Any], PushResult]) -> None:
            changed, push = result
            names = ", ".join(c.name for c in changed) or "nothing to change"
            self.report_push(f"{verb}: {names}", push)
            self.action_reload()

        return done

    def action_enable(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.call_service(
            f"enable {row.name}",
            lambda fleet: peers.set_enabled(fleet, [row.name], True),
            self.changed("enabled"),
            write=True,
        )

    def action_disable(self) -> None:
        row = self.selected()
        if row is None:
            return

        def chosen(reason: object) -> None:
            if not isinstance(reason, DisabledReason):
                return
            self.call_service(
                f"disable {row.name}",
                lambda fleet: peers.set_enabled(fleet, [row.name], False, reason),
                self.changed("disabled"),
                write=True,
            )

        self.app.push_screen(DisableDialog(row.name), chosen)

    def action_topup(self) -> None:
        row = self.selected()
        if row is None:
            return
        today = self.backend.today()

        def chosen(form: object) -> None:
            if not isinstance(form, TopUpForm):
                return
            self.call_service(
                f"top up {row.name}",
                lambda fleet: peers.topup(
                    fleet,
                    row.name,
                    invoice=form.invoice,
                    amount=form.amount,
                    bytes_granted=form.bytes_granted,
                    plan=form.plan,
                    today=today,
                ),
                self.topped_up,
                write=True,
            )

        self.app.push_screen(TopUpDialog(row.name, self.data.plans), chosen)

    def topped_up(self, result: tuple[TopUp, bool]) -> None:
        topup, created = result
        if created:
            self.notify(
                f"invoice {topup.invoice}: granted {topup.bytes_granted} bytes to "
                f"{topup.configuration}",
                markup=False,
            )
        else:
            self.notify(
                f"invoice {topup.invoice} was already recorded ({topup.bytes_granted} bytes to "
                f"{topup.configuration}); nothing granted again",
                severity="warning",
                markup=False,
            )
        self.action_reload()

    def action_remove(self) -> None:
        row = self.selected()
        if row is None:
            return

        def confirmed(yes: object) -> None:
            if yes is not True:
                return
            self.call_service(
                f"remove {row.name}",
                lambda fleet: peers.remove_configurations(fleet, [row.name]),
                self.changed("removed"),
                write=True,
            )

        self.app.push_screen(
            ConfirmDialog(
                f"Remove {row.name}",
                f"Remove {row.name} ({row.account}) and its usage from the store, and its peer "
                f"from {', '.join(row.nodes) or 'no node'}.\nTop-ups bought for it stay in the "
                "ledger, no longer linked to it. This cannot be undone.",
                "Remove",
            ),
            confirmed,
        )

    def action_rotate(self) -> None:
        row = self.selected()
        if row is not None:
            self.rotate_peer_keys(row.name)

    def action_add(self) -> None:
        current = self.query_one(VirtualTable).current
        account = current.account if isinstance(current, ConfigurationRow) else ""
        today = self.backend.today()

        def chosen(form: object) -> None:
            if not isinstance(form, AddForm):
                return
            self.call_service(
                f"add a configuration for {form.account}",
                lambda fleet: peers.add_configuration(
                    fleet,
                    form.account,
                    nodes=form.nodes,
                    quota_bytes=form.quota_bytes,
                    plan=form.plan,
                    name=form.name,
                    today=today,
                ),
                self.added,
                write=True,
            )

        self.app.push_screen(
            AddConfigurationDialog(account, self.data.nodes, self.data.plans), chosen
        )

    def added(self, created: NewConfiguration) -> None:
        config = created.configuration
        self.app.push_screen(ClientConfigDialog(config.name, created.client_configs))
        self.report_push(
            f"configuration {config.name} for {config.account} on {', '.join(config.nodes)}",
            created.push,
        )
        self.action_reload()
