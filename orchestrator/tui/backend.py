"""How the TUI reaches the fleet: the settings, a store per call, the fleet lock for writers.

The same unit of work as every caller (service.context.open_fleet): every call opens the
store in the thread that uses it (SQLite connections stay in their thread) and closes it
after. Writers take the fleet lock without waiting, so an operator hears at once that cron
or a pipeline is busy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

from orchestrator.service.context import Fleet, open_fleet
from orchestrator.settings import Settings

T = TypeVar("T")


class Backend:
    def __init__(self, settings: Settings, *, today: date | None = None) -> None:
        self.settings = settings
        self._today = today

    def today(self) -> date:
        """The date the services count billing periods and key ages from (fixed in tests)."""
        return self._today or date.today()

    def read(self, call: Callable[[Fleet], T]) -> T:
        with open_fleet(self.settings, operation="tui") as fleet:
            return call(fleet)

    def write(self, call: Callable[[Fleet], T]) -> T:
        """``call`` under the fleet lock; raises FleetBusy at once if another run holds it."""
        with open_fleet(self.settings, write=True, wait=False, operation="tui") as fleet:
            return call(fleet)
