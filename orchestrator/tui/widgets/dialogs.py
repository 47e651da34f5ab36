"""Modal dialogs: they collect what an action needs and hand it back; the screen acts.

Only the shape of the input is checked here (a whole number, a field not empty); the service
functions judge everything else, exactly as they do for the CLI.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from orchestrator.core.errors import CoreError
from orchestrator.core.models import DisabledReason
from orchestrator.core.units import parse_size


class Dialog(ModalScreen[object]):
    """A centred box with a title; Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, message: str) -> None:
        error = self.query_one("#dialog-error", Label)
        error.update(message)
        error.display = True

    def buttons(self, ok: str, *, danger: bool = False) -> Horizontal:
        """The bottom bar: an error line (hidden until needed), then OK and Cancel."""
        return Horizontal(
            Label("", id="dialog-error"),
            Button(ok, variant="error" if danger else "primary", id="ok", compact=True),
            Button("Cancel", id="cancel", compact=True),
            classes="dialog-buttons",
        )

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)


class GrantDialog(Dialog):
    """A dialog that grants quota: a number of bytes typed, or a plan picked from a list.
    OK or Enter in any field submits it (``submit``); ``FIRST_FIELD`` has the focus first."""

    FIRST_FIELD: ClassVar[str]

    def __init__(self, plans: Sequence[str]) -> None:
        super().__init__()
        self.plans = list(plans)

    def on_mount(self) -> None:
        self.query_one(self.FIRST_FIELD).focus()

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted)
    def _ok(self) -> None:
        self.submit()

    def submit(self) -> None:
        raise NotImplementedError

    def grant_fields(self, label: str, field: str, placeholder: str) -> ComposeResult:
        yield Label(label)
        yield Input(placeholder=placeholder, id=field, compact=True)
        yield Select([(p, p) for p in self.plans], prompt="or a plan", id="plan", compact=True)

    def grant(self, field: str, *, required: bool) -> tuple[int | None, str | None] | None:
        """The bytes typed (``10GiB`` or a number, as the CLI takes them) and the plan chosen;
        None, with the problem shown, when both are given, or neither and one is ``required``."""
        text = self.query_one(f"#{field}", Input).value.strip()
        chosen = self.query_one("#plan", Select).value
        plan = chosen if isinstance(chosen, str) else None
        if text and plan is not None:
            self.show_error(f"give {field} or a plan, not both")
            return None
        if required and not text and plan is None:
            self.show_error(f"give {field} or a plan")
            return None
        try:
            return (parse_size(text) if text else None), plan
        except CoreError as exc:
            self.show_error(f"{field}: {exc}")
            return None


class ConfirmDialog(Dialog):
    """Yes or no to a stated consequence; ``type_to_confirm`` asks for a name to be typed."""

    def __init__(self, title: str, body: str, ok: str, *, type_to_confirm: str | None = None):
        super().__init__()
        self.title_text = title
        self.body = body
        self.ok = ok
        self.type_to_confirm = type_to_confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.body, markup=False)
            if self.type_to_confirm is not None:
                yield Input(
                    placeholder=f"type {self.type_to_confirm} to confirm",
                    id="confirm",
                    compact=True,
                )
            yield self.buttons(self.ok, danger=True)

    def on_mount(self) -> None:
        self.query_one("#cancel" if self.type_to_confirm is None else "#confirm").focus()

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted, "#confirm")
    def _confirm(self) -> None:
        typed = self.query_one("#confirm", Input).value.strip() if self.type_to_confirm else None
        if typed != self.type_to_confirm:
            self.show_error(f"type {self.type_to_confirm} exactly to confirm")
            return
        self.dismiss(True)


class DisableDialog(Dialog):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.config_name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Disable {self.config_name}", classes="dialog-title")
            yield Static("Its peer is removed from every node it is on, until enabled again.")
            yield Label("reason")
            yield Select(
                [(r.value.replace("_", " "), r) for r in DisabledReason],
                value=DisabledReason.OPERATOR,
                allow_blank=False,
                id="reason",
                compact=True,
            )
            yield self.buttons("Disable", danger=True)

    def on_mount(self) -> None:
        self.query_one("#ok").focus()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        value = self.query_one("#reason", Select).value
        self.dismiss(value if isinstance(value, DisabledReason) else DisabledReason.OPERATOR)


