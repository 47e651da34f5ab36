"""The fleet at a glance: totals, and one row per node from the store's last push and sync."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from orchestrator.core.overview import CHART_DAYS, FleetOverview, NodeRow
from orchestrator.core.units import human_bytes
from orchestrator.service.context import Fleet
from orchestrator.service.overview import fleet_overview
from orchestrator.tui.screens.base import ReadModelScreen


def _verdict(value: bool | None, yes: str = "ok", no: str = "failed") -> Text:
    if value is None:
        return Text("never", style="dim")
    return Text(yes, style="green") if value else Text(no, style="bold red")


def node_cells(node: NodeRow) -> tuple[str | Text, ...]:
    reachable = node.reachable
    return (
        node.name,
        _verdict(reachable, "yes", "no") if reachable is not None else Text("?", style="dim"),
        "-" if node.key_age_days is None else f"{node.key_age_days} d",
        f"{node.peers_enabled}/{node.peers_total}",
        Text("pending", style="yellow") if node.pending_push else Text("-", style="dim"),
        _verdict(node.last_push_ok),
        _verdict(node.last_sync_ok),
        _verdict(node.last_audit_ok, "passed"),
    )


def totals_text(overview: FleetOverview) -> str:
    t = overview.totals
    return (
        f"{t.nodes} nodes, {t.pending_nodes} pending push   "
        f"{t.configurations} configurations, {t.enabled} enabled, {t.over_quota} over quota   "
        f"{human_bytes(t.bytes_this_period)} this period"
    )


class FleetScreen(ReadModelScreen[FleetOverview]):
    TITLE = "Fleet"
    LOAD_TITLE = "load the fleet"
    FOCUS = "#nodes"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("r", "reload", "Reload")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading…", id="totals", classes="totals", markup=False)
        table: DataTable[str | Text] = DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
        table.add_columns(
            "node",
            "reachable",
            "WG key age",
            "peers",
            "push",
            "last push",
            "last sync",
            "last audit",
        )
        yield table
        yield Vertical(id="daily")
        yield Footer()

    def read_model(self, fleet: Fleet, today: date) -> FleetOverview:
        return fleet_overview(fleet, today)

    def loaded(self, overview: FleetOverview) -> None:
        self.query_one("#totals", Static).update(totals_text(overview))
        self.ready.set()
        table: DataTable[str | Text] = self.query_one(DataTable)
        table.clear()
        for node in overview.nodes:
            table.add_row(*node_cells(node), key=node.name)
        if not overview.nodes:
            self.query_one("#totals", Static).update(
                totals_text(overview) + "\nno nodes yet: run Deploy on the Operations screen"
            )
        self.show_daily(overview)

    def show_daily(self, overview: FleetOverview) -> None:
        """Bytes per node per day, as the privacy profile allows: per location, never per user."""
        box = self.query_one("#daily", Vertical)
        box.remove_children()
        if overview.daily is None:
            box.mount(
                Static(
                    "daily traffic per node: not kept under this privacy profile "
                    "(privacy.node_daily_totals)",
                    classes="muted",
                )
            )
            return
        rows: list[Horizontal | Static] = [
            Static(f"traffic per node, last {CHART_DAYS} days (peak day, today)", classes="muted")
        ]
        width = max((len(name) for name in overview.daily), default=4)
        for name, series in overview.daily.items():
            rows.append(
                Horizontal(
                    Label(name.ljust(width), classes="daily-node"),
                    Sparkline(list(series), summary_function=max, classes="daily-chart"),
                    Label(
                        f"{human_bytes(max(series, default=0))}, {human_bytes(series[-1])}",
                        classes="daily-figures",
                    ),
                    classes="daily-row",
                )
            )
        box.mount_all(rows)
