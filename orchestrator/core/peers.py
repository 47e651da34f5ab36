"""Pure rules for configurations: naming, tunnel address allocation, client configs, and
what each node should hold."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestrator.core.addressing import TunnelNetworks
from orchestrator.core.errors import Exhausted, NotReady
from orchestrator.core.models import Configuration, Node

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


# 32 bytes in standard base64: 43 characters, the last of which carries only 4 bits, then '='.
KEY_RE = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


def valid_key(text: str) -> bool:
    """A WireGuard key (public, private or preshared) as wg(8) prints it."""
    return KEY_RE.fullmatch(text) is not None


def next_name(account: str, taken: Iterable[str]) -> str:
    """``<account>-<n>`` with the smallest n not taken."""
    used = set(taken)
    n = 1
    while f"{account}-{n}" in used:
        n += 1
    return f"{account}-{n}"


class PoolExhausted(Exhausted):
    pass


def allocate_address(
    pool: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Address]
) -> ipaddress.IPv4Address:
    """The lowest free host address of a node's pool; .1 is the node's own."""
    used = set(taken) | {pool[1]}
    for address in pool.hosts():
        if address not in used:
            return address
    raise PoolExhausted(f"tunnel pool {pool} is full")


@dataclass(frozen=True)
class DesiredPeer:
    public_key: str
    allowed_ip: ipaddress.IPv4Network  # the configuration's /32 on this node
    psk_ref: str | None
    # Set on a rotated configuration's new key while the replaced key is in grace: the node
    # gives the address to the new key once the client uses it, until then to this old one.
    takes_over_from: str | None = None
    # The configuration's /128 on this node, derived from its /32 (None: the node has no /64).
    allowed_ip6: ipaddress.IPv6Network | None = None

    @property
    def allowed_ips(self) -> str:
        """The addresses as the push protocol sends them: ``/32[,/128]``."""
        if self.allowed_ip6 is None:
            return str(self.allowed_ip)
        return f"{self.allowed_ip},{self.allowed_ip6}"


def desired_peers(
    node: str,
    configurations: Iterable[Configuration],
    now: int | None = None,
    tunnels: TunnelNetworks | None = None,
) -> list[DesiredPeer]:
    """What a node must hold: every enabled configuration placed on it, nothing else.

    A replaced key whose grace has not ended (``now`` in unix seconds; None: never ended)
    is held too, sharing the address with its successor. ``tunnels``: the node's networks;
    with an IPv6 /64 each peer also holds its derived /128.
    """
    peers = []
    with6 = tunnels is not None and tunnels.ipv6 is not None
    for c in configurations:
        if not c.enabled or node not in c.addresses:
            continue
        # From the integer, not from text: a push of a 10,000-peer node builds 10,000.
        network = ipaddress.IPv4Network((int(c.addresses[node]), 32))
        network6 = tunnels.host6(c.addresses[node]) if with6 and tunnels is not None else None
        previous = c.previous_public_key
        in_grace = previous is not None and (
            now is None or c.previous_key_expires is None or now < c.previous_key_expires
        )
        if in_grace and previous is not None:
            peers.append(DesiredPeer(previous, network, c.previous_psk_ref, None, network6))
            peers.append(DesiredPeer(c.public_key, network, c.psk_ref, previous, network6))
        else:
            peers.append(DesiredPeer(c.public_key, network, c.psk_ref, None, network6))
    return sorted(peers, key=lambda p: p.public_key)


@dataclass(frozen=True)
class PeerDelta:
    """What one change asks of a node that already holds the state just before it."""

    hold: tuple[DesiredPeer, ...]  # to be on the node with exactly these values
    drop: tuple[str, ...]  # public keys to be gone from it

    @property
    def empty(self) -> bool:
        return not self.hold and not self.drop


def peer_delta(
    node: str,
    before: Iterable[Configuration],
    after: Iterable[Configuration],
    now: int | None = None,
    tunnels: TunnelNetworks | None = None,
) -> PeerDelta | None:
    """The peers of ``node`` that a change of configurations moved from ``before`` to
    ``after`` (a configuration missing from ``after`` was removed; from ``before``, added).

    None when a delta cannot say it exactly: a touched configuration is rotating its key (a
    handover is the node's to resolve, from the whole set). ``now`` as for `desired_peers`.
    """
    before, after = list(before), list(after)
    if any(c.previous_public_key is not None for c in (*before, *after)):
        return None
    was = {p.public_key: p for p in desired_peers(node, before, now, tunnels)}
    will = {p.public_key: p for p in desired_peers(node, after, now, tunnels)}
    hold = tuple(p for key, p in will.items() if was.get(key) != p)
    return PeerDelta(hold, tuple(sorted(set(was) - set(will))))


FULL_TUNNEL = ("0.0.0.0/0", "::/0")


def client_dns(node: Node, servers: Sequence[str] = ()) -> list[str]:
    """The DNS servers a client config names: the fleet's own choice, else the node's tunnel
    addresses (where the node's resolver listens), IPv4 then IPv6."""
    if servers:
        return list(servers)
    own6 = node.node_tunnel_address6
    return [str(node.node_tunnel_address), *([str(own6)] if own6 is not None else [])]


def split_tunnel_problem(text: str) -> str | None:
    """Why ``text`` (comma-separated networks) cannot be a configuration's split tunnel."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or not all(parts):
        return "a comma-separated list of networks, e.g. 198.18.0.0/16,2001:2::/48"
    if len(parts) > 64:
        return "at most 64 networks"
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=True)
        except ValueError as exc:
            return str(exc)
    return None


def canonical_split_tunnel(text: str) -> str:
    """The networks of a valid split tunnel, canonical, sorted IPv4 first, no duplicates."""
    networks = {ipaddress.ip_network(p.strip(), strict=True) for p in text.split(",")}
    return ",".join(str(n) for n in sorted(networks, key=lambda n: (n.version, n)))


def _routing_lines(
    address: ipaddress.IPv4Address,
    node: Node,
    dns_servers: Sequence[str],
    split_tunnel: str | None,
) -> tuple[str, str, str]:
    """The Address, DNS and AllowedIPs lines of a client config on ``node``."""
    tunnels = TunnelNetworks(node.tunnel_network, node.tunnel_network6)
    own = [f"{address}/32"]
    address6 = tunnels.address6(address)
    if address6 is not None:
        own.append(f"{address6}/128")
    allowed = split_tunnel.split(",") if split_tunnel else list(FULL_TUNNEL)
    return (
        f"Address = {', '.join(own)}",
        f"DNS = {', '.join(client_dns(node, dns_servers))}",
        f"AllowedIPs = {', '.join(allowed)}",
    )


def render_client_config(
    *,
    private_key: str,
    address: ipaddress.IPv4Address,
    node: Node,
    preshared_key: str | None,
    dns_servers: Sequence[str] = (),
    split_tunnel: str | None = None,
) -> str:
    """The wg-quick file a user imports: shown once, never stored by wgfleet. Every client
    config wgfleet hands out is made here.

    It leaks nothing by default: IPv4 and IPv6 both go into the tunnel (``0.0.0.0/0, ::/0``,
    even when the node has no IPv6 egress: IPv6 is then dropped there rather than sent
    beside the tunnel), and DNS goes to ``client_dns``. ``split_tunnel`` (the
    configuration's explicit choice, see `split_tunnel_problem`) routes only those networks.
    """
    if node.issued_key is None:
        raise NotReady(f"node {node.name} has no public key yet: deploy it first")
    address_line, dns_line, allowed_line = _routing_lines(address, node, dns_servers, split_tunnel)
    lines = ["[Interface]", f"PrivateKey = {private_key}", address_line, dns_line]
    lines += ["", "[Peer]", f"PublicKey = {node.issued_key}"]
    if preshared_key:
        lines.append(f"PresharedKey = {preshared_key}")
    lines += [f"Endpoint = {node.endpoint}", allowed_line]
    return "\n".join(lines) + "\n"


def routing_lines(
    config: Configuration, nodes: Mapping[str, Node], dns_servers: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Per node, the Address, DNS and AllowedIPs lines the configuration's client config
    carries: what `peers show` prints, so a client config made before IPv6 and DNS can be
    brought up to date by hand (the private key never needs to change)."""
    return {
        name: list(_routing_lines(address, nodes[name], dns_servers, config.split_tunnel))
        for name, address in sorted(config.addresses.items())
        if name in nodes
    }


def changed_nodes(before: Mapping[str, object], after: Mapping[str, object]) -> set[str]:
    return {n for n in set(before) | set(after) if before.get(n) != after.get(n)}