@dataclass(frozen=True)
class TopUpForm:
    invoice: str
    amount: str
    bytes_granted: int | None
    plan: str | None


class TopUpDialog(GrantDialog):
    FIRST_FIELD = "#invoice"

    def __init__(self, name: str, plans: Sequence[str]) -> None:
        super().__init__(plans)
        self.config_name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Top up {self.config_name}", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Label("invoice (once per invoice)")
                yield Input(placeholder="INV-2024-0001", id="invoice", compact=True)
                yield Label("amount billed")
                yield Input(placeholder="4.99", id="amount", compact=True)
                yield from self.grant_fields(
                    "grant: bytes, or a plan's quota", "bytes", "bytes, e.g. 10737418240"
                )
            yield self.buttons("Top up")

    def submit(self) -> None:
        grant = self.grant("bytes", required=True)
        if grant is not None:
            invoice = self.query_one("#invoice", Input).value.strip()
            amount = self.query_one("#amount", Input).value.strip()
            self.dismiss(TopUpForm(invoice, amount, *grant))


@dataclass(frozen=True)
class AddForm:
    account: str
    nodes: tuple[str, ...]
    quota_bytes: int | None
    plan: str | None
    name: str | None


class AddConfigurationDialog(GrantDialog):
    FIRST_FIELD = "#account"

    def __init__(self, account: str, nodes: Sequence[str], plans: Sequence[str]) -> None:
        super().__init__(plans)
        self.account = account
        self.nodes = list(nodes)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Add a configuration", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Label("account")
                yield Input(self.account, placeholder="username", id="account", compact=True)
                yield Label("nodes")
                yield SelectionList[str](
                    *[(n, n, True) for n in self.nodes], id="nodes", compact=True
                )
                yield from self.grant_fields(
                    "quota: bytes, or a plan, or neither (unmetered)", "quota", "bytes"
                )
                yield Label("name (default ACCOUNT-N)")
                yield Input(placeholder="optional", id="name", compact=True)
            yield self.buttons("Add")

    def submit(self) -> None:
        account = self.query_one("#account", Input).value.strip()
        nodes = tuple(self.query_one("#nodes", SelectionList).selected)
        if not account:
            self.show_error("account: required")
            return
        if not nodes:
            self.show_error("nodes: choose at least one")
            return
        grant = self.grant("quota", required=False)
        if grant is not None:
            name = self.query_one("#name", Input).value.strip() or None
            self.dismiss(AddForm(account, tuple(sorted(nodes)), *grant, name))


def qr_text(text: str) -> str:
    """A QR code of ``text`` in block characters, for a phone to scan off the terminal."""
    import segno

    buffer = io.StringIO()
    segno.make(text, error="l").terminal(out=buffer, compact=True)
    return buffer.getvalue().rstrip("\n")


class ClientConfigDialog(Dialog):
    """The client's configuration, shown once: wgfleet keeps no copy of its private key."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    def __init__(self, name: str, client_configs: dict[str, str], *, qr: bool = True) -> None:
        super().__init__()
        self.config_name = name
        self.client_configs = client_configs
        self.qr = qr

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(
                f"{self.config_name}: client configuration, shown once", classes="dialog-title"
            )
            yield Static(
                "wgfleet keeps no copy of the private key: copy or scan it now.",
                classes="dialog-warning",
            )
            with VerticalScroll(classes="dialog-body", id="client-configs"):
                for node, text in self.client_configs.items():
                    yield Label(f"# {node}", classes="dialog-title")
                    yield Static(text, markup=False, classes="client-config")
                    if self.qr:
                        yield Static(qr_text(text), markup=False, classes="qr")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Done", variant="primary", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#client-configs").focus()
