"""The quota store over SQL: one implementation, two engines (SQLite, PostgreSQL).

Queries are written once with ``?`` placeholders; the PostgreSQL connection turns them into
``%s``. Every method that writes runs inside :meth:`SqlStore.transaction` (its own when the
caller holds none), so a command either lands whole or not at all.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple, Protocol

from orchestrator.adapters.store.schema import (
    IPV6_MIGRATION,
    LATEST_VERSION,
    MIGRATIONS,
    statements_for,
)
from orchestrator.core.accounting import (
    OVERLAP_PREFIX,
    LastSeen,
    PeerCounters,
    decode_counters,
    encode_counters,
)
from orchestrator.core.addressing import PrefixExhausted, allocate_node_network, random_ula_prefix
from orchestrator.core.models import (
    Account,
    Configuration,
    DisabledReason,
    Node,
    Plan,
    ResetRule,
    TopUp,
    UsageTotal,
)
from orchestrator.core.redaction import redact_url
from orchestrator.errors import NotFound, StoreError


class Connection(Protocol):
    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def scrub(self) -> bool: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


def _address(text: str) -> ipaddress.IPv4Address:
    """A tunnel address as the store wrote it (``str(IPv4Address)``): parsed in C, because a
    fleet's 100,000 placements are read on every sync."""
    return ipaddress.IPv4Address(int.from_bytes(socket.inet_aton(text), "big"))


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


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


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
}
_INTERNAL_COLUMNS = {"id", "account_id", "configuration_id"}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@dataclass(frozen=True)
class SyncLedger:
    """What a sync reads once, as columns with one entry per configuration, and who owns each
    key as an entry number (no dictionary per configuration to build)."""

    owners: dict[str, int]  # public key (current, replaced and in grace, leaving) -> entry
    names: list[str]  # entry -> configuration
    ids: list[int]  # entry -> its row id
    plan_of: list[str | None]  # entry -> plan name
    # Keys a configuration owns only while their removal is pending on some nodes (a replaced
    # key whose grace ended): believed on those nodes only, not wherever it is placed.
    leaving: frozenset[str] = frozenset()


class RowUsage(NamedTuple):
    """Bytes to add as columns: configuration row id, billing period, rx, tx (each id and
    period together once)."""

    ids: list[int]
    periods: list[date]
    rx: list[int]
    tx: list[int]


@dataclass(frozen=True)
class RunningTotals:
    """What ``usage check`` compares: kept with each change vs recomputed from the rows."""

    granted: dict[str, int]  # configuration -> bytes granted by its top-ups
    used: int  # bytes in every usage row of the store


