"""Customers' accounts (``accounts``): adding, finding, deleting one with everything it
holds, exporting every row the store holds about one, and erasing contact numbers."""

from __future__ import annotations

from datetime import date
from typing import Any

from orchestrator.adapters.store.configurations import ConfigurationsStore
from orchestrator.adapters.store.migrations import MigrationsStore
from orchestrator.core.accounting import OVERLAP_PREFIX
from orchestrator.core.models import Account, Configuration
from orchestrator.errors import NotFound, StoreError

# Tables holding an account's rows and how a row is tied to it ("account": the accounts row
# itself; else the column naming its configuration). node_counters holds the last-seen counters
# of its keys inside per-node text. Every other table is named in NOT_ACCOUNT_DATA; a test
# fails when a table is in neither, so a new table cannot escape `accounts export`.
ACCOUNT_TABLES = {
    "accounts": "account",
    "configurations": "account_id",
    "configuration_nodes": "configuration_id",
    "usage_totals": "configuration_id",
    "topups": "configuration_id",
    "pending_removals": "configuration_id",
}
NOT_ACCOUNT_DATA = {
    "nodes": "the fleet's nodes",
    "plans": "the provider's plans",
    "policies": "fleet-wide policies",
    "node_daily_totals": "bytes per node and day, never per user",
    "node_leases": "which run syncs a node",
    "store_totals": "one used-bytes total for the whole store",
    "controller_keys": "the controller's own SSH keys",
    "schema_migrations": "the store's schema version",
    "node_counters": "exported per key with the account (last-seen counters)",
    "notifications": "events in transit to the operator's hook, deleted once delivered",
    "tunnel_prefixes": "the fleet's IPv6 tunnel prefix",
    "node_networks6": "each node's IPv6 tunnel /64",
    "operations": "the controllers' writing runs, naming no account",
    "api_tokens": "the HTTP API's tokens (a hash each), the provider's backends' and no user's",
    "sealed_secrets": "preshared keys, sealed: secrets of the tunnel, erased with their "
    "configuration and never exported",
    "fleet_key": "the id of the fleet key that seals them (not the key)",
    "controllers": "the fleet's controllers and their public SSH keys, naming no user",
    "shared_files": "pinned host keys, deploy fingerprints, node settings: no user's",
}
_INTERNAL_COLUMNS = {"id", "account_id", "configuration_id"}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


class AccountsStore(ConfigurationsStore, MigrationsStore):
    """Accounts, and the export of everything the store holds about one."""

    def add_account(self, account: Account) -> None:
        with self.transaction():
            if self._one("SELECT 1 FROM accounts WHERE username = ?", (account.username,)):
                raise StoreError(f"account {account.username!r} already exists")
            self.db.execute(
                "INSERT INTO accounts (username, password_hash, device_id, contact) "
                "VALUES (?, ?, ?, ?)",
                (account.username, account.password_hash, account.device_id, account.contact),
            )

    def accounts(self, search: str | None = None) -> list[Account]:
        sql = "SELECT username, password_hash, device_id, contact FROM accounts"
        params: tuple[Any, ...] = ()
        if search:
            sql += " WHERE username LIKE ?"
            params = (f"%{search}%",)
        return [Account(*r) for r in self._rows(sql + " ORDER BY username", params)]

    def account(self, username: str) -> Account:
        row = self._one(
            "SELECT username, password_hash, device_id, contact FROM accounts WHERE username = ?",
            (username,),
        )
        if row is None:
            raise NotFound(f"no account {username!r}")
        return Account(*row)

    def update_account(self, username: str, device_id: str, contact: str | None) -> None:
        with self.transaction():
            self.account(username)
            self.db.execute(
                "UPDATE accounts SET device_id = ?, contact = ? WHERE username = ?",
                (device_id, contact, username),
            )

    def delete_account(self, username: str) -> list[Configuration]:
        """Erase the account, its configurations and usage; top-ups stay, unlinked."""
        with self.transaction():
            self.account(username)
            removed = self.configurations(account=username)
            # Unlinked from the account when its rows go (no username is kept with them).
            self._pend_removals(self._placed_keys(removed))
            self.bump_nodes(n for c in removed for n in c.nodes)
            self._add_used(
                -self._used_by(
                    "c.account_id = (SELECT id FROM accounts WHERE username = ?)", (username,)
                )
            )
            self._forget_keys(self._keys_of(removed))
            self._drop_notifications_about(c.name for c in removed)
            self.db.execute("DELETE FROM accounts WHERE username = ?", (username,))
        return removed

    def account_records(self, username: str) -> dict[str, list[dict[str, Any]]]:
        """Every row the store holds about an account, table by table, each with all of its
        columns but the internal ids (a new column is exported without a change here), plus
        the last-seen counters of its keys. Raises NotFound for an unknown account."""
        self.account(username)
        columns = self.columns()
        records: dict[str, list[dict[str, Any]]] = {}
        for table, link in ACCOUNT_TABLES.items():
            names = [c for c in columns[table] if c not in _INTERNAL_COLUMNS]
            selected = ", ".join(f"t.{c}" for c in names)
            if link == "account":
                sql = f"SELECT {selected} FROM {table} t WHERE t.username = ?"
            elif link == "account_id":
                sql = (
                    f"SELECT {selected} FROM {table} t JOIN accounts a ON a.id = t.account_id "
                    "WHERE a.username = ?"
                )
            else:
                names = ["configuration", *names]
                sql = (
                    f"SELECT c.name, {selected} FROM {table} t JOIN configurations c "
                    f"ON c.id = t.{link} JOIN accounts a ON a.id = c.account_id "
                    "WHERE a.username = ?"
                )
            records[table] = [
                {name: _plain(value) for name, value in zip(names, row, strict=True)}
                for row in self._rows(sql + " ORDER BY 1, 2", (username,))
            ]
        keys = {
            key
            for row in records["configurations"]
            for key in (row.get("public_key"), row.get("previous_public_key"))
            if key
        }
        records["node_counters"] = [
            {"node": node, "public_key": key, "epoch": e, "rx_bytes": rx, "tx_bytes": tx}
            for node, seen in sorted(self.last_seen_of(self._counter_nodes()).items())
            for key, (e, rx, tx) in sorted(seen.items())
            if key.removeprefix(OVERLAP_PREFIX) in keys
        ]
        return records

    def erase_contacts(self) -> int:
        """Erase every account's contact number (the privacy profile keeps none)."""
        with self.transaction():
            count = self._one("SELECT count(*) FROM accounts WHERE contact IS NOT NULL")
            self.db.execute("UPDATE accounts SET contact = NULL WHERE contact IS NOT NULL")
        return int(count[0]) if count else 0
