"""Fleet-wide runs: sync, apply (push) and its dry run, audit and deploy.

Each run is a thread worker calling the same service function as the CLI, under the fleet lock
when it writes; the services' progress callbacks feed a live line per node and a log, and the
result's summary, naming every failed node and why, stays on screen until the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Label, RichLog, Static
from textual.worker import Worker

from orchestrator.core.alerts import age_text
from orchestrator.core.models import Operation
from orchestrator.core.overview import filter_rows
from orchestrator.core.playbook_events import HOST_EVENTS, PlayRecap
from orchestrator.core.units import human_bytes
from orchestrator.service import audit as audit_service
from orchestrator.service import catalog
from orchestrator.service import deploy as deploy_service
from orchestrator.service import push as push_service
from orchestrator.service import sync as sync_service
from orchestrator.service.audit import AuditResult
from orchestrator.service.context import Fleet
from orchestrator.service.deploy import DeployResult
from orchestrator.service.push import NodePush, PushResult
from orchestrator.service.sync import NodeSync, SyncResult
from orchestrator.tui.screens.base import FilteredTableScreen, guarded
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.table_fit import words_within


@dataclass(frozen=True)
class Summary:
    """What a run did, in one line, and each failed node with its reason."""

    title: str
    line: str
    failures: tuple[tuple[str, str], ...] = field(default=())
    ran: bool = True  # False: refused before reaching any node (the error was notified)

    @property
    def ok(self) -> bool:
        return self.ran and not self.failures

    @property
    def verdict(self) -> str:
        if not self.ran:
            return "did not run"
        return "ok" if self.ok else f"{len(self.failures)} failure(s)"


def sync_summary(result: SyncResult) -> Summary:
    data = result.as_dict()
    parts = [
        f"{len(data['nodes_ok'])} node(s) synced",
        f"{data['configurations_updated']} configuration(s) updated",
        f"{human_bytes(data['bytes_added'])} added",
    ]
    for key in ("newly_over_quota", "newly_expired", "re_enabled", "warned"):
        if data[key]:
            parts.append(f"{key.replace('_', ' ')}: {', '.join(data[key])}")
    return Summary("sync", "; ".join(parts), tuple((n.node, n.error) for n in result.failed))


def push_summary(result: PushResult) -> Summary:
    title = "plan (dry run, nothing changed)" if result.dry_run else "apply"
    done = sum(n.ok for n in result.nodes)
    line = f"{done} of {len(result.nodes)} node(s) {'planned' if result.dry_run else 'pushed'}"
    if not result.nodes:
        line = "no nodes in the store"
    return Summary(title, line, tuple((n.node, n.error) for n in result.failed))


def audit_summary(result: AuditResult) -> Summary:
    failed = result.failed
    nodes = sorted({c.node for c in result.checks})
    line = f"{len(result.checks)} check(s) on {len(nodes)} node(s), {len(failed)} failed"
    return Summary("audit", line, tuple((c.node, f"{c.check}: {c.evidence}") for c in failed))


def deploy_summary(result: DeployResult) -> Summary:
    recap = result.run.recap
    line = (
        f"{result.run.status}: {len(recap.hosts)} host(s) run, {recap.changed_total} change(s), "
        f"{len(result.verified)} verified unchanged" + (" (check mode)" if result.run.check else "")
    )
    failures = []
    for name in result.failed_hosts or ([] if result.ok else ["(no host reported)"]):
        host = recap.hosts.get(name)
        failures.append((name, f"{host.status}: {host.error}" if host else result.run.status))
    return Summary("deploy", line, tuple(failures))


def push_line(n: NodePush) -> tuple[str, str]:
    if not n.ok:
        return "failed", n.error
    row = n.as_dict()
    return "ok", (
        f"added {row['added']}, changed {row['changed']}, removed {row['removed']}, "
        f"unchanged {row['unchanged']}"
    )


def sync_line(n: NodeSync) -> tuple[str, str]:
    if not n.ok:
        return "failed", n.error
    return "ok", f"{n.peers} peer(s), {human_bytes(n.bytes_added)} added"


STATE_STYLE = {"ok": "green", "failed": "bold red", "running": "yellow", "changed": "yellow"}


# What a cancel stops, for each run: every one stops at a point where nothing is half-written.
CANCEL_POINTS = {
    "deploy": "cancelling after the running tasks",
    "sync": "cancelling: nodes not yet asked are skipped and nothing is written",
    "apply": "cancelling: nodes not yet pushed stay pending for the next run",
    "plan": "cancelling: nodes not yet asked are skipped",
    "audit": "cancelling: nodes not yet audited are skipped (no verdict for them)",
}


TRAIL_SHOWN = 5  # runs of the operations trail shown before this session's first run


@dataclass(frozen=True)
class Recent:
    """What the screen shows before a run: the latest runs of every controller, the nodes."""

    runs: list[Operation]
    nodes: list[str]


def trail_line(run: Operation, now: int) -> str:
    took = max(0, run.finished_at - run.started_at)
    line = f"{run.operation}: {run.outcome}, {age_text(max(0, now - run.finished_at))}"
    return line + (f", took {took} s" if took >= 10 else "")


class OperationsScreen(FilteredTableScreen[Recent]):
    """Runs here; before the first, the latest runs from the trail (any controller, cron
    included), read again on the refresh interval."""

    # Its filter narrows the log to the lines holding every word typed.
    SPEC = ScreenSpec(
        "operations",
        load="load the operations trail",
        focus="#operation-nodes",
        filter="log-filter",
    )

    def __init__(self) -> None:
        super().__init__()
        self.worker: Worker[None] | None = None
        self.running: str | None = None
        self.cancel_requested = threading.Event()
        self.log_lines: list[tuple[str, str]] = []  # (node, line) of the last run
        self.node_states: dict[str, str] = {}  # node -> its state in the run going on
        self.log_node: str | None = None  # show only this node's lines; None: every node

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        yield Static(
            "s sync · p apply · n plan (dry run) · u audit · d deploy · c cancel",
            id="operations-help",
            markup=False,
        )
        yield self.filter_box("filter the log")
        with VerticalScroll(id="summary-box"):
            yield Label("no run yet", id="summary-title")
            yield Static("", id="summary", markup=False)
        with Horizontal(id="operation-body"):
            nodes: DataTable[str | Text] = DataTable(id="operation-nodes", cursor_type="row")
            for column in ("node", "state", "detail"):
                nodes.add_column(column, key=column)
            yield nodes
            log = RichLog(id="operation-log", max_lines=5000, wrap=True, markup=False, min_width=20)
            log.border_title = "log: every node"
            log.write(Text("each node's progress shows here while a run goes", style="dim"))
            yield log
        yield self.footer()

    def read_model(self, fleet: Fleet, today: object) -> Recent:
        return Recent(catalog.operations(fleet, TRAIL_SHOWN), sorted(fleet.nodes()))

    def loaded(self, recent: Recent) -> None:
        """Before this session's first run: the trail, and every node idle."""
        self.ready.set()
        if self.running is not None or self.worker is not None:
            return  # the last run's summary and nodes stay until the next run
        now = self.backend.now()
        lines = [trail_line(r, now) for r in recent.runs] or ["the trail is empty"]
        self.query_one("#summary-title", Label).update("no run here yet · the latest runs:")
        self.query_one("#summary", Static).update("\n".join(lines))
        table: DataTable[str | Text] = self.query_one("#operation-nodes", DataTable)
        table.clear()
        for name in recent.nodes:
            table.add_row(name, Text("idle", style="dim"), "", key=name)

    # --- running -----------------------------------------------------------------------------

    def action_run(self, kind: str) -> None:
        if self.worker is not None and self.worker.is_running:
            self.notify(f"{self.running} is still running", severity="warning")
            return
        self.running = kind
        self.cancel_requested.clear()
        self.query_one("#operation-nodes", DataTable).clear()
        self.query_one(RichLog).clear()
        self.log_lines = []
        self.node_states = {}
        self.query_one("#summary-title", Label).update(f"{kind}: running…")
        self.query_one("#summary", Static).update("")
        self.worker = self.run_worker(
            lambda: self._run(kind), name=kind, group="operation", thread=True, exit_on_error=False
        )

    def action_cancel(self) -> None:
        if self.worker is None or not self.worker.is_running:
            self.notify("nothing is running")
            return
        self.cancel_requested.set()
        running = self.running or "run"
        self.notify(f"{running}: {CANCEL_POINTS.get(running, 'cancelling')}")

    def _run(self, kind: str) -> None:
        backend = self.backend
        app = self.app
        node = self._node_from_thread

        def write(call: Callable[[Fleet], Any]) -> Any:
            return backend.write(call, f"tui {kind}")

        def audit() -> AuditResult:
            result: AuditResult = write(
                lambda fleet: audit_service.audit(
                    fleet, progress=self._audit_progress, cancelled=self.cancel_requested.is_set
                )
            )
            self.wgapp.last_audit = result  # its rows, for the node screens
            return result

        work: dict[str, Callable[[], Summary]] = {
            "sync": lambda: sync_summary(
                write(
                    lambda fleet: sync_service.sync(
                        fleet,
                        today=backend.today(),
                        warn_ratio=fleet.settings.usage.warn_percent / 100,
                        progress=lambda n: node(n.node, *sync_line(n)),
                        cancelled=self.cancel_requested.is_set,
                    )
                )
            ),
            "apply": lambda: push_summary(
                write(
                    lambda fleet: push_service.push(
                        fleet,
                        progress=lambda n: node(n.node, *push_line(n)),
                        today=backend.today(),
                        cancelled=self.cancel_requested.is_set,
                    )
                )
            ),
            "plan": lambda: push_summary(
                write(
                    lambda fleet: push_service.push(
                        fleet,
                        dry_run=True,
                        progress=lambda n: node(n.node, *push_line(n)),
                        cancelled=self.cancel_requested.is_set,
                    )
                )
            ),
            "audit": lambda: audit_summary(audit()),
            "deploy": lambda: self._deploy(),
        }
        if kind in ("sync", "apply", "plan"):
            self._announce_nodes()
        _ok, summary = guarded(app, kind, work[kind])
        if summary is None:
            summary = Summary(kind, "nothing was done: see the notification", ran=False)
        app.call_from_thread(self.finished, summary)

    def _deploy(self) -> Summary:
        result = self.backend.write(
            lambda fleet: deploy_service.deploy(
                fleet, on_update=self._deploy_update, cancelled=self.cancel_requested.is_set
            ),
            "tui deploy",
        )
        return deploy_summary(result)

    def _announce_nodes(self) -> None:
        """Every node the run will reach, waiting; the store is read in this thread."""
        _ok, names = guarded(
            self.app, "list nodes", lambda: self.backend.read(lambda f: sorted(f.nodes()))
        )
        for name in names or []:
            self._node_from_thread(name, "running", "waiting for the node…", log=False)

    def _audit_progress(self, message: str) -> None:
        name, _, detail = message.partition(": ")
        failed = not detail.endswith(" 0 failed")
        self._node_from_thread(name, "failed" if failed else "ok", detail)

    def _deploy_update(self, recap: PlayRecap, event: Mapping[str, Any]) -> None:
        data = event.get("event_data") or {}
        host = data.get("host")
        if not host:
            return
        progress = recap.host(str(host))
        detail = progress.error or progress.current_task
        kind = HOST_EVENTS.get(str(event.get("event")))
        state = "running" if progress.status == "ok" else progress.status
        self._node_from_thread(str(host), state, detail, log=kind is not None)

    def _node_from_thread(self, node: str, state: str, detail: str, *, log: bool = True) -> None:
        self.app.call_from_thread(self.node_update, node, state, detail, log)

    # --- rendering ---------------------------------------------------------------------------

    def node_update(self, node: str, state: str, detail: str, log: bool = True) -> None:
        table: DataTable[str | Text] = self.query_one("#operation-nodes", DataTable)
        styled = Text(state, style=STATE_STYLE.get(state, ""))
        short = words_within(detail, self.detail_room(table, node))
        if node in table.rows:
            table.update_cell(node, "state", styled, update_width=True)
            table.update_cell(node, "detail", short, update_width=True)
        else:
            table.add_row(node, styled, short, key=node)
        self.node_states[node] = state
        if self.running is not None:
            done = sum(s != "running" for s in self.node_states.values())
            self.query_one("#summary-title", Label).update(
                f"{self.running}: running… {done} of {len(self.node_states)} node(s) done"
            )
        if log:
            line = f"{node}: {state}: {detail}"
            self.log_lines.append((node, line))
            if len(self.log_lines) > 20_000:  # a long deploy: keep the latest lines
                del self.log_lines[:5_000]
            if self.log_node in (None, node) and filter_rows([line], self.filter_text, str.lower):
                self.query_one(RichLog).write(Text(line))

    @staticmethod
    def detail_room(table: DataTable[str | Text], node: str) -> int:
        """Cells left for a node's detail beside its name and state (the log has it whole)."""
        widest = max([len(node)] + [len(str(key.value)) for key in table.rows])
        return max(10, table.size.width - widest - len("running") - 3 * 2 - 1)

    def action_log_scope(self) -> None:
        """Show the log of the highlighted node only, or of every node again."""
        table: DataTable[str | Text] = self.query_one("#operation-nodes", DataTable)
        if self.log_node is None and table.row_count:
            self.log_node = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        else:
            self.log_node = None
        self.show_log()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.log_node is not None and event.row_key.value != self.log_node:
            self.log_node = str(event.row_key.value)
            self.show_log()

    def show_rows(self) -> None:
        self.show_log()

    def show_log(self) -> None:
        log = self.query_one(RichLog)
        log.clear()
        log.border_title = f"log: {self.log_node}" if self.log_node else "log: every node"
        lines = [line for node, line in self.log_lines if self.log_node in (None, node)]
        for line in filter_rows(lines, self.filter_text, str.lower):
            log.write(Text(line))

    def finished(self, summary: Summary) -> None:
        self.running = None  # before the failed nodes' lines: the title says the outcome now
        title = self.query_one("#summary-title", Label)
        heading = f"{summary.title}: {summary.verdict}"
        title.update(Text(heading, style="green" if summary.ok else "red"))
        lines = [summary.line] + [f"  {node}: {why}" for node, why in summary.failures]
        self.query_one("#summary", Static).update("\n".join(lines))
        for node, why in summary.failures:
            self.node_update(node, "failed", why, log=False)
        if summary.failures:  # heard on any screen; the details stay here
            shown = [f"{node}: {why}" for node, why in summary.failures[:5]]
            more = len(summary.failures) - len(shown)
            self.notify(
                "\n".join(shown + ([f"and {more} more on the Operations screen"] if more else [])),
                title=heading,
                severity="error",
                timeout=15,
                markup=False,
            )
