"""Configurations (``configurations``) and where they are placed (``configuration_nodes``:
a node and a tunnel address each): adding, reading, enabling, moving and removing them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Iterable
from datetime import date
from typing import Any

from orchestrator.adapters.store.base import VALUES_PER_STATEMENT, stored_date
from orchestrator.adapters.store.billing import BillingStore
from orchestrator.adapters.store.nodes import NodesStore
from orchestrator.adapters.store.removals import RemovalsStore
from orchestrator.adapters.store.usage import UsageStore
from orchestrator.core.models import Configuration, DisabledReason
from orchestrator.errors import NotFound, StoreError


def _address(text: str) -> ipaddress.IPv4Address:
    """A tunnel address as the store wrote it (``str(IPv4Address)``): parsed in C, because a
    fleet's 100,000 placements are read on every sync."""
    return ipaddress.IPv4Address(int.from_bytes(socket.inet_aton(text), "big"))


class ConfigurationsStore(RemovalsStore, UsageStore, NodesStore, BillingStore):
    """Configurations and their placements."""

    _CONFIG_SELECT = (
        "SELECT c.id, c.name, a.username, c.public_key, c.psk_ref, c.plan, c.quota_bytes, "
        "c.enabled, c.disabled_reason, c.key_created_on, c.psk_created_on, "
        "c.previous_public_key, c.previous_psk_ref, c.previous_key_expires, c.valid_until, "
        "c.split_tunnel "
        "FROM configurations c "
        "JOIN accounts a ON a.id = c.account_id"
    )

    def add_configuration(self, config: Configuration) -> None:
        with self.transaction():
            account = self._one("SELECT id FROM accounts WHERE username = ?", (config.account,))
            if account is None:
                raise NotFound(f"no account {config.account!r}")
            if self._one("SELECT 1 FROM configurations WHERE name = ?", (config.name,)):
                raise StoreError(f"configuration {config.name!r} already exists")
            self._refuse_known_key(config.public_key)
            values = {
                "name": config.name,
                "account_id": account[0],
                "public_key": config.public_key,
                "psk_ref": config.psk_ref,
                "plan": config.plan,
                "quota_bytes": config.quota_bytes,
                "enabled": config.enabled,
                "disabled_reason": config.disabled_reason.value if config.disabled_reason else None,
                "key_created_on": config.key_created_on,
                "psk_created_on": config.psk_created_on,
                "valid_until": config.valid_until,
            }
            if config.split_tunnel is not None:  # (tests seed stores from before schema 13)
                values["split_tunnel"] = config.split_tunnel
            self.db.execute(
                f"INSERT INTO configurations ({', '.join(values)}) "
                f"VALUES ({', '.join('?' for _ in values)})",
                list(values.values()),
            )
            row = self._one("SELECT id FROM configurations WHERE name = ?", (config.name,))
            assert row is not None
            self._set_addresses(int(row[0]), config.addresses)
            self.bump_nodes(config.addresses)

    def _set_addresses(self, config_id: int, addresses: dict[str, ipaddress.IPv4Address]) -> None:
        for node, address in addresses.items():
            if self._one("SELECT 1 FROM nodes WHERE name = ?", (node,)) is None:
                raise NotFound(f"no node {node!r} in the store")
            taken = self._one(
                "SELECT 1 FROM configuration_nodes WHERE node = ? AND tunnel_address = ?",
                (node, str(address)),
            )
            if taken:
                raise StoreError(f"tunnel address {address} is already taken on {node}")
            self.db.execute(
                "INSERT INTO configuration_nodes (configuration_id, node, tunnel_address) "
                "VALUES (?, ?, ?)",
                (config_id, node, str(address)),
            )

    def _configs_from_rows(
        self, rows: list[tuple[Any, ...]], *, every: bool = False, placements: bool = True
    ) -> list[Configuration]:
        """``every``: the rows are all configurations, so all placements are read in one go."""
        if not rows:
            return []
        addresses: dict[int, dict[str, ipaddress.IPv4Address]] = {}
        placement_sql = "SELECT configuration_id, node, tunnel_address FROM configuration_nodes"
        if not placements:
            batches = []
        elif every:
            batches = [self._rows(placement_sql)]
        else:
            batches = [
                self._rows(f"{placement_sql} WHERE configuration_id IN ({marks})", chunk)
                for chunk, marks in self._in_chunks(int(r[0]) for r in rows)
            ]
        for batch in batches:
            for cid, node, address in batch:
                addresses.setdefault(int(cid), {})[node] = _address(address)
        return [
            Configuration(
                name=r[1],
                account=r[2],
                public_key=r[3],
                psk_ref=r[4],
                plan=r[5],
                quota_bytes=None if r[6] is None else int(r[6]),
                enabled=bool(r[7]),
                disabled_reason=DisabledReason(r[8]) if r[8] else None,
                key_created_on=stored_date(r[9]),
                psk_created_on=stored_date(r[10]),
                previous_public_key=r[11],
                previous_psk_ref=r[12],
                previous_key_expires=None if r[13] is None else int(r[13]),
                valid_until=stored_date(r[14]),
                split_tunnel=r[15],
                addresses=dict(sorted(addresses.get(int(r[0]), {}).items())),
            )
            for r in rows
        ]

    def configurations(
        self,
        *,
        account: str | None = None,
        node: str | None = None,
        enabled: bool | None = None,
        on_nodes: Collection[str] | None = None,
        placements: bool = True,
        names: Collection[str] | None = None,
    ) -> list[Configuration]:
        """``on_nodes``: those placed on any of these nodes (with all their placements);
        ``placements=False`` leaves ``addresses`` empty, for callers that only need quotas;
        ``names``: only these."""
        where: list[str] = []
        params: list[Any] = []
        if names is not None:
            if len(names) > VALUES_PER_STATEMENT:
                found: list[Configuration] = []
                for chunk, _ in self._in_chunks(names):
                    found += self.configurations(
                        account=account,
                        node=node,
                        enabled=enabled,
                        on_nodes=on_nodes,
                        placements=placements,
                        names=chunk,
                    )
                return sorted(found, key=lambda c: c.name)
            where.append(f"c.name IN ({', '.join('?' for _ in names) or 'NULL'})")
            params.extend(names)
        if on_nodes is not None:
            marks = ", ".join("?" for _ in on_nodes) or "NULL"
            where.append(
                "c.id IN (SELECT configuration_id FROM configuration_nodes "
                f"WHERE node IN ({marks}))"
            )
            params.extend(on_nodes)
        if account is not None:
            where.append("a.username = ?")
            params.append(account)
        if node is not None:
            where.append(
                "c.id IN (SELECT configuration_id FROM configuration_nodes WHERE node = ?)"
            )
            params.append(node)
        if enabled is not None:
            where.append("c.enabled = ?")
            params.append(enabled)
        sql = (
            self._CONFIG_SELECT
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY c.name"
        )
        return self._configs_from_rows(
            self._rows(sql, params), every=not where, placements=placements
        )

    def configuration(self, name: str) -> Configuration:
        rows = self._rows(self._CONFIG_SELECT + " WHERE c.name = ?", (name,))
        if not rows:
            raise NotFound(f"no configuration {name!r}")
        return self._configs_from_rows(rows)[0]

    def configuration_names(self, prefix: str) -> set[str]:
        return {
            r[0]
            for r in self._rows(
                "SELECT name FROM configurations WHERE name LIKE ?", (f"{prefix}%",)
            )
        }

    def configuration_plans(self, names: Collection[str] | None = None) -> dict[str, str | None]:
        """name -> plan, of every configuration or of ``names`` only."""
        if names is None:
            return {r[0]: r[1] for r in self._rows("SELECT name, plan FROM configurations")}
        plans: dict[str, str | None] = {}
        for chunk, marks in self._in_chunks(names):
            sql = f"SELECT name, plan FROM configurations WHERE name IN ({marks})"
            plans.update((r[0], r[1]) for r in self._rows(sql, chunk))
        return plans

    def taken_addresses(self, node: str) -> set[ipaddress.IPv4Address]:
        return {
            ipaddress.IPv4Address(r[0])
            for r in self._rows(
                "SELECT tunnel_address FROM configuration_nodes WHERE node = ?", (node,)
            )
        }

    def configuration_counts(self) -> dict[str, int]:
        """username -> how many configurations the account has, counted by the database."""
        rows = self._rows(
            "SELECT a.username, COUNT(*) FROM configurations c "
            "JOIN accounts a ON a.id = c.account_id GROUP BY a.username"
        )
        return {str(username): int(count) for username, count in rows}

    def placement_counts(self) -> dict[str, int]:
        """node -> how many configurations are placed on it, counted by the database."""
        rows = self._rows("SELECT node, COUNT(*) FROM configuration_nodes GROUP BY node")
        return {str(node): int(count) for node, count in rows}

    def placements_of(self, nodes: Collection[str]) -> dict[str, list[int]]:
        """node -> row ids of the configurations placed on it (one text per node: a sync of
        1,000 nodes reads 1,000 rows, not 100,000)."""
        wanted = set(nodes)
        if not wanted:
            return {}
        if self.db.dialect == "sqlite":
            sql = "SELECT node, group_concat(configuration_id, ',') FROM configuration_nodes"
        else:
            sql = "SELECT node, string_agg(configuration_id::text, ',') FROM configuration_nodes"
        if len(wanted) == 1:
            rows = self._rows(sql + " WHERE node = ? GROUP BY node", [*wanted])
        elif self.db.dialect == "postgresql":
            rows = self._rows(sql + " WHERE node = ANY(?) GROUP BY node", [sorted(wanted)])
        else:
            rows = self._rows(sql + " GROUP BY node")
        return {
            node: list(map(int, str(text).split(",")))
            for node, text in rows
            if node in wanted and text
        }

    def set_valid_until(self, name: str, until: date | None) -> None:
        with self.transaction():
            self.configuration(name)
            self.db.execute(
                "UPDATE configurations SET valid_until = ? WHERE name = ?", (until, name)
            )

    def hold_configurations(self, names: Collection[str]) -> None:
        """Inside a transaction: no other writer changes these configurations until it ends.
        A decision read after this (a sync's cut-off, a top-up's re-enable) stays true until
        it is written. SQLite's transactions hold the write lock from their start already;
        PostgreSQL locks the rows, in one order for every writer (no deadlock between two)."""
        if self.db.dialect != "postgresql" or not names:
            return
        for part, marks in self._in_chunks(names):
            self.db.execute(
                f"SELECT id FROM configurations WHERE name IN ({marks}) ORDER BY id FOR UPDATE",
                part,
            )

    def set_enabled(
        self, names: Iterable[str], enabled: bool, reason: DisabledReason | None
    ) -> list[Configuration]:
        """Enable or disable configurations; return those whose state changed."""
        wanted = list(dict.fromkeys(names))
        with self.transaction():
            # One read and one write for the lot: disabling 1,000 is one statement, not 4,000.
            found = {c.name: c for c in self.configurations(names=wanted)}
            missing = [n for n in wanted if n not in found]
            if missing:
                raise NotFound(f"no configuration {missing[0]!r}")
            changed = [
                found[n]
                for n in wanted
                if (found[n].enabled, found[n].disabled_reason) != (enabled, reason)
            ]
            self.db.executemany(
                "UPDATE configurations SET enabled = ?, disabled_reason = ? WHERE name = ?",
                [(enabled, reason.value if reason else None, c.name) for c in changed],
            )
            if enabled:
                self._cancel_removals((n, c.public_key) for c in changed for n in c.nodes)
            else:
                self._pend_removals(self._placed_keys(changed))
            self.bump_nodes(n for c in changed for n in c.nodes)
        return changed

    def update_configuration(
        self,
        name: str,
        *,
        plan: str | None,
        quota_bytes: int | None,
        addresses: dict[str, ipaddress.IPv4Address],
    ) -> Configuration:
        """Set plan, quota and the nodes (with their addresses) a configuration is on."""
        with self.transaction():
            current = self.configuration(name)
            row = self._one("SELECT id FROM configurations WHERE name = ?", (name,))
            assert row is not None
            if plan is not None:
                self.plan(plan)
            self.db.execute(
                "UPDATE configurations SET plan = ?, quota_bytes = ? WHERE name = ?",
                (plan, quota_bytes, name),
            )
            gone = [n for n in current.addresses if n not in addresses]
            self._pend_removals(
                (node, key, name) for node, key, _ in self._placed_keys([current]) if node in gone
            )
            self._cancel_removals(
                (node, key)
                for node in addresses
                if node not in current.addresses
                for key in self._keys_of([current])
            )
            for node in gone:
                self.db.execute(
                    "DELETE FROM configuration_nodes WHERE configuration_id = ? AND node = ?",
                    (row[0], node),
                )
            self._set_addresses(
                int(row[0]), {n: a for n, a in addresses.items() if n not in current.addresses}
            )
            self.bump_nodes(set(current.nodes) | set(addresses))
            return self.configuration(name)

    def remove_configurations(self, names: Iterable[str]) -> list[Configuration]:
        removed = []
        with self.transaction():
            for name in names:
                current = self.configuration(name)
                self._pend_removals(self._placed_keys([current]))
                self._add_used(-self._used_by("c.name = ?", (name,)))
                self._forget_keys(self._keys_of([current]))
                self._drop_notifications_about([name])
                self.db.execute("DELETE FROM configurations WHERE name = ?", (name,))
                self.bump_nodes(current.nodes)
                removed.append(current)
        return removed

    def _refuse_known_key(self, public_key: str) -> None:
        if self._one(
            "SELECT 1 FROM configurations WHERE public_key = ? OR previous_public_key = ?",
            (public_key, public_key),
        ):
            raise StoreError("a configuration with this public key already exists")
