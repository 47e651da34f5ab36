"""A configuration's keys over time: a new key pair with the replaced one in grace, a new
preshared key, and the replaced keys that leave once their grace is over."""

from __future__ import annotations

from datetime import date

from orchestrator.adapters.store.configurations import ConfigurationsStore
from orchestrator.core.models import Configuration
from orchestrator.errors import StoreError


class PeerKeysStore(ConfigurationsStore):
    """Peer and preshared key rotations."""

    def begin_peer_rotation(
        self,
        name: str,
        public_key: str,
        psk_ref: str | None,
        created_on: date,
        previous_expires: int,
    ) -> Configuration:
        """Give a configuration a new key pair; the replaced key stays in grace until expiry."""
        with self.transaction():
            current = self.configuration(name)
            if current.previous_public_key is not None:
                raise StoreError(
                    f"configuration {name!r} is already rotating: its previous key is still in "
                    "grace"
                )
            self._refuse_known_key(public_key)
            self.db.execute(
                "UPDATE configurations SET previous_public_key = public_key, "
                "previous_psk_ref = psk_ref, previous_key_expires = ?, public_key = ?, "
                "psk_ref = ?, key_created_on = ?, psk_created_on = ? WHERE name = ?",
                (previous_expires, public_key, psk_ref, created_on, created_on, name),
            )
            self.bump_nodes(current.nodes)
            return self.configuration(name)

    def set_psk(self, name: str, psk_ref: str, created_on: date) -> Configuration:
        with self.transaction():
            current = self.configuration(name)
            self.db.execute(
                "UPDATE configurations SET psk_ref = ?, psk_created_on = ? WHERE name = ?",
                (psk_ref, created_on, name),
            )
            self.bump_nodes(current.nodes)
            return self.configuration(name)

    def end_grace(self, name: str, now: int) -> None:
        """Cut a replaced key's grace short: it leaves the nodes on the next push."""
        with self.transaction():
            current = self.configuration(name)
            self.db.execute(
                "UPDATE configurations SET previous_key_expires = ? "
                "WHERE name = ? AND previous_public_key IS NOT NULL",
                (now, name),
            )
            self.bump_nodes(current.nodes)

    def rotations_ending(self, now: int) -> list[Configuration]:
        """Configurations whose previous key's grace is over (it must leave every node)."""
        rows = self._rows(
            self._CONFIG_SELECT + " WHERE c.previous_key_expires <= ? ORDER BY c.name", (now,)
        )
        return self._configs_from_rows(rows)

    def retire_ended_keys(self, now: int) -> list[Configuration]:
        """Every replaced key whose grace is over (``now``, unix seconds) leaves its
        configuration: its removal from each node it was placed on is pending from here on,
        still billing the configuration for its last bytes, and its nodes need a push. Return
        the configurations as they were (their ``previous_psk_ref`` is for the caller to
        delete: no node is given that key again)."""
        with self.transaction():
            ending = self.rotations_ending(now)
            self._pend_removals(
                (node, c.previous_public_key, c.name)
                for c in ending
                if c.previous_public_key is not None
                for node in c.nodes
            )
            self.db.executemany(
                "UPDATE configurations SET previous_public_key = NULL, previous_psk_ref = NULL, "
                "previous_key_expires = NULL WHERE name = ?",
                [(c.name,) for c in ending],
            )
            self.bump_nodes(n for c in ending for n in c.nodes)
        return ending
