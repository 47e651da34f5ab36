"""Nodes' SSH host keys: which nodes a run may reach, and pinning a key on the operator's word.

Every connection trusts exactly the fleet's pins (adapters/pins.py). A node with no pin (a first
contact) or with a changed key is refused by every command, naming it and the fingerprints;
``trust_node`` is the only way a key gets pinned, and only if its fingerprint is the one the
operator checked on the node's console.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from orchestrator.adapters import ssh
from orchestrator.adapters.pins import KnownHostsPins
from orchestrator.core.inventory import HostKey, key_fingerprint, known_host_name
from orchestrator.errors import NodeError, UsageError
from orchestrator.service.context import Fleet, writes
from orchestrator.settings import Settings


def pin_store(settings: Settings) -> KnownHostsPins:
    return KnownHostsPins(settings.ssh.known_hosts)


def _target(settings: Settings, node: str) -> ssh.Target:
    from orchestrator.service.deploy import inventory_path, root_targets

    targets = [t for t in root_targets(settings, None) if t.name == node]
    if not targets:
        raise UsageError(f"no node {node!r} in {inventory_path(settings)}")
    return targets[0]


def offered_host_key(fleet: Fleet, node: str) -> HostKey:
    """The host key the node offers now, read without trusting or authenticating anything."""
    target = _target(fleet.settings, node)
    key_type, key_base64 = ssh.offered_host_key(target)
    return HostKey((node, known_host_name(target.address, target.port)), key_type, key_base64)


def pinned_fingerprints(fleet: Fleet, node: str) -> list[str]:
    """The fingerprints pinned for the node now (empty: none, or no pin file yet)."""
    target = _target(fleet.settings, node)
    try:
        pins = pin_store(fleet.settings).lookup(known_host_name(target.address, target.port))
    except FileNotFoundError:
        return []
    return [pin.fingerprint for pin in pins]


@writes
def trust_node(fleet: Fleet, node: str, fingerprint: str) -> tuple[str | None, str]:
    """Pin the key the node offers now, if its fingerprint is the one the operator confirmed;
    every earlier pin of the node's names goes. Returns (the replaced fingerprint, the new)."""
    settings = fleet.settings
    fleet.record(f"trust {node}'s host key {fingerprint}")
    offered = offered_host_key(fleet, node)
    new = key_fingerprint(offered.key_base64)
    if fingerprint != new:
        raise UsageError(f"{node} offers {new}, not {fingerprint}: nothing changed")
    removed = pin_store(settings).pin(offered.names, offered)
    return (", ".join(sorted({p.fingerprint for p in removed})) or None), new


def refused_nodes(targets: Iterable[ssh.Target], workers: int = 16) -> dict[str, NodeError]:
    """The nodes a run must leave out, each with its reason: a host key that is not pinned (or
    differs from the pin), or no answer. A key exchange each, no login, all at once."""

    def one(target: ssh.Target) -> tuple[str, NodeError | None]:
        try:
            ssh.check_host_key(target)
        except NodeError as exc:
            return target.name, exc
        return target.name, None

    targets = list(targets)
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(targets))) as pool:
        return {name: error for name, error in pool.map(one, targets) if error is not None}
