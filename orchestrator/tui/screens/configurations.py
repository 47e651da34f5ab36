"""Every configuration: filter, sort, and enable, disable, top up, remove or add one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.widgets import Static

from orchestrator.core.models import DisabledReason, TopUp
from orchestrator.core.overview import (
    CONFIGURATION_SORTS,
    ConfigurationRow,
    filter_rows,
    sort_rows,
)
from orchestrator.service import catalog, peers
from orchestrator.service.context import Fleet
from orchestrator.service.overview import configuration_overview
from orchestrator.service.peers import NewConfiguration
from orchestrator.service.push import PushResult
from orchestrator.tui.screens.base import FilteredTableScreen
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.dialogs import (
    AddConfigurationDialog,
    AddForm,
    ClientConfigDialog,
    ConfirmDialog,
    DisableDialog,
    TopUpDialog,
    TopUpForm,
)
from orchestrator.tui.widgets.virtual_table import (
    Column,
    VirtualTable,
    column_width,
    names_within,
)

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


def describe(names: Sequence[str]) -> str:
    """One name as itself; several as a count and the first few, for titles and dialogs."""
    if len(names) == 1:
        return names[0]
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return f"{len(names)} configurations ({shown})"


def tone(row: ConfigurationRow) -> str:
    if row.enabled:
        return "error" if row.over else ""
    return "warning" if row.disabled_reason == DisabledReason.OVER_QUOTA else "muted"


class ConfigurationsScreen(FilteredTableScreen[ConfigurationsData]):
    SPEC = ScreenSpec(
        "configurations", load="load configurations", focus="#configurations", filter="filter"
    )

    def __init__(self) -> None:
        super().__init__()
        self.data = ConfigurationsData([], [], [])
        self.sorted_rows: list[ConfigurationRow] = []
        self.shown: list[ConfigurationRow] = []
        self.sort_column = "name"
        self.sort_reverse = False
        self.compact = False
        self.widths: dict[str, int] = {}
        # Bulk actions: enable, disable and remove act on every marked configuration.
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        yield self.filter_bar("filter: name, account, node, status, plan")
        yield VirtualTable(self.cells, id="configurations")
        yield self.footer()

    def on_resize(self, event: events.Resize) -> None:
        compact = event.size.width < COMPACT_BELOW
        if compact != self.compact:
            self.compact = compact
            self.show_rows()

    # --- data --------------------------------------------------------------------------------

    def read_model(self, fleet: Fleet, today: date) -> ConfigurationsData:
        return ConfigurationsData(
            configuration_overview(fleet, today),
            [p.name for p in catalog.plans(fleet)],
            catalog.node_names(fleet),
        )

    def loaded(self, data: ConfigurationsData) -> None:
        self.data = data
        self.ready.set()
        rows = data.rows
        self.marked &= {r.name for r in rows}
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
        self.shown = filter_rows(self.sorted_rows, self.filter_text, lambda r: r.search_text)
        table.set_rows(self.columns(), self.shown, key=lambda r: r.name)
        self.show_count()

    def show_count(self) -> None:
        text = self.count_text(len(self.shown), len(self.data.rows), "configurations")
        if self.marked:
            text += f" · {len(self.marked)} marked"
        self.query_one("#count", Static).update(text)

    def columns(self) -> list[Column]:
        """Widths from the whole list (measured once per load), so filtering never jolts."""
        label = {**LABELS, "usage": "used" if self.compact else LABELS["usage"]}
        label[self.sort_column] += " ▼" if self.sort_reverse else " ▲"
        return [
            Column("mark", "", 1),
            Column("name", label["name"], self.widths.get("name", 13)),
            Column("account", label["account"], self.widths.get("account", 7)),
            Column("nodes", label["nodes"], self.nodes_width),
            Column("usage", label["usage"], 14 if self.compact else 40),
            Column("status", label["status"], 22),
        ]

    def cells(self, row: Any) -> tuple[Sequence[str], str]:
        assert isinstance(row, ConfigurationRow)
        usage = row.usage(10 if not self.compact else 8, compact=self.compact)
        mark = "●" if row.name in self.marked else " "
        nodes = names_within(row.nodes, self.nodes_width)
        return (mark, row.name, row.account, nodes, usage, row.status), tone(row)

    @property
    def nodes_width(self) -> int:
        nodes = self.widths.get("nodes", 5)
        return min(nodes, 12) if self.compact else nodes

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
        if event.column in SORT_ORDER:
            self.set_sort(event.column)

    # --- actions -----------------------------------------------------------------------------

    def selected(self) -> ConfigurationRow | None:
        row = self.query_one(VirtualTable).current
        if not isinstance(row, ConfigurationRow):
            self.notify("no configuration selected", severity="warning")
            return None
        return row

    def action_mark(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.marked ^= {row.name}
        table = self.query_one(VirtualTable)
        table.action_cursor(1)
        table.refresh()
        self.show_count()

    def action_mark_all(self) -> None:
        """Mark every configuration the filter shows; again, and they are unmarked."""
        names = {r.name for r in self.shown}
        if names and names <= self.marked:
            self.marked -= names
        else:
            self.marked |= names
        self.query_one(VirtualTable).refresh()
        self.show_count()

    def targets(self) -> list[str]:
        """The marked configurations, else the one under the cursor (or none)."""
        if self.marked:
            return sorted(self.marked)
        row = self.selected()
        return [row.name] if row is not None else []

    def changed(self, verb: str) -> Any:
        def done(result: tuple[list[Any], PushResult]) -> None:
            self.marked.clear()
            changed, push = result
            names = ", ".join(c.name for c in changed) or "nothing to change"
            self.report_push(f"{verb}: {names}", push)
            self.action_reload()

        return done

    def action_enable(self) -> None:
        names = self.targets()
        if not names:
            return
        self.call_service(
            f"enable {describe(names)}",
            lambda fleet: peers.set_enabled(fleet, names, True),
            self.changed("enabled"),
            write=True,
        )

    def action_disable(self) -> None:
        names = self.targets()
        if not names:
            return

        self.ask_then_write(
            DisableDialog(describe(names)),
            DisabledReason,
            lambda _reason: f"disable {describe(names)}",
            lambda fleet, reason: peers.set_enabled(fleet, names, False, reason),
            self.changed("disabled"),
        )

    def action_topup(self) -> None:
        row = self.selected()
        if row is None:
            return
        today = self.backend.today()

        self.ask_then_write(
            TopUpDialog(row.name, self.data.plans),
            TopUpForm,
            lambda _form: f"top up {row.name}",
            # The form's fields are the use case's arguments, by name.
            lambda fleet, form: peers.topup(fleet, row.name, **asdict(form), today=today),
            self.topped_up,
        )

    def topped_up(self, result: tuple[TopUp, bool]) -> None:
        topup, created = result
        self.notify(
            topup.outcome(created), severity="information" if created else "warning", markup=False
        )
        self.action_reload()

    def action_remove(self) -> None:
        names = self.targets()
        if not names:
            return
        rows = {r.name: r for r in self.data.rows}
        if len(names) == 1 and names[0] in rows:
            row = rows[names[0]]
            what = f"{row.name} ({row.account})"
            where = f"its peer from {', '.join(row.nodes) or 'no node'}"
        else:
            what = describe(names)
            where = "their peers from every node they are on"
        self.confirm_then_write(
            ConfirmDialog(
                f"Remove {describe(names)}",
                f"Remove {what} and the usage from the store, and {where}.\nTop-ups bought "
                "stay in the ledger, no longer linked. This cannot be undone.",
                "Remove",
            ),
            f"remove {describe(names)}",
            lambda fleet: peers.remove_configurations(fleet, names),
            self.changed("removed"),
        )

    def action_rotate(self) -> None:
        row = self.selected()
        if row is not None:
            self.rotate_peer_keys(row.name)

    def action_add(self) -> None:
        current = self.query_one(VirtualTable).current
        account = current.account if isinstance(current, ConfigurationRow) else ""
        today = self.backend.today()

        self.ask_then_write(
            AddConfigurationDialog(account, self.data.nodes, self.data.plans),
            AddForm,
            lambda form: f"add a configuration for {form.account}",
            lambda fleet, form: peers.add_configuration(fleet, **asdict(form), today=today),
            self.added,
        )

    def added(self, created: NewConfiguration) -> None:
        config = created.configuration
        self.app.push_screen(ClientConfigDialog(config.name, created.client_configs))
        self.report_push(
            f"configuration {config.name} for {config.account} on {', '.join(config.nodes)}",
            created.push,
        )
        self.action_reload()
