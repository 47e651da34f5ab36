"""Pushes that do not make their caller wait: a background thread that carries pending store
changes to the nodes.

A writer (the HTTP API, a store-only top-up) commits to the store, answers with the nodes now
pending (`service.push.pending_nodes`) and calls :meth:`PushWorker.wake`; the worker opens its
own writing session (`open_fleet(settings, write=True, wait=False)`: it never queues behind a
sync, which pushes what is pending on the nodes it reaches anyway), pushes every pending node
and closes the session. Nodes that fail (unreachable, refused) or that another run holds stay
pending and are tried again after a delay that doubles up to ``max_delay``; a fleet lock held
elsewhere is waited out the same way. With nothing pending it sleeps until woken, or
``idle_poll`` seconds for changes another process committed. It never spins: every round is
followed by a wait on an event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.errors import WgfleetError
from orchestrator.service.context import open_fleet
from orchestrator.service.push import PushResult, pending_nodes, push
from orchestrator.settings import Settings


@dataclass(frozen=True)
class Backoff:
    """Seconds to wait after a round that left nodes pending: ``first``, doubled each such
    round in a row, at most ``most``."""

    first: float = 1.0
    most: float = 60.0

    def after(self, failures: int) -> float:
        return min(self.most, self.first * 2.0 ** max(0, failures - 1))


@dataclass(frozen=True)
class Round:
    """What one round did: the nodes it found pending, those left pending, the push (None:
    nothing to push, or the round could not open its session), why it could not, and how long
    the worker waits before the next round unless woken (None: until woken or the idle poll)."""

    pending: tuple[str, ...]
    left: tuple[str, ...]
    push: PushResult | None
    error: str
    delay: float | None


class PushWorker:
    """``start()`` the thread, ``wake()`` it after a commit, ``stop()`` it (it finishes the
    round under way; a push in flight ends within the push's SSH timeouts)."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        idle_poll: float | None = 60.0,
        on_round: Callable[[Round], None] | None = None,
    ) -> None:
        self.settings = settings
        self.backoff = backoff or Backoff()
        self.idle_poll = idle_poll
        self.on_round = on_round
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0  # rounds in a row that left nodes pending
        self.last: Round | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the push worker is already started")
        self._thread = threading.Thread(target=self._run, name="wgfleet-push-worker", daemon=True)
        self._thread.start()
        self._woken.set()  # a first round: what was pending before the worker started

    def wake(self) -> None:
        """A writer committed: look for pending nodes now (not after the backoff)."""
        self._woken.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to end and wait for it; True when it ended within ``timeout``."""
        self._stopping.set()
        self._woken.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        delay: float | None = None
        while True:
            self._woken.wait(delay)
            self._woken.clear()
            if self._stopping.is_set():
                return
            outcome = self.round()
            delay = outcome.delay
            if self.on_round is not None:
                self.on_round(outcome)

    def round(self) -> Round:
        """One round in its own writing session: push every pending node once."""
        pending: tuple[str, ...] = ()
        result: PushResult | None = None
        error = ""
        try:
            with open_fleet(
                self.settings, write=True, wait=False, operation="push worker"
            ) as fleet:
                pending = tuple(pending_nodes(fleet))
                if pending:
                    result = push(fleet, pending)
                left = tuple(pending_nodes(fleet))
        except WgfleetError as exc:  # the lock is held elsewhere, the store is down
            error = str(exc)
            left = pending
        except Exception as exc:  # a bug must not end the thread silently
            error = f"bug: {type(exc).__name__}"
            left = pending
        self._failures = self._failures + 1 if left or error else 0
        delay = self.backoff.after(self._failures) if self._failures else self.idle_poll
        outcome = Round(pending, left, result, error, delay)
        self.last = outcome
        return outcome
