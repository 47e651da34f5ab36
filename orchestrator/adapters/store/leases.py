"""Which run syncs which node (``node_leases``), so shards of one fleet never sync a node
twice at once."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from orchestrator.adapters.store.base import StoreBase


def _holder_is_gone(holder: str) -> bool:
    """A lease holder is ``HOST:PID:TOKEN`` (service.lease.run_holder): gone when it ran on this
    machine and its process no longer exists."""
    parts = holder.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeasesStore(StoreBase):
    """Node leases: row locks on PostgreSQL, rows that lapse on SQLite."""

    LEASE_SECONDS = 900

    @contextmanager
    def lease_nodes(self, names: Iterable[str], holder: str) -> Iterator[set[str]]:
        """Claim the nodes no other run holds; yield the claimed set, release on exit.

        PostgreSQL: row locks taken with SKIP LOCKED on a connection of the lease's own, so a
        controller that dies releases its nodes the moment its connection drops. SQLite (one
        machine): rows naming the holder, taken over once ``LEASE_SECONDS`` have passed.
        """
        wanted = sorted(set(names))
        if not wanted:
            yield set()
            return
        if self.db.dialect == "postgresql":
            from orchestrator.adapters.store.postgres import connect_postgres

            lease_db = connect_postgres(self.url)
            try:
                lease_db.executemany(
                    "INSERT INTO node_leases (node, holder, expires_at) VALUES (?, ?, 0) "
                    "ON CONFLICT (node) DO NOTHING",
                    [(n, holder) for n in wanted],
                )
                lease_db.begin()
                rows = lease_db.execute(
                    "SELECT node FROM node_leases WHERE node = ANY(?) ORDER BY node "
                    "FOR UPDATE SKIP LOCKED",
                    (wanted,),
                )
                yield {r[0] for r in rows}
            finally:
                lease_db.close()  # ends the transaction: its row locks go with it
            return
        now = int(time.time())
        with self.transaction():
            # A run on this machine that died (killed, out of memory) frees its nodes at once
            # instead of when its lease lapses.
            dead = [
                (h,)
                for (h,) in self._rows(
                    "SELECT DISTINCT holder FROM node_leases WHERE expires_at > ? AND holder <> ?",
                    (now, holder),
                )
                if _holder_is_gone(h)
            ]
            self.db.executemany("UPDATE node_leases SET expires_at = 0 WHERE holder = ?", dead)
            self.db.executemany(
                "INSERT INTO node_leases (node, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at WHERE node_leases.expires_at <= ?",
                [(n, holder, now + self.LEASE_SECONDS, now) for n in wanted],
            )
            held = {
                r[0] for r in self._rows("SELECT node FROM node_leases WHERE holder = ?", (holder,))
            }
        claimed = held & set(wanted)
        try:
            yield claimed
        finally:
            with self.transaction():
                self.db.executemany(
                    "DELETE FROM node_leases WHERE node = ? AND holder = ?",
                    [(n, holder) for n in sorted(claimed)],
                )
