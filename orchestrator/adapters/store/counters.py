"""Each node's last-seen per-peer counters (``node_counters``: one row per node, the keys
and their numbers as text), from which a sync computes what a peer moved since."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from orchestrator.adapters.store.base import StoreBase
from orchestrator.core.accounting import (
    OVERLAP_PREFIX,
    LastSeen,
    PeerCounters,
    decode_counters,
    encode_counters,
)


class CountersStore(StoreBase):
    """Last-seen counters per node, read and written as columns."""

    def last_seen(self, node: str) -> dict[str, LastSeen]:
        return self.last_seen_of([node]).get(node, {})

    def last_seen_of(self, nodes: Collection[str]) -> dict[str, dict[str, LastSeen]]:
        """node -> public key -> last accounted counters, for the nodes that have any."""
        return {node: seen.as_dict() for node, seen in self.peer_counters_of(nodes).items()}

    def peer_counters_of(self, nodes: Collection[str]) -> dict[str, PeerCounters]:
        """node -> its last-seen counters as columns, for the nodes that have any."""
        wanted = set(nodes)
        if not wanted:
            return {}
        sql = "SELECT node, peers, counters FROM node_counters"
        if len(wanted) == 1:
            rows = self._rows(sql + " WHERE node = ?", [*wanted])
        elif self.db.dialect == "postgresql":  # a shard's nodes only, over the wire
            rows = self._rows(sql + " WHERE node = ANY(?)", [sorted(wanted)])
        else:
            rows = [r for r in self._rows(sql) if r[0] in wanted]
        return {node: decode_counters(peers, text) for node, peers, text in rows}

    def _counter_nodes(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT node FROM node_counters")]

    def _write_last_seen(
        self, last_seen: Mapping[str, PeerCounters | Mapping[str, LastSeen]]
    ) -> None:
        """Each node's full last-seen counters. A node whose counters are those its row holds
        is left alone; one whose keys are those its row holds gets its numbers rewritten only
        (on PostgreSQL the keys' text, stored out of line, is then not written again)."""
        numbers, whole = [], []
        for node, seen in last_seen.items():
            counters = PeerCounters.of(seen)
            if counters.saved:
                continue
            peers, text = encode_counters(counters)
            if counters.stored is not None and counters.stored == peers:
                numbers.append((node, text))
            else:
                whole.append((node, peers, text))
        if numbers and self.db.dialect == "postgresql":
            nodes, texts = zip(*numbers, strict=True)
            self.db.execute(
                "UPDATE node_counters n SET counters = r.counters "
                "FROM unnest(?::text[], ?::text[]) AS r (node, counters) WHERE n.node = r.node",
                (list(nodes), list(texts)),
            )
        elif numbers:
            self.db.executemany(
                "UPDATE node_counters SET counters = ? WHERE node = ?",
                [(text, node) for node, text in numbers],
            )
        self.db.executemany(
            "INSERT INTO node_counters (node, peers, counters) VALUES (?, ?, ?) "
            "ON CONFLICT (node) DO UPDATE SET peers = excluded.peers, "
            "counters = excluded.counters",
            whole,
        )

    def _forget_keys(self, public_keys: Iterable[str]) -> None:
        """Drop retired or deleted keys' last-seen counters on every node that has them."""
        keys = {k for k in public_keys if k}
        holders: set[str] = set()
        for key in keys:
            # Rows written before the peers column hold their keys in the counters' text.
            holders.update(
                r[0]
                for r in self._rows(
                    "SELECT node FROM node_counters WHERE COALESCE(peers, counters) LIKE ?",
                    (f"%{key}%",),
                )
            )
        changed = {}
        for node, seen in self.peer_counters_of(holders).items():
            gone = [k for k in seen.keys if k.removeprefix(OVERLAP_PREFIX) in keys]
            if gone:
                changed[node] = seen.without(gone)
        self._write_last_seen(changed)

    def forget_counters(self, node: str, key_prefix: str) -> None:
        """Drop last-seen rows of peers that are gone for good (an overlap interface's)."""
        with self.transaction():
            seen = self.last_seen(node)
            kept = {k: v for k, v in seen.items() if not k.startswith(key_prefix)}
            if kept != seen:
                self._write_last_seen({node: kept})
