"""The fleet as a dashboard: what needs the operator first, then one row per node.

The alerts are core's rules (core/alerts.py) read through service/dashboard.py, the same read
model `wgfleet` could print; this screen only draws them. Reachability is checked in the
background when the screen opens (at most once a minute on returning to it) and on Reload.
"""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Label, Sparkline, Static
from textual.worker import Worker

from orchestrator.core.alerts import Alert, AlertKind, Reachability, age_text
from orchestrator.core.dashboard import FleetDashboard
from orchestrator.core.overview import CHART_DAYS, FleetOverview, NodeRow, filter_rows
from orchestrator.core.units import human_bytes
from orchestrator.service.context import Fleet
from orchestrator.service.dashboard import check_reachability, fleet_dashboard
from orchestrator.tui.screens.base import FilteredTableScreen, under_way
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.table_fit import Cell, fill_table

RECHECK_AFTER = 60  # seconds: returning to the screen checks reachability again after this
SEVERITY_STYLE = {"error": ("✖", "bold red"), "warning": ("▲", "yellow")}
# Most important first: the columns that do not fit a narrow terminal are the last ones.
NODE_COLUMNS = ("node", "reachable", "last sync", "audit", "push", "peers", "key age")
TRAFFIC_COLUMNS = ("today", f"{CHART_DAYS} days")


def totals_text(overview: FleetOverview) -> str:
    t = overview.totals
    return (
        f"{t.nodes} nodes, {t.pending_nodes} pending push · "
        f"{t.configurations} configurations, {t.enabled} enabled, {t.over_quota} over quota · "
        f"{human_bytes(t.bytes_this_period)} this period"
    )


def alert_line(alert: Alert) -> Text:
    mark, style = SEVERITY_STYLE[alert.severity]
    return Text.assemble(
        (f"{mark} {alert.kind}", style), f"  {alert.subject}", (f"  {alert.detail}", "dim")
    )


def alerts_text(alerts: tuple[Alert, ...]) -> Text:
    if not alerts:
        return Text("✔ nothing needs you", style="green")
    return Text("\n").join(alert_line(a) for a in alerts)


def _verdict(value: bool | None, yes: str, no: str) -> Text:
    if value is None:
        return Text("never", style="dim")
    return Text(yes, style="green") if value else Text(no, style="bold red")


def reach_cell(reach: Reachability | None, now: int, checking: bool) -> Text:
    if reach is None:
        return Text("checking…" if checking else "?", style="dim")
    age = age_text(max(0, now - reach.checked_at))
    return _verdict(reach.reachable, f"yes, {age}", f"no, {age}")


def sync_cell(node: NodeRow, kinds: frozenset[AlertKind], now: int) -> Text:
    if node.last_sync_ok is False:
        return Text("failed", style="bold red")
    if node.last_sync_at is None:
        return Text("never", style="dim")
    style = "yellow" if AlertKind.SYNC_STALE in kinds else "green"
    return Text(f"ok, {age_text(max(0, now - node.last_sync_at))}", style=style)


def push_cell(node: NodeRow) -> Text:
    if node.pending_push:
        return Text("pending", style="yellow")
    return _verdict(node.last_push_ok, "ok", "failed")


def node_cells(node: NodeRow, dashboard: FleetDashboard, now: int, checking: bool) -> list[Cell]:
    kinds = dashboard.node_alerts.get(node.name, frozenset())
    key_style = "bold red" if AlertKind.KEY_OVERDUE in kinds else ""
    cells: list[Cell] = [
        node.name,
        reach_cell(dashboard.reachability.get(node.name), now, checking),
        sync_cell(node, kinds, now),
        _verdict(node.last_audit_ok, "passed", "failed"),
        push_cell(node),
        f"{node.peers_enabled}/{node.peers_total}",
        Text("-" if node.key_age_days is None else f"{node.key_age_days} d", style=key_style),
    ]
    daily = dashboard.overview.daily
    if daily is not None:
        series = daily.get(node.name, (0,))
        cells += [human_bytes(series[-1]), human_bytes(sum(series))]
    return cells


