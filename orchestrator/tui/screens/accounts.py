"""Accounts: search, see an account's configurations and top-ups, erase an account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, Static

from orchestrator.core.overview import AccountRow, filter_rows
from orchestrator.core.units import human_bytes
from orchestrator.service import peers
from orchestrator.service.context import Fleet
from orchestrator.service.overview import accounts_overview
from orchestrator.tui.screens.base import FilteredTableScreen
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.dialogs import ConfirmDialog
from orchestrator.tui.widgets.table_fit import fill_table
from orchestrator.tui.widgets.virtual_table import Column, VirtualTable, column_width


def deletion_statement(account: AccountRow) -> str:
    """What erasing ``account`` erases and what it keeps, in the operator's words."""
    names = ", ".join(c.name for c in account.configurations) or "none"
    nodes = sorted({n for c in account.configurations for n in c.nodes})
    invoices = ", ".join(t.invoice for t in account.topups) or "none"
    return (
        f"Erased for good:\n"
        f"  - the account {account.username} (password hash, device id, contact)\n"
        f"  - its {len(account.configurations)} configuration(s): {names}\n"
        f"  - their usage totals and counters\n"
        f"  - their peers, removed from {', '.join(nodes) or 'no node'}\n"
        f"Kept, for the books:\n"
        f"  - {len(account.topups)} top-up ledger row(s): {invoices}\n"
        f"    (invoice, amount, bytes, date; configuration set to none)"
    )


class AccountsScreen(FilteredTableScreen[list[AccountRow]]):
    SPEC = ScreenSpec("accounts", load="load accounts", focus="#accounts", filter="search")

    def __init__(self) -> None:
        super().__init__()
        self.accounts: list[AccountRow] = []
        self.shown: list[AccountRow] = []
        self.column_list: list[Column] = []

    def compose(self) -> ComposeResult:
        yield self.top_bar()
        yield self.filter_bar("search: username, device id, contact")
        yield VirtualTable(self.cells, id="accounts")
        with Horizontal(id="account-detail"):
            with Vertical():
                yield Label("configurations", id="detail-configurations-title")
                yield DataTable(id="account-configurations", cursor_type="row")
            with Vertical():
                yield Label("top-ups")
                yield DataTable(id="account-topups", cursor_type="row")
        yield self.footer()

    def read_model(self, fleet: Fleet, today: date) -> list[AccountRow]:
        return accounts_overview(fleet, today)

    def loaded(self, accounts: list[AccountRow]) -> None:
        self.accounts = rows = accounts
        self.ready.set()
        # Widths from the whole list, measured once per load: filtering never jolts them.
        self.column_list = [
            Column(
                "username", "username", column_width("username", [a.username for a in rows], 28)
            ),
            Column(
                "device", "device id", column_width("device id", [a.device_id for a in rows], 24)
            ),
            Column("configurations", "configs", 7),
            Column("topups", "top-ups", 7),
            Column(
                "contact", "contact", column_width("contact", [a.contact or "" for a in rows], 20)
            ),
        ]
        self.show_rows()

    def show_rows(self) -> None:
        table = self.query_one(VirtualTable)
        self.shown = filter_rows(self.accounts, self.filter_text, lambda a: a.search_text)
        table.set_rows(self.column_list, self.shown, key=lambda a: a.username)
        count = self.count_text(len(self.shown), len(self.accounts), "accounts")
        self.query_one("#count", Static).update(count)
        self.show_detail(table.current)

    def cells(self, row: Any) -> tuple[Sequence[str], str]:
        assert isinstance(row, AccountRow)
        return (
            row.username,
            row.device_id,
            str(len(row.configurations)),
            str(len(row.topups)),
            row.contact or "-",
        ), ""

    @on(VirtualTable.Highlighted, "#accounts")
    def _highlighted(self, event: VirtualTable.Highlighted) -> None:
        self.show_detail(event.row)

    def show_detail(self, row: Any) -> None:
        """The highlighted account's configurations and top-ups, side by side: each table
        keeps the columns that fit half the screen, most important first."""
        configs = row.configurations if isinstance(row, AccountRow) else ()
        topups = row.topups if isinstance(row, AccountRow) else ()
        self.query_one("#detail-configurations-title", Label).update(
            f"configurations of {row.username}" if isinstance(row, AccountRow) else "configurations"
        )
        half = self.app.size.width // 2  # each table's share of the screen
        fill_table(
            self.query_one("#account-configurations", DataTable),
            ("configuration", "used", "status", "nodes"),
            [
                (c.name, (c.name, c.usage(6, compact=True), c.status, ",".join(c.nodes)))
                for c in configs
            ],
            half,
        )
        fill_table(
            self.query_one("#account-topups", DataTable),
            ("invoice", "amount", "granted", "bought on", "configuration"),
            [
                (
                    t.invoice,
                    (
                        t.invoice,
                        t.amount,
                        human_bytes(t.bytes_granted),
                        t.purchased_on.isoformat(),
                        t.configuration or "-",
                    ),
                )
                for t in topups
            ],
            half,
        )

    def action_delete(self) -> None:
        row = self.query_one(VirtualTable).current
        if not isinstance(row, AccountRow):
            self.notify("no account selected", severity="warning")
            return

        self.confirm_then_write(
            ConfirmDialog(
                f"Erase account {row.username}",
                deletion_statement(row),
                "Erase",
                type_to_confirm=row.username,
            ),
            f"delete account {row.username}",
            lambda fleet: peers.delete_account(fleet, row.username),
            self.deleted(row.username),
        )

    def deleted(self, username: str) -> Any:
        def done(result: peers.AccountDeletion) -> None:
            self.report_push(
                f"account {username} erased with {len(result.removed)} configuration(s); "
                "top-up transactions kept"
                + ("" if result.scrubbed else "; run `wgfleet db scrub` once no run is active"),
                result.push,
            )
            self.action_reload()

        return done
