"""The fleet's IPv6 tunnel prefix (``tunnel_prefixes``) and each node's /64 in it
(``node_networks6``), drawn once and kept for the node's life."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable

from orchestrator.adapters.store.base import StoreBase
from orchestrator.core.addressing import PrefixExhausted, allocate_node_network, random_ula_prefix
from orchestrator.errors import StoreError


class NetworksStore(StoreBase):
    """The IPv6 prefix and the nodes' /64s."""

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
