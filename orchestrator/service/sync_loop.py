"""`wgfleet sync --every 60s`: a long-running controller that keeps its SSH sessions open.

Each run is an ordinary sync (the fleet lock, node leases, one transaction); between runs the
sessions to the nodes stay open, so a steady-state run costs one exec per node instead of a key
exchange per node. The store is opened afresh for every run, so policies applied meanwhile
(`apply -f`) take effect on the next run, and a store that was briefly down is retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.adapters import ssh
from orchestrator.core.metrics import NO_OBSERVER, RunObserver
from orchestrator.core.shard import Shard
from orchestrator.errors import Cancelled, FleetBusy, NodeError, StoreError
from orchestrator.service.context import open_fleet
from orchestrator.service.sync import SyncResult, sync
from orchestrator.settings import Settings


@dataclass(frozen=True)
class LoopRun:
    number: int
    result: SyncResult | None
    error: str = ""  # the run did not happen (store down, lock held): the next one will
    seconds: float = 0.0
    sessions: int = 0  # SSH sessions kept open after the run


def _key_stamp(settings: Settings) -> tuple[float, ...]:
    """When the controller's keys last changed: a rotated key ends the sessions it opened."""
    stamps = []
    for path in (settings.ssh.collector_key, settings.ssh.push_key, settings.ssh.known_hosts):
        try:
            stamps.append(path.stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return tuple(stamps)


def sync_every(
    settings: Settings,
    interval: float,
    on_run: Callable[[LoopRun], None],
    *,
    stop: threading.Event | None = None,
    runs: int | None = None,
    shard: Shard | None = None,
    warn_percent: int | None = None,
    observer: RunObserver = NO_OBSERVER,
) -> int:
    """Sync every ``interval`` seconds until ``stop`` is set (or ``runs`` runs); return the count.

    Runs start on a fixed grid; a run longer than the interval skips the ticks it overran
    instead of starting runs back to back. ``observer`` hears every sync's and push's
    duration and failures, and every run that did not happen (`--metrics`).
    """
    stop = stop or threading.Event()
    count = 0
    stamp = _key_stamp(settings)
    next_at = time.monotonic()
    with ssh.ConnectionPool(limit=settings.ssh.kept_sessions) as pool:
        while not stop.is_set() and (runs is None or count < runs):
            count += 1
            if _key_stamp(settings) != stamp:
                pool.close()  # sessions opened with a key that was rotated since
                stamp = _key_stamp(settings)
            started = time.monotonic()
            result, error = None, ""
            try:
                with open_fleet(
                    settings,
                    write=True,
                    timeout=interval,
                    shard=shard,
                    connections=pool,
                    operation="sync",
                    observer=observer,
                ) as fleet:
                    percent = warn_percent or fleet.settings.usage.warn_percent
                    result = sync(
                        fleet,
                        warn_ratio=percent / 100,
                        shard=shard,
                        cancelled=stop.is_set,
                    )
            except Cancelled:
                break  # stopped mid-run: only its whole batches were written
            except (StoreError, FleetBusy, NodeError) as exc:
                error = str(exc)
                observer.failed(_failure_kind(exc))
            # Between runs only what the next one needs: sessions a whole run left unused
            # (a node removed, or now another shard's or controller's) are ended.
            pool.close_idle()
            on_run(LoopRun(count, result, error, time.monotonic() - started, len(pool)))
            if runs is not None and count >= runs:
                break
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                next_at += interval * ((now - next_at) // interval + 1)
            stop.wait(next_at - now)
    return count


def _failure_kind(error: Exception) -> str:
    """The metrics' kind of a run that did not happen."""
    if isinstance(error, StoreError):
        return "store_unavailable"
    if isinstance(error, FleetBusy):
        return "fleet_busy"
    return "run_failed"
