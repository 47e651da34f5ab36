"""IPv6 tunnel addressing: the fleet's ULA /48, one /64 per node, and each configuration's
/128 derived from its IPv4 address on that node.

A configuration's IPv6 address is not stored: it sits at the same host offset inside the
node's /64 as its IPv4 address inside the node's IPv4 tunnel network (198.19.1.7 on a node
with 198.19.1.0/24 and fd00:198:19:1::/64 is fd00:198:19:1::7). So it follows the IPv4
address through every key rotation, and a store that gains IPv6 gives every existing
configuration its address without a row per configuration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.core.errors import Exhausted, InvalidInput

# RFC 4193 unique local addresses with the L bit set: fd00::/8, a 40-bit random Global ID.
ULA_LOCAL = ipaddress.IPv6Network("fd00::/8")
# What a fleet may set instead: unique local (fc00::/7), or the provider's own global unicast
# /48 (2000::/3), which egress `routed` needs to reach the internet without NAT.
ALLOWED_PREFIXES = (ipaddress.IPv6Network("fc00::/7"), ipaddress.IPv6Network("2000::/3"))
FLEET_PREFIX_LENGTH = 48
NODE_PREFIX_LENGTH = 64
# The lab's tunnel prefix (../shared/LAB.md: lab tunnels only in fd00:198:19::/48).
LAB_PREFIX = ipaddress.IPv6Network("fd00:198:19::/48")


class PrefixExhausted(Exhausted):
    pass


def random_ula_prefix(global_id: bytes) -> ipaddress.IPv6Network:
    """The /48 RFC 4193 makes of a 40-bit random Global ID (the caller draws the 5 bytes)."""
    if len(global_id) != 5:
        raise InvalidInput("an RFC 4193 Global ID is 40 bits (5 bytes)")
    value = (0xFD << 120) | (int.from_bytes(global_id, "big") << 80)
    return ipaddress.IPv6Network((value, FLEET_PREFIX_LENGTH))


def prefix_problem(text: object) -> str | None:
    """Why ``text`` cannot be a fleet's IPv6 tunnel prefix (None: it can)."""
    try:
        network = ipaddress.ip_network(str(text), strict=True)
    except ValueError as exc:
        return str(exc)
    if not isinstance(network, ipaddress.IPv6Network):
        return "not an IPv6 network"
    if network.prefixlen != FLEET_PREFIX_LENGTH:
        return f"a /{FLEET_PREFIX_LENGTH} is needed (one /64 per node inside it)"
    if not any(network.subnet_of(allowed) for allowed in ALLOWED_PREFIXES):
        return "neither unique local (fc00::/7) nor global unicast (2000::/3)"
    return None


def parse_prefix(text: object) -> ipaddress.IPv6Network:
    problem = prefix_problem(text)
    if problem is not None:
        raise InvalidInput(problem)
    return ipaddress.IPv6Network(str(text))


def allocate_node_network(
    prefix: ipaddress.IPv6Network, taken: Iterable[ipaddress.IPv6Network]
) -> ipaddress.IPv6Network:
    """The first free /64 of the fleet's /48; the /48's first /64 (subnet 0) is left for the
    provider's own use, so nodes start at prefix:1::/64."""
    used = {int(n.network_address) for n in taken}
    step = 1 << (128 - NODE_PREFIX_LENGTH)
    base = int(prefix.network_address)
    for index in range(1, 1 << (NODE_PREFIX_LENGTH - prefix.prefixlen)):
        candidate = base + index * step
        if candidate not in used:
            return ipaddress.IPv6Network((candidate, NODE_PREFIX_LENGTH))
    raise PrefixExhausted(f"IPv6 tunnel prefix {prefix} has no free /64")


@dataclass(frozen=True)
class TunnelNetworks:
    """A node's tunnel networks: its IPv4 pool and, once it has one, its IPv6 /64."""

    ipv4: ipaddress.IPv4Network
    ipv6: ipaddress.IPv6Network | None = None

    def address6(self, address: ipaddress.IPv4Address) -> ipaddress.IPv6Address | None:
        """The IPv6 address at ``address``'s host offset. None when the node has no /64, or
        for an address outside the node's IPv4 pool (a node whose push an operator widened to
        a larger network, see peers_tunnel_networks_ipv4): such a peer stays IPv4-only rather
        than take an address that is not its own."""
        if self.ipv6 is None:
            return None
        offset = int(address) - int(self.ipv4.network_address)
        if not 0 <= offset < self.ipv4.num_addresses:
            return None
        return ipaddress.IPv6Address(int(self.ipv6.network_address) + offset)

    def host6(self, address: ipaddress.IPv4Address) -> ipaddress.IPv6Network | None:
        """``address6`` as the /128 a peer holds."""
        found = self.address6(address)
        return None if found is None else ipaddress.IPv6Network((int(found), 128))

    @property
    def own6(self) -> ipaddress.IPv6Address | None:
        """The node's own IPv6 tunnel address: ::1 of its /64 (beside .1 in IPv4)."""
        return None if self.ipv6 is None else self.ipv6[1]
