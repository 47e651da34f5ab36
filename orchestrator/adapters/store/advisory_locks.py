"""The fleet lock on a PostgreSQL store: session-level advisory locks, so every controller of
the fleet (each with its own data directory) queues behind the same lock.

Each lock is held on a connection of its own, opened for the block and closed after it: a
session-level advisory lock lasts until released or until its session ends, so a controller
that dies (even SIGKILL) frees the fleet the moment the server sees its connection drop.
Advisory locks are per database, so two fleets on one server never meet. Keys are fixed 64-bit
numbers derived from a name (``lock_key``), never from data a user can choose.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from orchestrator.adapters.store.postgres import connect_postgres


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name`` (PostgreSQL's bigint)."""
    return int.from_bytes(
        hashlib.sha256(f"wgfleet:{name}".encode()).digest()[:8], "big", signed=True
    )


@dataclass(frozen=True)
class AdvisoryLock:
    name: str
    shared: bool = False


class LockHeld(Exception):
    """Another session holds one of the locks (the caller words the error)."""


@contextmanager
def advisory_locks(
    url: str,
    locks: Sequence[AdvisoryLock],
    *,
    wait: bool,
    deadline: float | None,
    source: str = "settings",
) -> Iterator[None]:
    """Hold ``locks`` (in order, all or none) for the block; LockHeld when one is held
    elsewhere and ``wait`` is off or ``deadline`` (time.monotonic) passed."""
    db = connect_postgres(url, source=source)
    try:
        while True:
            taken = []
            for lock in locks:
                function = "pg_try_advisory_lock_shared" if lock.shared else "pg_try_advisory_lock"
                if not db.execute(f"SELECT {function}(?)", (lock_key(lock.name),))[0][0]:
                    break
                taken.append(lock)
            if len(taken) == len(locks):
                break
            for lock in taken:  # all or none: never sit on one lock while waiting for another
                function = "pg_advisory_unlock_shared" if lock.shared else "pg_advisory_unlock"
                db.execute(f"SELECT {function}(?)", (lock_key(lock.name),))
            if not wait or (deadline is not None and time.monotonic() > deadline):
                raise LockHeld
            time.sleep(0.2)
        yield
    finally:
        db.close()  # ends the session: its advisory locks go with it
