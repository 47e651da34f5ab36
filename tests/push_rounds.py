"""The rounds a push worker reports (its ``on_round``), for a test to wait on: the unit tests'
worker whose nodes nobody answers and the lab test's worker that reaches real nodes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from orchestrator.service.push_worker import Round


class RoundRecorder:
    """Every round reported, in order; waits end after ``waited`` seconds at the most, which
    only bounds a test that would otherwise hang (never a timing assertion)."""

    def __init__(self, waited: float) -> None:
        self.rounds: list[Round] = []
        self.waited = waited
        self._changed = threading.Condition()

    def __call__(self, outcome: Round) -> None:
        with self._changed:
            self.rounds.append(outcome)
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[Round]:
        """The rounds so far, once ``count`` of them happened (or the wait ran out)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.rounds) >= count, self.waited)
            return list(self.rounds)

    def until(self, done: Callable[[Round], bool]) -> Round:
        """The first round that is ``done``; fails the test if none came within the wait."""
        with self._changed:
            assert self._changed.wait_for(lambda: any(done(r) for r in self.rounds), self.waited)
            return next(r for r in self.rounds if done(r))
