"""The fleet lock: one writing run at a time (cron, the TUI, a pipeline), across processes."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.errors import FleetBusy
from orchestrator.settings import Settings


@contextmanager
def fleet_lock(
    settings: Settings, *, wait: bool = False, timeout: float | None = None
) -> Iterator[None]:
    """Hold the lock for the block; without ``wait`` a held lock fails at once (exit 3)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = settings.data_dir / "fleet.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or (deadline is not None and time.monotonic() > deadline):
                    raise FleetBusy(
                        f"another wgfleet run holds {path}; retry later or pass --wait"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)
