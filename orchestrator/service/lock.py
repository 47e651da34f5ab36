"""The fleet lock: one writing run at a time (cron, the TUI, a pipeline), across processes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.adapters.private_files import private_dir
from orchestrator.adapters.store.advisory_locks import AdvisoryLock, LockHeld, advisory_locks
from orchestrator.core.shard import Shard
from orchestrator.errors import FleetBusy, UsageError
from orchestrator.settings import Settings


@contextmanager
def _flock(path: Path, mode: int, wait: bool, deadline: float | None) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # a link planted there (ELOOP) is never followed
        raise UsageError(f"{path}: cannot open the fleet lock: {exc.strerror or exc}") from None
    try:
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
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


@contextmanager
def fleet_lock(
    settings: Settings,
    *,
    wait: bool = False,
    timeout: float | None = None,
    shard: Shard | None = None,
) -> Iterator[None]:
    """Hold the lock for the block; without ``wait`` a held lock fails at once (exit 3).

    A sharded run shares the fleet lock with the other shards and holds its shard's own lock
    alone: shards run side by side (node leases in the store keep them apart), while a run of
    the whole fleet still waits for all of them.

    On a PostgreSQL store the locks are advisory locks in the store (every controller of the
    fleet shares them, and a dead controller's go with its connection); on SQLite, the
    embedded single-controller store, they are files in the data directory (flock).
    """
    private_dir(settings.data_dir, follow=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    on_postgres = settings.store_url.startswith(("postgresql://", "postgres://"))
    fleet_path = settings.data_dir / "fleet.lock"
    # Re-entrant per controller (data directory) and thread: two controllers in one process
    # (tests) still exclude each other.
    held_key = (
        f"advisory:{hashlib.sha256(settings.store_url.encode()).hexdigest()}:{settings.data_dir}"
        if on_postgres
        else str(fleet_path)
    )
    held = _held_here(held_key)
    if held is not None:
        # This thread holds the lock already (a session inside a session, as in the demo or a
        # pipeline step): taking it again would wait on itself. A shard's lock does not cover
        # the whole fleet, and this thread could never get that while it holds a shard's.
        if shard is None and not held:
            raise RuntimeError("a whole-fleet session inside a shard's session")
        yield
        return
    if on_postgres:
        with _advisory(settings, shard, wait, deadline), _holding(held_key, shard is None):
            yield
        return
    if shard is None:
        with _flock(fleet_path, fcntl.LOCK_EX, wait, deadline), _holding(held_key, True):
            yield
        return
    shard_path = settings.data_dir / f"fleet-shard-{shard.index}-of-{shard.count}.lock"
    with (
        _flock(shard_path, fcntl.LOCK_EX, wait, deadline),
        _flock(fleet_path, fcntl.LOCK_SH, wait, deadline),
        _holding(held_key, False),
    ):
        yield


@contextmanager
def _advisory(
    settings: Settings, shard: Shard | None, wait: bool, deadline: float | None
) -> Iterator[None]:
    """The fleet lock (and a shard's) as advisory locks in the PostgreSQL store."""
    wanted = [AdvisoryLock("fleet", shared=shard is not None)]
    if shard is not None:
        wanted.insert(0, AdvisoryLock(f"fleet-shard-{shard.index}-of-{shard.count}"))
    try:
        with advisory_locks(
            settings.store_url, wanted, wait=wait, deadline=deadline, source=settings.source
        ):
            yield
    except LockHeld:
        raise FleetBusy(
            "another wgfleet run (on this or another controller) holds the fleet lock in the "
            "store; retry later or pass --wait"
        ) from None


# The locks this process's threads hold: (lock, thread) -> whole fleet?. flock() conflicts
# between two open() calls of one process too, so other threads (the TUI's workers) still
# queue; only the holding thread passes again.
_HELD: dict[tuple[str, int], bool] = {}


def _held_here(lock: str) -> bool | None:
    """True: this thread holds the whole fleet's lock; False: a shard's; None: neither."""
    return _HELD.get((lock, threading.get_ident()))


@contextmanager
def _holding(lock: str, whole: bool) -> Iterator[None]:
    key = (lock, threading.get_ident())
    _HELD[key] = whole
    try:
        yield
    finally:
        del _HELD[key]
