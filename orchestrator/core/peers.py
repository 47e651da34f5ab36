"""Pure rules for configurations: naming, tunnel address allocation, client configs, and
what each node should hold."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


class PoolExhausted(ValueError):
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


def desired_peers(
    node: str, configurations: Iterable[Configuration], now: int | None = None
) -> list[DesiredPeer]:
    """What a node must hold: every enabled configuration placed on it, nothing else.

    A replaced key whose grace has not ended (``now`` in unix seconds; None: never ended)
    is held too, sharing the address with its successor.
    """
    peers = []
    for c in configurations:
        if not c.enabled or node not in c.addresses:
            continue
        # From the integer, not from text: a push of a 10,000-peer node builds 10,000.
        network = ipaddress.IPv4Network((int(c.addresses[node]), 32))
        previous = c.previous_public_key
        in_grace = previous is not None and (
            now is None or c.previous_key_expires is None or now < c.previous_key_expires
        )
        if in_grace and previous is not None:
            peers.append(DesiredPeer(previous, network, c.previous_psk_ref))
            peers.append(DesiredPeer(c.public_key, network, c.psk_ref, takes_over_from=previous))
        else:
            peers.append(DesiredPeer(c.public_key, network, c.psk_ref))
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
) -> PeerDelta | None:
    """The peers of ``node`` that a change of configurations moved from ``before`` to
    ``after`` (a configuration missing from ``after`` was removed; from ``before``, added).

    None when a delta cannot say it exactly: a touched configuration is rotating its key (a
    handover is the node's to resolve, from the whole set). ``now`` as for `desired_peers`.
    """
    before, after = list(before), list(after)
    if any(c.previous_public_key is not None for c in (*before, *after)):
        return None
    was = {p.public_key: p for p in desired_peers(node, before, now)}
    will = {p.public_key: p for p in desired_peers(node, after, now)}
    hold = tuple(p for key, p in will.items() if was.get(key) != p)
    return PeerDelta(hold, tuple(sorted(set(was) - set(will))))


def render_client_config(
    *,
    private_key: str,
    address: ipaddress.IPv4Address,
    node: Node,
    preshared_key: str | None,
    dns: str | None = None,
    allowed_ips: str = "0.0.0.0/0",
) -> str:
    """The wg-quick file a user imports: shown once, never stored by wgfleet."""
    if node.issued_key is None:
        raise ValueError(f"node {node.name} has no public key yet: deploy it first")
    lines = ["[Interface]", f"PrivateKey = {private_key}", f"Address = {address}/32"]
    if dns:
        lines.append(f"DNS = {dns}")
    lines += ["", "[Peer]", f"PublicKey = {node.issued_key}"]
    if preshared_key:
        lines.append(f"PresharedKey = {preshared_key}")
    lines += [f"Endpoint = {node.address}:{node.issued_port}", f"AllowedIPs = {allowed_ips}"]
    return "\n".join(lines) + "\n"


def changed_nodes(before: Mapping[str, object], after: Mapping[str, object]) -> set[str]:
    return {n for n in set(before) | set(after) if before.get(n) != after.get(n)}
