"""One node, drilled into from the fleet (enter, or a click on its highlighted row): its
configurations, its last audit's rows and its keys, in tabs; `esc` goes back.

The store keeps an audit's verdict per node, never its evidence (service/audit.py), so the
rows shown are those of the last audit this session ran (`u` here audits this node alone).
"""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from orchestrator.core.alerts import Reachability, age_text
from orchestrator.core.overview import filter_rows
from orchestrator.service import audit as audit_service
from orchestrator.service.audit import AuditResult
from orchestrator.service.context import Fleet
from orchestrator.service.overview import NodeDetail, node_detail
from orchestrator.tui.screens.base import FilteredTableScreen
from orchestrator.tui.screens.keys import KEY_COLUMNS, key_cells
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.table_fit import Cell, fill_table

CONFIGURATION_COLUMNS = ("configuration", "account", "used", "status")
AUDIT_COLUMNS = ("check", "result", "evidence")


def heading(detail: NodeDetail, reach: Reachability | None, now: int) -> str:
    node = detail.node
    if reach is None:
        reachable = "reachability not checked"
    else:
        age = age_text(max(0, now - reach.checked_at))
        reachable = (
            f"reachable, {age}" if reach.reachable else f"unreachable ({age}): {reach.error}"
        )
    key = "no WireGuard key yet" if node.key_age_days is None else f"key {node.key_age_days} d old"
    return (
        f"{node.name} at {node.address} · {node.peers_enabled} of {node.peers_total} peers "
        f"enabled · {key} · {reachable}"
    )


class NodeScreen(FilteredTableScreen[NodeDetail]):
    TITLE = "Node"  # not a tab: its own title
    SPEC = ScreenSpec(
        "node", load="load the node", focus="#node-configurations", filter="node-detail-filter"
    )

    def __init__(self, name: str, reach: Reachability | None) -> None:
        super().__init__()
        self.node_name = name
        self.reach = reach
        self.detail: NodeDetail | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.node_name, id="node-heading", classes="totals", markup=False)
        yield self.filter_box("filter configurations")
        with TabbedContent(id="node-tabs"):
            with TabPane("Configurations", id="tab-configurations"):
                yield DataTable(id="node-configurations", cursor_type="row", zebra_stripes=True)
            with TabPane("Audit", id="tab-audit"):
                yield Static("", id="audit-note", classes="muted", markup=False)
                yield DataTable(id="node-audit", cursor_type="row", zebra_stripes=True)
            with TabPane("Keys", id="tab-keys"):
                yield DataTable(id="node-keys", cursor_type="row", zebra_stripes=True)
        yield self.footer()

    def read_model(self, fleet: Fleet, today: date) -> NodeDetail:
        return node_detail(fleet, self.node_name, today)

    def loaded(self, detail: NodeDetail) -> None:
        self.detail = detail
        self.query_one("#node-heading", Static).update(
            heading(detail, self.reach, self.backend.now())
        )
        self.show_rows()
        self.ready.set()

    def show_rows(self) -> None:
        detail = self.detail
        if detail is None:
            return
        room = self.app.size.width - 2
        shown = filter_rows(detail.configurations, self.filter_text, lambda r: r.search_text)
        fill_table(
            self.query_one("#node-configurations", DataTable),
            CONFIGURATION_COLUMNS,
            [(r.name, (r.name, r.account, r.usage(8, compact=True), r.status)) for r in shown],
            room,
        )
        keys = [(str(i), key_cells(age)) for i, age in enumerate(detail.keys)]
        fill_table(self.query_one("#node-keys", DataTable), KEY_COLUMNS, keys, room)
        self.show_audit()

    def show_audit(self) -> None:
        detail = self.detail
        last: AuditResult | None = self.wgapp.last_audit
        checks = [c for c in last.checks if c.node == self.node_name] if last else []
        verdict = {None: "never audited", True: "passed", False: "failed"}
        note = f"last audit: {verdict[detail.node.last_audit_ok] if detail else '?'}"
        if not checks:
            note += " · the store keeps no evidence: press u to audit this node and see its rows"
        self.query_one("#audit-note", Static).update(note)
        rows = [
            (
                str(i),
                (
                    c.check,
                    Text("passed", style="green") if c.passed else Text("failed", style="bold red"),
                    c.evidence,
                ),
            )
            for i, c in enumerate(checks)
        ]
        audit_rows: list[tuple[str, tuple[Cell, ...]]] = list(rows)
        fill_table(
            self.query_one("#node-audit", DataTable),
            AUDIT_COLUMNS,
            audit_rows,
            self.app.size.width - 2,
        )

    def on_resize(self, event: events.Resize) -> None:
        self.show_rows()

    def action_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        panes = [pane.id for pane in tabs.query(TabPane)]
        at = panes.index(tabs.active) if tabs.active in panes else 0
        tabs.active = str(panes[(at + step) % len(panes)])

    @on(TabbedContent.TabActivated)
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        event.pane.query_one(DataTable).focus()  # the keys act on the tab shown

    def action_back(self) -> None:
        """Out of the filter box first (back to the table), else back to the fleet."""
        if self.focused is self.query_one(f"#{self.SPEC.filter}"):
            self.action_focus_table()
        else:
            self.dismiss()

    def action_audit(self) -> None:
        """Audit this node alone (the same call as `wgfleet audit --limit NODE`)."""
        name = self.node_name
        self.query_one(TabbedContent).active = "tab-audit"
        self.notify(f"auditing {name}…")
        self.call_service(
            f"audit {name}",
            lambda fleet: audit_service.audit(fleet, limit=name),
            self.audited,
            write=True,
        )

    def audited(self, result: AuditResult) -> None:
        self.wgapp.last_audit = result
        self.load()
