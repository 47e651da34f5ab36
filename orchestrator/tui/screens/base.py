"""What every screen shares: the backend, and the boundary where service errors become
notifications instead of crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from orchestrator.errors import FleetBusy, WgfleetError
from orchestrator.service.context import Fleet
from orchestrator.service.push import PushResult
from orchestrator.tui.backend import Backend
from orchestrator.tui.keymap import SCREENS, bindings
from orchestrator.tui.screens.spec import ScreenSpec
from orchestrator.tui.widgets.fitted_footer import FittedFooter
from orchestrator.tui.widgets.screen_tabs import TopBar

if TYPE_CHECKING:
    from orchestrator.tui.app import WgfleetApp

T = TypeVar("T")
Answer = TypeVar("Answer")
Data = TypeVar("Data")


def guarded(app: Any, title: str, work: Callable[[], T]) -> tuple[bool, T | None]:
    """Run ``work`` in a worker thread; a wgfleet error (or a bug) becomes a notification."""
    try:
        return True, work()
    except FleetBusy as exc:
        app.call_from_thread(
            app.notify, str(exc), title=f"{title}: fleet busy", severity="warning", markup=False
        )
    except WgfleetError as exc:
        app.call_from_thread(app.notify, str(exc), title=title, severity="error", markup=False)
    except Exception as exc:  # a bug: keep the operator's session, say what broke
        app.call_from_thread(
            app.notify,
            f"{type(exc).__name__}: {exc}",
            title=f"{title}: internal error",
            severity="error",
            markup=False,
        )
        app.call_from_thread(app.log.error, f"{title} failed", exc)
    return False, None


def under_way(worker: Worker[None] | None) -> bool:
    """``worker`` was started and has not ended (done, failed or cancelled)."""
    return worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)


def push_failures(push: PushResult) -> str:
    return "\n".join(f"{n.node}: {n.error}" for n in push.failed)


class WgfleetScreen(Screen[None]):
    """A screen of the operator's UI."""

    SPEC: ClassVar[ScreenSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Set before Textual's own hook, which merges BINDINGS as the class is made: a screen's
        # keys are its entry in the keymap, and a tab's title is its tab's.
        spec = cls.__dict__.get("SPEC")
        if spec is not None:
            cls.BINDINGS = bindings(spec.name)
            cls.TITLE = dict(SCREENS).get(spec.name, cls.TITLE)
        super().__init_subclass__(**kwargs)

    def __init__(self) -> None:
        super().__init__()
        self.ready = asyncio.Event()  # set once its data was first shown

    def top_bar(self) -> TopBar:
        """The tabs, this screen's shown as active."""
        return TopBar(SCREENS, self.SPEC.name, self.backend.settings.source)

    def footer(self) -> FittedFooter:
        return FittedFooter()

    @property
    def wgapp(self) -> WgfleetApp:
        return cast("WgfleetApp", self.app)

    @property
    def backend(self) -> Backend:
        return self.wgapp.backend

    def call_service(
        self,
        title: str,
        call: Callable[[Fleet], T],
        done: Callable[[T], None] | None = None,
        *,
        write: bool,
        group: str = "service",
        exclusive: bool = False,
    ) -> Worker[None]:
        """Run ``call(fleet)`` in a thread (under the fleet lock if ``write``), then ``done``
        with its result on the UI thread; errors are notified, never raised."""
        return self.run_worker(
            partial(self._call_in_thread, title, call, done, write),
            name=title,
            group=group,
            exclusive=exclusive,
            thread=True,
            exit_on_error=False,
        )

    def _call_in_thread(
        self,
        title: str,
        call: Callable[[Fleet], T],
        done: Callable[[T], None] | None,
        write: bool,
    ) -> None:
        backend = self.backend
        ok, result = guarded(
            self.app, title, lambda: backend.write(call) if write else backend.read(call)
        )
        if ok and done is not None:
            guarded(self.app, title, lambda: self.app.call_from_thread(done, cast(T, result)))

    def confirm_then_write(
        self,
        dialog: Screen[Any],
        title: str,
        call: Callable[[Fleet], T],
        done: Callable[[T], None],
    ) -> None:
        """Show a confirmation ``dialog``; only on its yes, run ``call`` as a write."""

        def confirmed(yes: object) -> None:
            if yes is True:
                self.call_service(title, call, done, write=True)

        self.app.push_screen(dialog, confirmed)

    def ask_then_write(
        self,
        dialog: Screen[Any],
        answer_type: type[Answer],
        title: Callable[[Answer], str],
        call: Callable[[Fleet, Answer], T],
        done: Callable[[T], None],
    ) -> None:
        """Show a form ``dialog``; once it is answered (not cancelled), run ``call`` with the
        answer as a write."""

        def answered(answer: object) -> None:
            if isinstance(answer, answer_type):
                chosen: Answer = answer
                self.call_service(
                    title(chosen), lambda fleet: call(fleet, chosen), done, write=True
                )

        self.app.push_screen(dialog, answered)

    def report_push(self, message: str, push: PushResult) -> None:
        """Say what changed in the store, and name every node that did not take it."""
        self.notify(message, markup=False)
        if not push.ok:
            self.notify(
                push_failures(push) + "\n(kept pending: Apply on the Operations screen)",
                title="push failed",
                severity="error",
                timeout=15,
                markup=False,
            )

    def rotate_peer_keys(self, name: str) -> None:
        """Confirm, rotate ``name``'s client keys (the same call as `wgfleet keys rotate peer`),
        then show its new config once and reload the screen."""
        from orchestrator.core.keys import parse_duration
        from orchestrator.service import keys as key_service
        from orchestrator.tui.widgets.dialogs import ClientConfigDialog, ConfirmDialog

        grace_text = self.backend.settings.keys.grace
        grace = parse_duration(grace_text)
        today = self.backend.today()

        def rotated(result: key_service.RotatedPeer) -> None:
            config = result.configuration
            self.app.push_screen(ClientConfigDialog(config.name, result.client_configs))
            self.report_push(f"{config.name}: new keys, the old key in grace", result.push)
            reload = getattr(self, "action_reload", None)
            if reload is not None:
                reload()

        self.confirm_then_write(
            ConfirmDialog(
                f"Rotate {name}'s keys",
                f"A new client key pair and preshared key for {name}; its usage, quota and "
                f"period stay. The old key works for {grace_text} or until the client first "
                "uses the new config, which is shown once next.",
                "Rotate",
            ),
            f"rotate {name}'s keys",
            lambda fleet: key_service.rotate_peer(fleet, name, grace_seconds=grace, today=today),
            rotated,
        )


class ReadModelScreen(WgfleetScreen, Generic[Data]):
    """A screen that shows one service read model: read again, off the UI thread, each time the
    screen is shown, on Reload, and every ``tui.refresh_interval`` while it is the screen on
    top, so a run finished by another process (cron, a pipeline, another operator) shows up
    without a keypress."""

    def __init__(self) -> None:
        super().__init__()
        self.load_worker: Worker[None] | None = None
        self.read_again = False  # a reload was asked for while a read ran

    def on_mount(self) -> None:
        self.query_one(self.SPEC.focus).focus()
        seconds = self.backend.settings.tui.refresh_seconds
        if seconds:
            self.set_interval(seconds, self.refresh_on_timer, name="refresh")

    def on_screen_resume(self) -> None:
        # Textual runs this handler of every class in the MRO: subclasses override
        # screen_shown(), never this.
        self.screen_shown()

    def screen_shown(self) -> None:
        """The screen came (back) on top: read again."""
        self.load()

    @property
    def reading(self) -> bool:
        return under_way(self.load_worker)

    def refresh_on_timer(self) -> None:
        """Read again, unless another screen or a dialog is on top or a read is under way."""
        if self.is_current and not self.reading:
            self.load()

    def action_reload(self) -> None:
        self.load()

    def load(self) -> None:
        """Read the model in a worker and show it; asked while a read runs, one more read
        follows that one (reads never overlap: two at once only slow each other down)."""
        if self.reading:
            self.read_again = True
            return
        today = self.backend.today()  # taken on the UI thread: one "today" per read
        self.load_worker = self.call_service(
            self.SPEC.load,
            lambda fleet: self.read_model(fleet, today),
            self.loaded,
            write=False,
            group="load",
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.load_worker and not self.reading and self.read_again:
            self.read_again = False
            self.load()

    def read_model(self, fleet: Fleet, today: date) -> Data:
        """The service read this screen shows (runs in a worker thread)."""
        raise NotImplementedError

    def loaded(self, data: Data) -> None:
        """Show ``data`` (on the UI thread)."""
        raise NotImplementedError


class FilteredTableScreen(ReadModelScreen[Data]):
    """A read-model screen whose table a filter box narrows as the operator types: a bar above
    it (``filter_bar``) or a one-line box shown by `/` (``filter_box``); Enter in the box (or
    Escape) goes back to the table."""

    def filter_bar(self, placeholder: str) -> Horizontal:
        """The filter box and, beside it, the count of rows shown (``#count``)."""
        return Horizontal(
            Input(placeholder=placeholder, id=self.SPEC.filter),
            Static("", id="count", classes="count"),
            classes="filter-bar",
        )

    @property
    def filter_text(self) -> str:
        return self.query_one(f"#{self.SPEC.filter}", Input).value

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.SPEC.filter:
            self.show_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.SPEC.filter:
            self.action_focus_table()

    def count_text(self, shown: int, total: int, noun: str) -> str:
        """What ``#count`` says: how many of the rows the filter lets through, or how many
        there are when nothing is typed."""
        return f"{shown} of {total}" if self.filter_text.strip() else f"{total} {noun}"

    def filter_box(self, placeholder: str) -> Input:
        """A one-line filter, hidden until `/` and kept while it holds a query (for screens
        whose rows an operator reads more than filters: the fleet, a node, the keys)."""
        return Input(
            placeholder=placeholder, id=self.SPEC.filter, compact=True, classes="pop-up-filter"
        )

    def action_focus_table(self) -> None:
        box = self.query_one(f"#{self.SPEC.filter}", Input)
        box.set_class(bool(box.value), "-shown")  # a pop-up filter stays while it filters
        self.query_one(self.SPEC.focus).focus()

    def action_focus_filter(self) -> None:
        box = self.query_one(f"#{self.SPEC.filter}", Input)
        box.add_class("-shown")
        box.focus()

    def show_rows(self) -> None:
        """Show the rows the filter lets through, and their count."""
        raise NotImplementedError
