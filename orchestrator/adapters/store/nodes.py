"""The fleet's nodes (table ``nodes``): their addresses, WireGuard keys and rotations, the
revision each needs and was last pushed, the health of their last push, sync and audit;
and the controller's own SSH keys (``controller_keys``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from orchestrator.adapters.store.base import StoreBase, stored_date
from orchestrator.core.models import Node
from orchestrator.errors import NotFound, StoreError


class NodesStore(StoreBase):
    """Nodes, their keys and revisions, and the controller's SSH keys."""

    _NODE_COLUMNS = (
        "name, address, tunnel_network, listen_port, interface, public_key, key_created_on, "
        "next_public_key, next_listen_port, next_key_expires, next_key_created_on, "
        "(SELECT network FROM node_networks6 WHERE node_networks6.node = nodes.name), "
        "client_host"
    )

    def _node(self, row: tuple[Any, ...]) -> Node:
        return Node(
            name=row[0],
            address=row[1],
            tunnel_network=ipaddress.IPv4Network(row[2]),
            listen_port=int(row[3]),
            interface=row[4],
            public_key=row[5],
            key_created_on=stored_date(row[6]),
            next_public_key=row[7],
            next_listen_port=None if row[8] is None else int(row[8]),
            next_key_expires=None if row[9] is None else int(row[9]),
            next_key_created_on=stored_date(row[10]),
            tunnel_network6=None if row[11] is None else ipaddress.IPv6Network(str(row[11])),
            endpoint_host=row[12],
        )

    def upsert_node(self, node: Node) -> None:
        row = {
            "name": node.name,
            "address": node.address,
            "tunnel_network": str(node.tunnel_network),
            "listen_port": node.listen_port,
            "interface": node.interface,
            "public_key": node.public_key,
            "key_created_on": node.key_created_on,
        }
        # A node given without its key (None) keeps the key the store has.
        self._upsert("nodes", "name", row, keep_if_none=("public_key", "key_created_on"))

    def set_endpoint_hosts(self, hosts: Mapping[str, str | None]) -> None:
        """The host each node's client Endpoint names (None: its address)."""
        with self.transaction():
            self.db.executemany(
                "UPDATE nodes SET client_host = ? WHERE name = ?",
                [(host, name) for name, host in sorted(hosts.items())],
            )

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

    def set_listen_port(self, name: str, port: int) -> None:
        """A node's port as a fleet file declares it (the deploy that follows moves it there)."""
        with self.transaction():
            self.node(name)
            self.db.execute("UPDATE nodes SET listen_port = ? WHERE name = ?", (port, name))
            self.bump_nodes([name])

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

    def cancel_node_rotation(self, name: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE nodes SET next_public_key = NULL, next_listen_port = NULL, "
                "next_key_expires = NULL, next_key_created_on = NULL WHERE name = ?",
                (name,),
            )

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

    def node_health(self) -> dict[str, tuple[bool | None, bool | None]]:
        """name -> (last push ok, last sync ok); None until the first attempt."""
        return {
            r[0]: (None if r[1] is None else bool(r[1]), None if r[2] is None else bool(r[2]))
            for r in self._rows("SELECT name, last_push_ok, last_sync_ok FROM nodes")
        }

    def controller_keys(self) -> dict[str, tuple[str, date]]:
        """purpose -> (public key, created on) for the controller's own SSH keys."""
        return {
            r[0]: (r[1], stored_date(r[2]) or date.min)
            for r in self._rows("SELECT purpose, public_key, created_on FROM controller_keys")
        }

    def record_controller_key(self, purpose: str, public_key: str, created_on: date) -> None:
        row = {"purpose": purpose, "public_key": public_key, "created_on": created_on}
        self._upsert("controller_keys", "purpose", row)
