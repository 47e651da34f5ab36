"""Pending removals (``pending_removals``): no access outlives its revocation.

Every change that takes a key off a node (disable, cut-off, expiry, removal, deletion, a
replaced key's grace ending, a node dropped from a configuration) records the pair in the
same transaction; a push that the node applied confirms it. Until then the key is known
to be on the node: a sync believes its counters there (billing its configuration, if it
still has one) and pushes the node again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from orchestrator.adapters.store.counters import CountersStore
from orchestrator.core.accounting import OVERLAP_PREFIX
from orchestrator.core.models import Configuration


class RemovalsStore(CountersStore):
    """Keys whose removal from a node is pending, until the node confirms it."""

    @staticmethod
    def _placed_keys(
        configurations: Iterable[Configuration],
    ) -> list[tuple[str, str, str]]:
        """(node, key, configuration) for each key of ``configurations`` on each of its
        nodes."""
        return [
            (node, key, c.name)
            for c in configurations
            for key in (c.public_key, c.previous_public_key)
            if key is not None
            for node in c.nodes
        ]

    @staticmethod
    def _keys_of(configurations: Iterable[Configuration]) -> list[str]:
        return [
            key
            for c in configurations
            for key in (c.public_key, c.previous_public_key)
            if key is not None
        ]

    def _pend_removals(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """(node, key, configuration name) pairs whose removal is now pending; a deleted
        configuration's rows lose the link when its row goes."""
        self.db.executemany(
            "INSERT INTO pending_removals (node, public_key, configuration_id) "
            "VALUES (?, ?, (SELECT id FROM configurations WHERE name = ?)) "
            "ON CONFLICT (node, public_key) DO UPDATE SET "
            "configuration_id = excluded.configuration_id",
            sorted(set(rows)),  # one lock order for concurrent writers
        )

    def _cancel_removals(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(node, key) pairs a change placed back on their node before the removal went out."""
        self.db.executemany(
            "DELETE FROM pending_removals WHERE node = ? AND public_key = ?", sorted(set(pairs))
        )

    def pending_removals(self, nodes: Collection[str] | None = None) -> dict[str, set[str]]:
        """node -> keys whose removal from it is pending (every node that has any, or those
        of ``nodes``)."""
        rows = self._rows("SELECT node, public_key FROM pending_removals ORDER BY node")
        found: dict[str, set[str]] = {}
        wanted = None if nodes is None else set(nodes)
        for node, key in rows:
            if wanted is None or node in wanted:
                found.setdefault(node, set()).add(key)
        return found

    def confirm_removals(self, node: str, keys: Collection[str], gone: Collection[str]) -> bool:
        """``node`` applied a push made after ``keys``' removals were recorded: they are done.
        ``gone``: the keys it holds no more (the others were placed back), whose last-seen
        counters there are forgotten, so a key ever placed there again starts from zero.
        Return whether a deleted account's key was among them (the caller scrubs the files)."""
        wanted = sorted(set(keys))
        if not wanted:
            return False
        with self.transaction():
            unlinked = not set(wanted).isdisjoint(
                r[0]
                for r in self._rows(
                    "SELECT public_key FROM pending_removals "
                    "WHERE node = ? AND configuration_id IS NULL",
                    (node,),
                )
            )
            self.db.executemany(
                "DELETE FROM pending_removals WHERE node = ? AND public_key = ?",
                [(node, key) for key in wanted],
            )
            drop = set(gone)
            seen = self.peer_counters_of([node]).get(node) if drop else None
            if seen is not None:
                stale = [k for k in seen.keys if k.removeprefix(OVERLAP_PREFIX) in drop]
                if stale:
                    self._write_last_seen({node: seen.without(stale)})
        return unlinked
