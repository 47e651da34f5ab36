"""How the TUI reaches the fleet: the settings, a store per call, the fleet lock for writers.

The same unit of work as every caller (service.context.open_fleet): every call opens the
store in the thread that uses it (SQLite connections stay in their thread) and closes it
after. Writers take the fleet lock without waiting, so an operator hears at once that cron
or a pipeline is busy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
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

    def now(self) -> int:
        """Unix seconds that ages on screen count from: noon UTC of a fixed ``today`` (tests
        and their snapshots), else the clock."""
        if self._today is not None:
            noon = datetime(self._today.year, self._today.month, self._today.day, 12, tzinfo=UTC)
            return int(noon.timestamp())
        return int(time.time())

    def read(self, call: Callable[[Fleet], T]) -> T:
        with open_fleet(self.settings, operation="tui") as fleet:
            return call(fleet)

    def write(self, call: Callable[[Fleet], T], operation: str = "tui") -> T:
        """``call`` under the fleet lock; raises FleetBusy at once if another run holds it.
        ``operation`` names the session in the operations trail."""
        with open_fleet(self.settings, write=True, wait=False, operation=operation) as fleet:
            return call(fleet)