class FleetScreen(FilteredTableScreen[FleetDashboard]):
    SPEC = ScreenSpec("fleet", load="load the fleet", focus="#nodes", filter="node-filter")

    def __init__(self) -> None:
        super().__init__()
        self.dashboard: FleetDashboard | None = None
        self.reachability: dict[str, Reachability] = {}
        self.check_worker: Worker[None] | None = None
        self.checked_at: int | None = None
        self.shown: list[NodeRow] = []

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        yield Static("loading…", id="totals", classes="totals", markup=False)
        alerts = VerticalScroll(Static("", id="alert-lines"), id="alerts")
        alerts.border_title = "needs you"
        yield alerts
        yield self.filter_box("filter nodes")
        yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
        yield Vertical(id="daily")
        yield self.footer()

    # --- data --------------------------------------------------------------------------------

    def screen_shown(self) -> None:
        self.load()
        now = self.backend.now()
        if self.checked_at is None or now - self.checked_at >= RECHECK_AFTER:
            self.check_reachability()

    def action_reload(self) -> None:
        self.load()
        self.check_reachability()

    @property
    def checking(self) -> bool:
        """A reachability check is under way (one that failed was notified and is over)."""
        return under_way(self.check_worker)

    def check_reachability(self) -> None:
        """A key exchange with every node (no login), in the background; then judge again."""
        if self.checking:
            return
        now = self.backend.now()
        self.check_worker = self.call_service(
            "check reachability",
            lambda fleet: check_reachability(fleet, now),
            self.checked,
            write=False,
            group="reachability",
        )

    def checked(self, reachability: dict[str, Reachability]) -> None:
        """Judge the shown fleet again with the check's answers (no new read of the store)."""
        self.reachability = reachability
        self.checked_at = max((r.checked_at for r in reachability.values()), default=None)
        if self.dashboard is not None:
            self.loaded(self.dashboard)

    def read_model(self, fleet: Fleet, today: date) -> FleetDashboard:
        return fleet_dashboard(fleet, today, self.backend.now(), self.reachability)

    def loaded(self, dashboard: FleetDashboard) -> None:
        if dashboard.reachability != self.reachability:  # a check finished during the read
            dashboard = dashboard.with_reachability(self.reachability)
        self.dashboard = dashboard
        overview = dashboard.overview
        totals = totals_text(overview)
        if not overview.nodes:
            totals += "\nno nodes yet: run Deploy on the Operations screen"
        self.query_one("#totals", Static).update(totals)
        box = self.query_one("#alerts", VerticalScroll)
        errors = sum(a.severity == "error" for a in dashboard.alerts)
        box.border_title = f"needs you: {len(dashboard.alerts)}" + (
            f" ({errors} errors)" if errors else ""
        )
        box.set_class(errors > 0, "-errors")
        self.query_one("#alert-lines", Static).update(alerts_text(dashboard.alerts))
        self.show_rows()
        self.show_daily(overview)
        self.ready.set()

    # --- nodes -------------------------------------------------------------------------------

    def show_rows(self) -> None:
        dashboard = self.dashboard
        if dashboard is None:
            return
        query = self.filter_text
        self.shown = filter_rows(dashboard.overview.nodes, query, lambda n: n.name.lower())
        now = self.backend.now()
        labels = NODE_COLUMNS + (TRAFFIC_COLUMNS if dashboard.overview.daily is not None else ())
        rows = [(n.name, node_cells(n, dashboard, now, self.checking)) for n in self.shown]
        fill_table(self.query_one("#nodes", DataTable), labels, rows, self.app.size.width - 2)

    def on_resize(self, event: events.Resize) -> None:
        self.show_rows()

    @on(DataTable.RowSelected, "#nodes")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_node(str(event.row_key.value))

    def action_open(self) -> None:
        if self.focused is not self.query_one(self.SPEC.focus):
            self.action_focus_table()  # Enter in the filter box: back to the nodes
            return
        table: DataTable[Cell] = self.query_one("#nodes", DataTable)
        if 0 <= table.cursor_row < len(self.shown):
            self.open_node(self.shown[table.cursor_row].name)

    def open_node(self, name: str) -> None:
        from orchestrator.tui.screens.node import NodeScreen

        self.app.push_screen(NodeScreen(name, self.reachability.get(name)))

    # --- daily totals ------------------------------------------------------------------------

    def show_daily(self, overview: FleetOverview) -> None:
        """Bytes per node per day, as the privacy profile allows: per location, never per user."""
        box = self.query_one("#daily", Vertical)
        box.remove_children()
        if overview.daily is None:
            box.mount(
                Static(
                    "daily traffic per node: not kept (privacy.node_daily_totals is off)",
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