class SqlStore:
    """The fleet's desired state and its only usage data."""

    def __init__(self, connection: Connection, url: str) -> None:
        self.db = connection
        self.url = url
        self._depth = 0
        # Nodes whose revision the open transaction has moved: once is enough (see bump_nodes).
        self._bumped: set[str] = set()

    # --- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[SqlStore]:
        """All writes inside land together or not at all; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.db.begin()
        self._depth = 1
        self._bumped = set()
        try:
            yield self
        except BaseException:
            self._depth = 0
            self.db.rollback()
            raise
        self._depth = 0
        self.db.commit()

    def scrub(self) -> bool:
        """Make erased rows unrecoverable from the store's files: True when done.

        SQLite overwrites deleted content (secure_delete), but in WAL mode the page images
        that still held it stay in the main file until a checkpoint and in the -wal file until
        it is truncated. A reader holding an old snapshot (the TUI, `sync --every`) blocks
        that: False then, and `wgfleet db scrub` finishes it later. PostgreSQL keeps dead rows
        until VACUUM; its own WAL and backups are the server operator's to expire.
        """
        return self.db.scrub()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.db.execute(sql, params)
        return rows[0] if rows else None

    # --- schema ------------------------------------------------------------------------------

    def _has_table(self, name: str) -> bool:
        if self.db.dialect == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = (
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = ?"
            )
        return self._one(sql, (name,)) is not None

    def schema_version(self) -> int:
        if not self._has_table("schema_migrations"):
            return 0
        row = self._one("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    def upgrade(
        self, up_to: int | None = None, ipv6_prefix: ipaddress.IPv6Network | None = None
    ) -> list[int]:
        """Apply every migration newer than the store (up to ``up_to``, for tests of a
        migration's data step); return the versions applied. ``ipv6_prefix``: the fleet's
        IPv6 tunnel prefix when this upgrade creates it (None: a random RFC 4193 /48)."""
        with self.transaction():
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL)"
            )
            current = self.schema_version()
            applied = []
            for migration in MIGRATIONS:
                if migration.version <= current or (
                    up_to is not None and migration.version > up_to
                ):
                    continue
                for statement in statements_for(migration, self.db.dialect):
                    self.db.execute(statement)
                if migration.version == IPV6_MIGRATION:
                    self._first_ipv6_prefix(ipv6_prefix)
                self.db.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                    (migration.version, migration.description),
                )
                applied.append(migration.version)
        return applied

    def require_current(self) -> None:
        version = self.schema_version()
        if version != LATEST_VERSION:
            raise StoreError(
                f"store {redact_url(self.url)} is at schema version {version}, this wgfleet needs "
                f"{LATEST_VERSION}: run `wgfleet db upgrade`"
            )

    def columns(self) -> dict[str, list[str]]:
        """Every table and its columns, read from the live database."""
        if self.db.dialect == "sqlite":
            tables = [
                r[0] for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            return {
                t: [r[1] for r in self._rows(f"PRAGMA table_info({t})")]
                for t in tables
                if not t.startswith("sqlite_")
            }
        rows = self._rows(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        found: dict[str, list[str]] = {}
        for table, column in rows:
            found.setdefault(table, []).append(column)
        return found

    # --- nodes -------------------------------------------------------------------------------

    def upsert_node(self, node: Node) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO nodes (name, address, tunnel_network, listen_port, interface, "
                "public_key, key_created_on) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET address = excluded.address, "
                "tunnel_network = excluded.tunnel_network, listen_port = excluded.listen_port, "
                "interface = excluded.interface, "
                "public_key = COALESCE(excluded.public_key, nodes.public_key), "
                "key_created_on = COALESCE(excluded.key_created_on, nodes.key_created_on)",
                (
                    node.name,
                    node.address,
                    str(node.tunnel_network),
                    node.listen_port,
                    node.interface,
                    node.public_key,
                    node.key_created_on,
                ),
            )

    def _first_ipv6_prefix(self, chosen: ipaddress.IPv6Network | None) -> None:
        """The fleet's IPv6 prefix, drawn once (RFC 4193: 40 random bits) unless chosen, and
        a /64 for every node already in the store (by name), so every configuration has its
        IPv6 address from the migration on."""
        prefix = chosen or random_ula_prefix(os.urandom(5))
        self.db.execute(
            "INSERT INTO tunnel_prefixes (family, prefix) VALUES ('ipv6', ?)", (str(prefix),)
        )
        names = [str(r[0]) for r in self._rows("SELECT name FROM nodes ORDER BY name")]
        self.node_networks6(names)

    def ipv6_prefix(self) -> ipaddress.IPv6Network:
        row = self._one("SELECT prefix FROM tunnel_prefixes WHERE family = 'ipv6'")
        if row is None:
            raise StoreError("the store has no IPv6 tunnel prefix: run `wgfleet db upgrade`")
        return ipaddress.IPv6Network(str(row[0]))

    def set_ipv6_prefix(self, prefix: ipaddress.IPv6Network) -> None:
        """Change the fleet's prefix: only while no node has a /64 (it would strand them)."""
        with self.transaction():
            if prefix == self.ipv6_prefix():
                return
            count = self.count_networks6()
            if count:
                raise StoreError(
                    f"ipv6 prefix {prefix}: {count} node(s) already have a /64 in "
                    f"{self.ipv6_prefix()}; the prefix cannot change under them"
                )
            self.db.execute(
                "UPDATE tunnel_prefixes SET prefix = ? WHERE family = 'ipv6'", (str(prefix),)
            )

    def node_networks6(self, names: Iterable[str]) -> dict[str, ipaddress.IPv6Network]:
        """Each named node's IPv6 tunnel /64, giving the first free one of the fleet's prefix
        to a node that has none yet (kept for the node's life)."""
        with self.transaction():
            known = {
                str(r[0]): ipaddress.IPv6Network(str(r[1]))
                for r in self._rows("SELECT node, network FROM node_networks6")
            }
            wanted = sorted(set(names))
            prefix = self.ipv6_prefix() if any(n not in known for n in wanted) else None
            for name in wanted:
                if name in known or prefix is None:
                    continue
                try:
                    network = allocate_node_network(prefix, known.values())
                except PrefixExhausted as exc:
                    raise StoreError(str(exc)) from None
                self.db.execute(
                    "INSERT INTO node_networks6 (node, network) VALUES (?, ?)",
                    (name, str(network)),
                )
                known[name] = network
            return {name: known[name] for name in wanted}

    def count_networks6(self) -> int:
        row = self._one("SELECT COUNT(*) FROM node_networks6")
        return int(row[0]) if row else 0

    def set_endpoint_hosts(self, hosts: Mapping[str, str | None]) -> None:
        """The host each node's client Endpoint names (None: its address)."""
        with self.transaction():
            self.db.executemany(
                "UPDATE nodes SET client_host = ? WHERE name = ?",
                [(host, name) for name, host in sorted(hosts.items())],
            )

    def _node(self, row: tuple[Any, ...]) -> Node:
        return Node(
            name=row[0],
            address=row[1],
            tunnel_network=ipaddress.IPv4Network(row[2]),
            listen_port=int(row[3]),
            interface=row[4],
            public_key=row[5],
            key_created_on=_date(row[6]),
            next_public_key=row[7],
            next_listen_port=None if row[8] is None else int(row[8]),
            next_key_expires=None if row[9] is None else int(row[9]),
            next_key_created_on=_date(row[10]),
            tunnel_network6=None if row[11] is None else ipaddress.IPv6Network(str(row[11])),
            endpoint_host=row[12],
        )

    _NODE_COLUMNS = (
        "name, address, tunnel_network, listen_port, interface, public_key, key_created_on, "
        "next_public_key, next_listen_port, next_key_expires, next_key_created_on, "
        "(SELECT network FROM node_networks6 WHERE node_networks6.node = nodes.name), "
        "client_host"
    )

    def set_node_key(self, name: str, public_key: str, created_on: date) -> None:
        """The node's current key changed (read back from the node): clients need new configs."""
        with self.transaction():
            self.node(name)
            self.db.execute(
                "UPDATE nodes SET public_key = ?, key_created_on = ? WHERE name = ?",
                (public_key, created_on, name),
            )

    def begin_node_rotation(
        self, name: str, next_public_key: str, port: int, expires: int, created_on: date
    ) -> None:
        with self.transaction():
            self.node(name)
            self.db.execute(
                "UPDATE nodes SET next_public_key = ?, next_listen_port = ?, "
                "next_key_expires = ?, next_key_created_on = ? WHERE name = ?",
                (next_public_key, port, expires, created_on, name),
            )

    def finish_node_rotation(self, name: str) -> Node:
        """The next key and port become the node's own; the overlap is over."""
        with self.transaction():
            node = self.node(name)
            if node.next_public_key is None or node.next_listen_port is None:
                raise StoreError(f"node {name!r} has no key rotation in progress")
            self.db.execute(
                "UPDATE nodes SET public_key = next_public_key, listen_port = next_listen_port, "
                "key_created_on = next_key_created_on, next_public_key = NULL, "
                "next_listen_port = NULL, next_key_expires = NULL, next_key_created_on = NULL "
                "WHERE name = ?",
                (name,),
            )
            return self.node(name)

    def mark_audited(self, verdicts: dict[str, bool]) -> list[str]:
        """Each audited node's verdict (passed every check or not); unknown names are skipped.
        Return the nodes that newly failed."""
        with self.transaction():
            before = dict(self._rows("SELECT name, last_audit_ok FROM nodes"))
            self.db.executemany(
                "UPDATE nodes SET last_audit_ok = ? WHERE name = ?",
                [(ok, name) for name, ok in verdicts.items()],
            )
        return sorted(
            name
            for name, ok in verdicts.items()
            if not ok and name in before and before[name] is not False and before[name] != 0
        )

    def node_audits(self) -> dict[str, bool | None]:
        return {
            r[0]: None if r[1] is None else bool(r[1])
            for r in self._rows("SELECT name, last_audit_ok FROM nodes")
        }

    def cancel_node_rotation(self, name: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE nodes SET next_public_key = NULL, next_listen_port = NULL, "
                "next_key_expires = NULL, next_key_created_on = NULL WHERE name = ?",
                (name,),
            )

    def forget_counters(self, node: str, key_prefix: str) -> None:
        """Drop last-seen rows of peers that are gone for good (an overlap interface's)."""
        with self.transaction():
            seen = self.last_seen(node)
            kept = {k: v for k, v in seen.items() if not k.startswith(key_prefix)}
            if kept != seen:
                self._write_last_seen({node: kept})

    # --- the controller's SSH keys -----------------------------------------------------------

    def controller_keys(self) -> dict[str, tuple[str, date]]:
        """purpose -> (public key, created on) for the controller's own SSH keys."""
        return {
            r[0]: (r[1], _date(r[2]) or date.min)
            for r in self._rows("SELECT purpose, public_key, created_on FROM controller_keys")
        }

    def record_controller_key(self, purpose: str, public_key: str, created_on: date) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO controller_keys (purpose, public_key, created_on) VALUES (?, ?, ?) "
                "ON CONFLICT (purpose) DO UPDATE SET public_key = excluded.public_key, "
                "created_on = excluded.created_on",
                (purpose, public_key, created_on),
            )

    def set_listen_port(self, name: str, port: int) -> None:
        """A node's port as a fleet file declares it (the deploy that follows moves it there)."""
        with self.transaction():
            self.node(name)
            self.db.execute("UPDATE nodes SET listen_port = ? WHERE name = ?", (port, name))
            self.bump_nodes([name])

    def policies(self) -> dict[str, str]:
        """Fleet-wide policies applied from a fleet file: dotted name -> JSON value."""
        return {str(r[0]): str(r[1]) for r in self._rows("SELECT name, value FROM policies")}

    def replace_policies(self, policies: dict[str, str]) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM policies")
            self.db.executemany(
                "INSERT INTO policies (name, value) VALUES (?, ?)", sorted(policies.items())
            )

    def add_node_daily(self, day: date, node_bytes: dict[str, int]) -> None:
        """Add bytes to each node's total for ``day`` (the privacy profile allows it)."""
        with self.transaction():
            for node, count in sorted(node_bytes.items()):
                if count <= 0:
                    continue
                self.db.execute(
                    "INSERT INTO node_daily_totals (node, day, bytes) VALUES (?, ?, ?) "
                    "ON CONFLICT (node, day) DO UPDATE SET bytes = node_daily_totals.bytes + "
                    "excluded.bytes",
                    (node, day, count),
                )

    def node_daily(self, since: date) -> dict[str, list[tuple[date, int]]]:
        rows = self._rows(
            "SELECT node, day, bytes FROM node_daily_totals WHERE day >= ? ORDER BY node, day",
            (since,),
        )
        found: dict[str, list[tuple[date, int]]] = {}
        for node, day, count in rows:
            parsed = _date(day)
            assert parsed is not None
            found.setdefault(str(node), []).append((parsed, int(count)))
        return found

    def erase_node_daily(self, before: date | None) -> int:
        """Erase daily node totals older than ``before`` (all of them when None)."""
        with self.transaction():
            where, params = ("WHERE day < ?", (before,)) if before else ("", ())
            count = self._one(f"SELECT COUNT(*) FROM node_daily_totals {where}", params)
            self.db.execute(f"DELETE FROM node_daily_totals {where}", params)
        return int(count[0]) if count else 0

    def nodes(self) -> list[Node]:
        return [
            self._node(r)
            for r in self._rows(f"SELECT {self._NODE_COLUMNS} FROM nodes ORDER BY name")
        ]

    def node(self, name: str) -> Node:
        row = self._one(f"SELECT {self._NODE_COLUMNS} FROM nodes WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no node {name!r} in the store")
        return self._node(row)

    def bump_nodes(self, names: Iterable[str]) -> None:
        """Record that the desired state of these nodes changed and needs a push.

        A node moves once per transaction however many of its writes call this, so a push can
        tell a node that holds the revision just before one transaction (see
        `service.push.record_change`) and send it only what that transaction changed.
        """
        with self.transaction():
            fresh = sorted(set(names) - self._bumped)  # one lock order for concurrent writers
            self.db.executemany(
                "UPDATE nodes SET revision = revision + 1 WHERE name = ?", [(n,) for n in fresh]
            )
            self._bumped.update(fresh)

    def node_revisions(self) -> dict[str, tuple[int, int]]:
        """name -> (desired revision, revision last pushed successfully)."""
        return {
            r[0]: (int(r[1]), int(r[2]))
            for r in self._rows("SELECT name, revision, pushed_revision FROM nodes")
        }

    def mark_pushed(self, name: str, revision: int, ok: bool) -> None:
        with self.transaction():
            if ok:
                self.db.execute(
                    "UPDATE nodes SET pushed_revision = ?, last_push_ok = ? WHERE name = ?",
                    (revision, True, name),
                )
            else:
                self.db.execute("UPDATE nodes SET last_push_ok = ? WHERE name = ?", (False, name))

    # --- leases ------------------------------------------------------------------------------

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

    # --- plans -------------------------------------------------------------------------------

    def upsert_plan(self, plan: Plan) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO plans (name, quota_bytes, reset, anchor_day, price, validity_days, "
                "valid_until) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET quota_bytes = excluded.quota_bytes, "
                "reset = excluded.reset, anchor_day = excluded.anchor_day, price = excluded.price, "
                "validity_days = excluded.validity_days, valid_until = excluded.valid_until",
                (
                    plan.name,
                    plan.quota_bytes,
                    plan.reset.value,
                    plan.anchor_day,
                    plan.price,
                    plan.validity_days,
                    plan.valid_until,
                ),
            )

    def remove_plan(self, name: str) -> None:
        with self.transaction():
            self.plan(name)
            users = self._rows("SELECT name FROM configurations WHERE plan = ?", (name,))
            if users:
                raise StoreError(
                    f"plan {name!r} is used by {', '.join(sorted(r[0] for r in users))}"
                )
            self.db.execute("DELETE FROM plans WHERE name = ?", (name,))

    def plans(self) -> list[Plan]:
        return [
            Plan(
                r[0],
                int(r[1]),
                ResetRule(r[2]),
                int(r[3]),
                r[4],
                None if r[5] is None else int(r[5]),
                _date(r[6]),
            )
            for r in self._rows(
                "SELECT name, quota_bytes, reset, anchor_day, price, validity_days, valid_until "
                "FROM plans ORDER BY name"
            )
        ]

    def plan(self, name: str) -> Plan:
        for plan in self.plans():
            if plan.name == name:
                return plan
        raise NotFound(f"no plan {name!r} in the store")

    # --- accounts ----------------------------------------------------------------------------

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

    # --- configurations ----------------------------------------------------------------------

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
            ids = [int(r[0]) for r in rows]
            batches = []
            for chunk_start in range(0, len(ids), 500):
                chunk = ids[chunk_start : chunk_start + 500]
                marks = ", ".join("?" for _ in chunk)
                batches.append(
                    self._rows(f"{placement_sql} WHERE configuration_id IN ({marks})", chunk)
                )
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
                key_created_on=_date(r[9]),
                psk_created_on=_date(r[10]),
                previous_public_key=r[11],
                previous_psk_ref=r[12],
                previous_key_expires=None if r[13] is None else int(r[13]),
                valid_until=_date(r[14]),
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
            if len(names) > 500:  # parameter lists stay short: 500 names a statement
                ordered = sorted(names)
                found: list[Configuration] = []
                for first in range(0, len(ordered), 500):
                    found += self.configurations(
                        account=account,
                        node=node,
                        enabled=enabled,
                        on_nodes=on_nodes,
                        placements=placements,
                        names=ordered[first : first + 500],
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

    def set_valid_until(self, name: str, until: date | None) -> None:
        with self.transaction():
            self.configuration(name)
            self.db.execute(
                "UPDATE configurations SET valid_until = ? WHERE name = ?", (until, name)
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

    def taken_addresses(self, node: str) -> set[ipaddress.IPv4Address]:
        return {
            ipaddress.IPv4Address(r[0])
            for r in self._rows(
                "SELECT tunnel_address FROM configuration_nodes WHERE node = ?", (node,)
            )
        }

    def configuration_names(self, prefix: str) -> set[str]:
        return {
            r[0]
            for r in self._rows(
                "SELECT name FROM configurations WHERE name LIKE ?", (f"{prefix}%",)
            )
        }

    # --- pending removals: no access outlives its revocation ---------------------------------
    #
    # Every change that takes a key off a node (disable, cut-off, expiry, removal, deletion, a
    # replaced key's grace ending, a node dropped from a configuration) records the pair in the
    # same transaction; a push that the node applied confirms it. Until then the key is known
    # to be on the node: a sync believes its counters there (billing its configuration, if it
    # still has one) and pushes the node again.

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

    def used_total(self) -> int:
        """The used-bytes running total of the whole store."""
        row = self._one("SELECT bytes FROM store_totals WHERE name = 'used_bytes'")
        return int(row[0]) if row else 0

    # --- top-ups and usage -------------------------------------------------------------------

    def add_topup(self, topup: TopUp) -> tuple[TopUp, bool]:
        """Record a top-up once per invoice; return (the stored top-up, whether it is new)."""
        with self.transaction():
            existing = self.topup(topup.invoice)
            if existing is not None:
                return existing, False
            config_id = None
            if topup.configuration is not None:
                row = self._one(
                    "SELECT id FROM configurations WHERE name = ?", (topup.configuration,)
                )
                if row is None:
                    raise NotFound(f"no configuration {topup.configuration!r}")
                config_id = row[0]
            if config_id is not None:
                self.db.execute(
                    "UPDATE configurations SET granted_bytes = granted_bytes + ? WHERE id = ?",
                    (topup.bytes_granted, config_id),
                )
            self.db.execute(
                "INSERT INTO topups "
                "(invoice, configuration_id, amount, bytes_granted, purchased_on) "
                "VALUES (?, ?, ?, ?, ?)",
                (topup.invoice, config_id, topup.amount, topup.bytes_granted, topup.purchased_on),
            )
        return topup, True

    _TOPUP_SELECT = (
        "SELECT t.invoice, c.name, t.amount, t.bytes_granted, t.purchased_on FROM topups t "
        "LEFT JOIN configurations c ON c.id = t.configuration_id"
    )

    def topup(self, invoice: str) -> TopUp | None:
        row = self._one(self._TOPUP_SELECT + " WHERE t.invoice = ?", (invoice,))
        return (
            None
            if row is None
            else TopUp(row[0], row[1], row[2], int(row[3]), _date(row[4]) or date.min)
        )

    def topups(self, configuration: str | None = None) -> list[TopUp]:
        sql, params = self._TOPUP_SELECT, tuple[Any, ...]()
        if configuration is not None:
            sql, params = sql + " WHERE c.name = ?", (configuration,)
        return [
            TopUp(r[0], r[1], r[2], int(r[3]), _date(r[4]) or date.min)
            for r in self._rows(sql + " ORDER BY t.purchased_on, t.invoice", params)
        ]

    # --- notifications -----------------------------------------------------------------------

    def queue_notifications(self, events: Iterable[tuple[str, str]]) -> None:
        """(kind, subject) events, queued in the caller's transaction with what caused them."""
        rows = list(events)
        if rows:
            with self.transaction():
                self.db.executemany("INSERT INTO notifications (kind, subject) VALUES (?, ?)", rows)

    def pending_notifications(self) -> list[tuple[int, str, str]]:
        return [
            (int(r[0]), r[1], r[2])
            for r in self._rows("SELECT id, kind, subject FROM notifications ORDER BY id")
        ]

    def _drop_notifications_about(self, subjects: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM notifications WHERE subject = ?", [(s,) for s in subjects])

    def drop_notification(self, event_id: int) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM notifications WHERE id = ?", (event_id,))

    def mark_warned(self, periods: Mapping[str, date]) -> list[str]:
        """Note the period each configuration was warned for; return those not yet warned in
        it (a warning is sent once per billing period and crossing)."""
        fresh = []
        with self.transaction():
            current = {
                r[0]: _date(r[1])
                for r in self._rows("SELECT name, warned_period FROM configurations")
                if r[0] in periods
            }
            for name, period in sorted(periods.items()):
                if name in current and current[name] != period:
                    fresh.append(name)
            self.db.executemany(
                "UPDATE configurations SET warned_period = ? WHERE name = ?",
                [(periods[n], n) for n in fresh],
            )
        return fresh

    def clear_warned(self, keep: Collection[str]) -> None:
        """Forget the warning of configurations back under the threshold (a top-up), so the
        next crossing warns again."""
        with self.transaction():
            warned = [
                r[0]
                for r in self._rows(
                    "SELECT name FROM configurations WHERE warned_period IS NOT NULL"
                )
                if r[0] not in keep
            ]
            self.db.executemany(
                "UPDATE configurations SET warned_period = NULL WHERE name = ?",
                [(n,) for n in warned],
            )

    def erase_topups(self, invoices: Iterable[str]) -> int:
        """Erase top-up transactions past the profile's retention; granted totals drop them."""
        wanted = sorted(set(invoices))
        if not wanted:
            return 0
        with self.transaction():
            rows = [
                r
                for r in self._rows("SELECT invoice, configuration_id, bytes_granted FROM topups")
                if r[0] in set(wanted)
            ]
            self.db.executemany(
                "UPDATE configurations SET granted_bytes = granted_bytes - ? WHERE id = ?",
                [(int(r[2]), r[1]) for r in rows if r[1] is not None],
            )
            self.db.executemany("DELETE FROM topups WHERE invoice = ?", [(r[0],) for r in rows])
        return len(rows)

    def erase_contacts(self) -> int:
        """Erase every account's contact number (the privacy profile keeps none)."""
        with self.transaction():
            count = self._one("SELECT count(*) FROM accounts WHERE contact IS NOT NULL")
            self.db.execute("UPDATE accounts SET contact = NULL WHERE contact IS NOT NULL")
        return int(count[0]) if count else 0

    def add_usage(self, configuration: str, period_start: date, rx: int, tx: int) -> None:
        if rx < 0 or tx < 0:
            raise StoreError(f"negative usage for {configuration}: rx {rx}, tx {tx}")
        with self.transaction():
            row = self._one("SELECT id FROM configurations WHERE name = ?", (configuration,))
            if row is None:
                raise NotFound(f"no configuration {configuration!r}")
            self.db.execute(
                "INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, tx_bytes) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (configuration_id, period_start) DO UPDATE SET "
                "rx_bytes = usage_totals.rx_bytes + excluded.rx_bytes, "
                "tx_bytes = usage_totals.tx_bytes + excluded.tx_bytes",
                (row[0], period_start, rx, tx),
            )
            self._add_used(rx + tx)

    def usage(self, configuration: str | None = None) -> list[UsageTotal]:
        sql = (
            "SELECT c.name, u.period_start, u.rx_bytes, u.tx_bytes FROM usage_totals u "
            "JOIN configurations c ON c.id = u.configuration_id"
        )
        params: tuple[Any, ...] = ()
        if configuration is not None:
            sql, params = sql + " WHERE c.name = ?", (configuration,)
        return [
            UsageTotal(r[0], _date(r[1]) or date.min, int(r[2]), int(r[3]))
            for r in self._rows(sql + " ORDER BY c.name, u.period_start", params)
        ]

    # --- counters (sync) ---------------------------------------------------------------------

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

    @staticmethod
    def _keys_of(configurations: Iterable[Configuration]) -> list[str]:
        return [
            key
            for c in configurations
            for key in (c.public_key, c.previous_public_key)
            if key is not None
        ]

    def configuration_plans(self) -> dict[str, str | None]:
        return {r[0]: r[1] for r in self._rows("SELECT name, plan FROM configurations")}

    def sync_ledger(self) -> SyncLedger:
        """Who owns which key, each configuration's id and plan: what a sync reads once.

        Fetched as one text (five tab-separated fields per configuration) rather than one row
        per configuration: 100,000 rows cost more to fetch than to use. Names, keys or plans
        holding a tab, which the service never lets in, would not split evenly: they are
        then read row by row."""
        agg, line = (
            ("group_concat", "printf") if self.db.dialect == "sqlite" else ("string_agg", "format")
        )
        # printf/format render a NULL as nothing: no previous key, no plan ("+" marks one).
        row = self._one(
            f"SELECT COUNT(*), {agg}({line}(?, id, name, public_key, previous_public_key, "
            "'+' || plan), ?) FROM configurations",
            ("\t".join(["%s"] * 5), "\t"),
        )
        count, text = (int(row[0]), row[1] or "") if row else (0, "")
        fields = text.split("\t") if count else []
        if len(fields) != 5 * count:
            return self._sync_ledger_by_rows()
        keys, previous, plans = fields[2::5], fields[3::5], fields[4::5]
        owners = dict(zip(keys, range(count), strict=True))
        if any(previous):
            owners.update((key, i) for i, key in enumerate(previous) if key)
        plan_names = {p: p[1:] if p else None for p in set(plans)}
        ids = list(map(int, fields[0::5]))
        leaving = self._own_pending_keys(owners, ids)
        return SyncLedger(
            owners, fields[1::5], ids, list(map(plan_names.__getitem__, plans)), leaving
        )

    def _own_pending_keys(self, owners: dict[str, int], ids: list[int]) -> frozenset[str]:
        """Keys on their way off nodes still bill their configuration (a replaced key whose
        grace ended, a disabled one): their last bytes count. Return those the configuration
        owns only that way."""
        rows = self._rows(
            "SELECT DISTINCT public_key, configuration_id FROM pending_removals "
            "WHERE configuration_id IS NOT NULL"
        )
        leaving = set()
        if rows:
            entry_of = dict(zip(ids, range(len(ids)), strict=True))
            for key, config_id in rows:
                entry = entry_of.get(int(config_id))
                if entry is not None and key not in owners:
                    owners[key] = entry
                    leaving.add(key)
        return frozenset(leaving)

    def _sync_ledger_by_rows(self) -> SyncLedger:
        rows = self._rows(
            "SELECT id, name, plan, public_key, previous_public_key FROM configurations"
        )
        owners = {r[3]: i for i, r in enumerate(rows)}
        owners.update((r[4], i) for i, r in enumerate(rows) if r[4] is not None)
        ids = [int(r[0]) for r in rows]
        leaving = self._own_pending_keys(owners, ids)
        return SyncLedger(owners, [r[1] for r in rows], ids, [r[2] for r in rows], leaving)

    def apply_accounting(
        self,
        usage: RowUsage,
        last_seen: Mapping[str, PeerCounters | Mapping[str, LastSeen]],
        synced: Collection[str] = (),
    ) -> None:
        """A run's accounting, landed together with the counters it was computed from.

        ``usage``: bytes to add as columns by configuration row id (from the run's ledger, read
        in this transaction), each with its billing period; ``last_seen``: each touched node's
        full last-seen counters; ``synced``: nodes that answered this sync. Set-based: the
        usage goes to the database as columns and lands with one statement, so 100,000
        counters cost no more round trips than 10. Usage of a configuration deleted meanwhile
        finds no row to land on and is dropped with it.
        """
        with self.transaction():
            if not len(usage.ids) == len(usage.periods) == len(usage.rx) == len(usage.tx):
                raise StoreError("a sync's usage columns differ in length")
            if usage.ids:
                if min(usage.rx) < 0 or min(usage.tx) < 0:
                    raise StoreError("negative usage in a sync's accounting")
                # Dates as ISO text, converted once per period rather than once per row.
                iso = {period: period.isoformat() for period in set(usage.periods)}
                self._merge_usage(
                    usage.ids, list(map(iso.__getitem__, usage.periods)), usage.rx, usage.tx
                )
            self._write_last_seen(last_seen)
            self.db.executemany(
                "UPDATE nodes SET last_sync_ok = ? WHERE name = ? "
                "AND (last_sync_ok IS NULL OR NOT last_sync_ok)",
                [(True, node) for node in sorted(synced)],
            )

    def mark_sync_failed(self, nodes: Iterable[str]) -> list[str]:
        """Note failed syncs; return the nodes that were not failing before (newly down)."""
        names = sorted(set(nodes))
        if not names:
            return []
        with self.transaction():
            before = dict(self._rows("SELECT name, last_sync_ok FROM nodes"))
            self.db.executemany(
                "UPDATE nodes SET last_sync_ok = ? WHERE name = ?", [(False, n) for n in names]
            )
        return [n for n in names if n in before and before[n] is not False and before[n] != 0]

    def _merge_usage(
        self, ids: list[int], periods: list[str], rxs: list[int], txs: list[int]
    ) -> None:
        """Add each (configuration id, period) its bytes in usage_totals, and their sum to the
        store's used bytes."""
        if self.db.dialect == "sqlite":
            # The run holds the write lock since its ledger was read: every id is live.
            self.db.executemany(
                "INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, tx_bytes) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (configuration_id, period_start) DO UPDATE SET "
                "rx_bytes = usage_totals.rx_bytes + excluded.rx_bytes, "
                "tx_bytes = usage_totals.tx_bytes + excluded.tx_bytes",
                zip(ids, periods, rxs, txs, strict=True),
            )
            self._add_used(sum(rxs) + sum(txs))
            return
        # One statement over four columns passed as text (split by the server in C). An
        # upsert's speculative insertion costs PostgreSQL a second row version per row; an
        # update through a hash join, then an insert of the rows it did not find, does not,
        # and usage_totals keeps half of each page free so the update stays HOT. Rows of a
        # configuration deleted by another run meanwhile find no configuration and are dropped.
        # For this transaction: no JIT compilation (it costs more than it saves on one
        # statement), and room for the hash joins to stay in memory.
        self.db.execute("SET LOCAL jit = off")
        self.db.execute("SET LOCAL work_mem = '64MB'")
        self.db.execute(
            "WITH r AS MATERIALIZED (SELECT * FROM unnest(string_to_array(?, ',')::bigint[], "
            "string_to_array(?, ',')::date[], string_to_array(?, ',')::bigint[], "
            "string_to_array(?, ',')::bigint[]) AS r (id, period_start, rx, tx)), "
            "updated AS (UPDATE usage_totals u SET rx_bytes = u.rx_bytes + r.rx, "
            "tx_bytes = u.tx_bytes + r.tx FROM r WHERE u.configuration_id = r.id "
            "AND u.period_start = r.period_start "
            "RETURNING u.configuration_id, u.period_start, r.rx + r.tx AS bytes), "
            # Rows the update did not find, looked for only when it did not find them all.
            "fresh AS MATERIALIZED (SELECT r.* FROM r JOIN configurations c ON c.id = r.id "
            "WHERE (SELECT COUNT(*) FROM updated) < (SELECT COUNT(*) FROM r) "
            "AND NOT EXISTS (SELECT 1 FROM updated d WHERE d.configuration_id = r.id "
            "AND d.period_start = r.period_start)), "
            "inserted AS (INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, "
            "tx_bytes) SELECT id, period_start, rx, tx FROM fresh "
            # Another run (a shard syncing another node of the same configuration) may insert
            # the same row meanwhile: add to it rather than fail.
            "ON CONFLICT (configuration_id, period_start) DO UPDATE SET "
            "rx_bytes = usage_totals.rx_bytes + excluded.rx_bytes, "
            "tx_bytes = usage_totals.tx_bytes + excluded.tx_bytes) "
            "UPDATE store_totals SET bytes = bytes + (SELECT COALESCE(SUM(bytes), 0) FROM updated) "
            "+ (SELECT COALESCE(SUM(rx + tx), 0) FROM fresh) WHERE name = 'used_bytes'",
            (
                ",".join(map(str, ids)),
                ",".join(periods),
                ",".join(map(str, rxs)),
                ",".join(map(str, txs)),
            ),
        )

    def _add_used(self, delta: int) -> None:
        self.db.execute(
            "UPDATE store_totals SET bytes = bytes + ? WHERE name = 'used_bytes'", (delta,)
        )

    def _used_by(self, where: str, params: Sequence[Any]) -> int:
        """Bytes held by the usage rows of the configurations ``where`` selects."""
        row = self._one(
            "SELECT COALESCE(SUM(u.rx_bytes + u.tx_bytes), 0) FROM usage_totals u "
            f"JOIN configurations c ON c.id = u.configuration_id WHERE {where}",
            params,
        )
        return int(row[0]) if row else 0

    def running_totals(self) -> RunningTotals:
        """Granted bytes per configuration and the store's used bytes, as kept with each
        change."""
        row = self._one("SELECT bytes FROM store_totals WHERE name = 'used_bytes'")
        return RunningTotals(
            {r[0]: int(r[1]) for r in self._rows("SELECT name, granted_bytes FROM configurations")},
            int(row[0]) if row else 0,
        )

    def recomputed_totals(self) -> RunningTotals:
        """The same totals recomputed from the top-up and usage rows.

        Summed here, not in SQL: a check must still work on a store whose totals outgrew 64
        bits (SQLite's SUM raises "integer overflow", PostgreSQL's bigint addition "out of
        range"), so that it can report them."""
        granted = {r[0]: 0 for r in self._rows("SELECT name FROM configurations")}
        for name, value in self._rows(
            "SELECT c.name, t.bytes_granted FROM topups t "
            "JOIN configurations c ON c.id = t.configuration_id"
        ):
            granted[name] += int(value)
        used = sum(
            int(rx) + int(tx)
            for rx, tx in self._rows("SELECT rx_bytes, tx_bytes FROM usage_totals")
        )
        return RunningTotals(granted, used)

    def erase_usage_before(self, cutoff: date, keep: date) -> int:
        """Erase usage periods that started before ``cutoff`` (never the ``keep`` sentinel
        period of quotas that do not reset); the running totals drop them too."""
        with self.transaction():
            rows = self._rows(
                "SELECT configuration_id, SUM(rx_bytes + tx_bytes) FROM usage_totals "
                "WHERE period_start < ? AND period_start <> ? GROUP BY configuration_id",
                (cutoff, keep),
            )
            if rows:
                self._add_used(-sum(int(total) for _, total in rows))
            self.db.execute(
                "DELETE FROM usage_totals WHERE period_start < ? AND period_start <> ?",
                (cutoff, keep),
            )
        return len(rows)

    # --- read models (TUI) -------------------------------------------------------------------

    def node_health(self) -> dict[str, tuple[bool | None, bool | None]]:
        """name -> (last push ok, last sync ok); None until the first attempt."""
        return {
            r[0]: (None if r[1] is None else bool(r[1]), None if r[2] is None else bool(r[2]))
            for r in self._rows("SELECT name, last_push_ok, last_sync_ok FROM nodes")
        }
