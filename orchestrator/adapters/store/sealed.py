"""Secrets the nodes need again, sealed (``sealed_secrets``), and which fleet key seals them.

A row holds a reference (``psk:NAME``, as the configurations name it), the id of the fleet
key that sealed it and the sealed text (``adapters/sealing.py``): the store alone opens
nothing. ``fleet_key`` holds one row, the id of the fleet secret every controller must hold,
so a controller given another secret is refused before it seals anything under it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from orchestrator.adapters.store.base import StoreBase

# Up to this many references are read by name; more, and the whole table is read once.
_FEW = 500


class SealedSecretsStore(StoreBase):
    """Sealed secrets by reference, and the fleet's current key id."""

    def fleet_key_id(self, hold: str = "") -> str | None:
        """The fleet's key id. ``hold`` ("share" or "update"), inside a transaction: on
        PostgreSQL the row stays locked until it ends, so a rotation (update) waits for the
        seals under way (share) and they wait for it (SQLite's transactions hold the whole
        store from their start)."""
        lock = f" FOR {hold.upper()}" if hold and self.db.dialect == "postgresql" else ""
        row = self._one(f"SELECT key_id FROM fleet_key WHERE id = 1{lock}")
        return str(row[0]) if row else None

    def claim_fleet_key_id(self, key_id: str) -> str:
        """Record ``key_id`` as the fleet's when none is yet; return the fleet's key id (the
        first controller to record one wins a race)."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO fleet_key (id, key_id) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                (key_id,),
            )
            found = self.fleet_key_id()
        assert found is not None
        return found

    def put_sealed(self, ref: str, key_id: str, sealed: str) -> None:
        self._upsert("sealed_secrets", "ref", {"ref": ref, "key_id": key_id, "sealed": sealed})

    def sealed(self, ref: str) -> tuple[str, str] | None:
        """The key id and sealed text stored under ``ref``."""
        row = self._one("SELECT key_id, sealed FROM sealed_secrets WHERE ref = ?", (ref,))
        return (str(row[0]), str(row[1])) if row else None

    def sealed_many(self, refs: Collection[str]) -> dict[str, tuple[str, str]]:
        """The key id and sealed text of each of ``refs`` the store holds."""
        wanted = set(refs)
        if len(wanted) > _FEW:
            return {
                ref: (key_id, sealed)
                for ref, key_id, sealed in self.sealed_secrets()
                if ref in wanted
            }
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._rows(
            f"SELECT ref, key_id, sealed FROM sealed_secrets WHERE ref IN ({marks})", sorted(wanted)
        )
        return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def sealed_secrets(self) -> list[tuple[str, str, str]]:
        """Every sealed row: reference, key id, sealed text."""
        rows = self._rows("SELECT ref, key_id, sealed FROM sealed_secrets ORDER BY ref")
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def delete_sealed(self, refs: Iterable[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM sealed_secrets WHERE ref = ?", [(r,) for r in refs])

    def reseal(self, rows: Iterable[tuple[str, str]], key_id: str) -> None:
        """Replace every sealed row (reference, sealed text under ``key_id``) and make
        ``key_id`` the fleet's, together."""
        with self.transaction():
            self.db.executemany(
                "UPDATE sealed_secrets SET key_id = ?, sealed = ? WHERE ref = ?",
                [(key_id, sealed, ref) for ref, sealed in rows],
            )
            self.db.execute("UPDATE fleet_key SET key_id = ? WHERE id = 1", (key_id,))
