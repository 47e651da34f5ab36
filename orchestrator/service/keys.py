"""Key ages and the rotation of peer and preshared keys.

A configuration's identity (name, quota, usage, billing period, tunnel addresses) never depends
on its key: usage is kept per configuration, and a replaced key stays mapped to it until every
node has dropped it, so the bytes it carried up to its removal are counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from orchestrator.adapters import wgkeys
from orchestrator.core.keys import KeyAge, KeyKind, KeyPolicy, KeyRecord, key_ages
from orchestrator.core.models import Configuration
from orchestrator.core.peers import render_client_config
from orchestrator.errors import UsageError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.push import PushResult, push
from orchestrator.settings import KeySettings

SSH_PURPOSES = ("deploy", "collector", "push")


def key_policy(settings: KeySettings) -> KeyPolicy:
    return KeyPolicy(
        {
            KeyKind.NODE: settings.node_max_age_days,
            KeyKind.PEER: settings.peer_max_age_days,
            KeyKind.PSK: settings.psk_max_age_days,
            KeyKind.SSH: settings.ssh_max_age_days,
        }
    )


def ssh_key_paths(fleet: Fleet) -> dict[str, Path]:
    ssh = fleet.settings.ssh
    return {"deploy": ssh.deploy_key, "collector": ssh.collector_key, "push": ssh.push_key}


def _public_line(path: Path) -> str | None:
    try:
        return path.with_name(path.name + ".pub").read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None


def record_ssh_keys(fleet: Fleet, today: date) -> None:
    """Note the creation date of controller SSH keys the store has not seen yet.

    A key first seen here was made outside wgfleet (or before it kept dates): the date of its
    file stands in for its creation.
    """
    known = fleet.store.controller_keys()
    for purpose, path in ssh_key_paths(fleet).items():
        public = _public_line(path)
        if public is None:
            continue
        key = " ".join(public.split()[:2])
        if purpose in known and known[purpose][0] == key:
            continue
        made = date.fromtimestamp(path.stat().st_mtime) if path.exists() else today
        fleet.store.record_controller_key(purpose, key, min(made, today))


def key_records(fleet: Fleet, now: int | None = None) -> list[KeyRecord]:
    now = int(time.time()) if now is None else now
    records = []
    for node in fleet.store.nodes():
        if node.public_key is None:
            continue
        note = ""
        if node.next_public_key:
            note = f"rotation overlapping on port {node.next_listen_port}"
            if node.next_key_expires is not None:
                note += f" for {max(0, node.next_key_expires - now)} s more"
        records.append(
            KeyRecord(KeyKind.NODE, node.name, node.public_key, node.key_created_on, note)
        )
    for config in fleet.store.configurations():
        note = ""
        if config.previous_public_key and config.previous_key_expires is not None:
            left = max(0, config.previous_key_expires - now)
            note = f"previous key in grace for {left} s more"
        records.append(
            KeyRecord(KeyKind.PEER, config.name, config.public_key, config.key_created_on, note)
        )
        if config.psk_ref:
            records.append(
                KeyRecord(KeyKind.PSK, config.name, config.psk_ref, config.psk_created_on)
            )
    for purpose, (public, created) in sorted(fleet.store.controller_keys().items()):
        records.append(KeyRecord(KeyKind.SSH, purpose, public, created))
    return records


def key_status(
    fleet: Fleet, today: date | None = None, now: int | None = None, *, record: bool = True
) -> list[KeyAge]:
    """Every key the fleet uses with its age against the settings' maximum, overdue first.

    ``record`` notes controller SSH keys the store has not seen yet (a small write); readers
    that must not write (the TUI without the fleet lock) pass False.
    """
    today = today or date.today()
    if record:
        record_ssh_keys(fleet, today)
    return key_ages(key_records(fleet, now), key_policy(fleet.settings.keys), today)


@dataclass(frozen=True)
class RotatedPeer:
    configuration: Configuration
    # node -> wg-quick text with the client's private key: returned once, never stored,
    # left out of the repr.
    client_configs: dict[str, str] = field(repr=False)
    grace_ends: int  # unix seconds
    push: PushResult


@writes
def rotate_peer(
    fleet: Fleet,
    name: str,
    *,
    grace_seconds: int,
    today: date | None = None,
    now: int | None = None,
) -> RotatedPeer:
    """A new client key pair and preshared key for ``name``; the old key works until the
    client first uses the new one on a node, or until the grace ends."""
    if grace_seconds < 0:
        raise UsageError(f"--grace {grace_seconds}: must not be negative")
    now = int(time.time()) if now is None else now
    store = fleet.store
    current = store.configuration(name)
    if current.previous_public_key is not None:
        current = _end_grace_now(fleet, current, now)
    nodes = fleet.nodes(current.nodes)
    keys = wgkeys.new_keypair()
    preshared = wgkeys.new_preshared_key()
    psk_ref = _unique_psk_ref(fleet, name, preshared, current)
    rotated = store.begin_peer_rotation(
        name, keys.public_key, psk_ref, today or date.today(), now + grace_seconds
    )
    client_configs = {
        n: render_client_config(
            private_key=keys.private_key,
            address=rotated.addresses[n],
            node=nodes[n],
            preshared_key=preshared,
            dns_servers=fleet.settings.network.dns_servers,
            split_tunnel=rotated.split_tunnel,
        )
        for n in rotated.nodes
    }
    return RotatedPeer(
        rotated, client_configs, now + grace_seconds, push(fleet, rotated.nodes, now=now)
    )


def _end_grace_now(fleet: Fleet, config: Configuration, now: int) -> Configuration:
    """A configuration rotated again: its key still in grace leaves every node first, its
    counters accounted as it goes, so no configuration ever holds three keys."""
    fleet.store.end_grace(config.name, now)
    pushed = push(fleet, config.nodes, now=now)
    after = fleet.store.configuration(config.name)
    previous = config.previous_public_key
    left = [n for n, keys in fleet.store.pending_removals(config.nodes).items() if previous in keys]
    if after.previous_public_key is not None or left:
        failed = ", ".join(f"{n.node} ({n.error})" for n in pushed.failed) or ", ".join(left)
        raise UsageError(
            f"{config.name}: its previous key is still on {failed}; rotate again once every "
            "node answers"
        )
    return after


def _unique_psk_ref(fleet: Fleet, name: str, value: str, current: Configuration) -> str:
    """A reference not used by the configuration's current or previous preshared key."""
    taken = {current.psk_ref, current.previous_psk_ref}
    serial = 1
    while f"psk:{name}.{serial}" in taken:
        serial += 1
    return fleet.secrets.put_psk(f"{name}.{serial}", value)


@dataclass(frozen=True)
class RotatedPsk:
    configuration: Configuration
    # Returned once (the client's config needs this PresharedKey line), left out of the repr.
    preshared_key: str = field(repr=False)


@writes
def rotate_psk(
    fleet: Fleet,
    names: Iterable[str] | None = None,
    *,
    node: str | None = None,
    today: date | None = None,
) -> tuple[list[RotatedPsk], PushResult]:
    """New preshared keys for the named configurations or for every one placed on ``node``.

    A public key carries one preshared key on a node, so there is no grace: each client needs
    its new PresharedKey line before it can connect again (after a node compromise, that is
    the point).
    """
    store = fleet.store
    if (names is None) == (node is None):
        raise UsageError("name configurations or give --node, not both")
    if node is not None:
        fleet.nodes([node])
        chosen = store.configurations(node=node)
    else:
        chosen = [store.configuration(n) for n in sorted(set(names or ()))]
    if not chosen:
        raise UsageError(f"no configurations on node {node}")
    rotated: list[RotatedPsk] = []
    with store.transaction():
        for config in chosen:
            preshared = wgkeys.new_preshared_key()
            ref = _unique_psk_ref(fleet, config.name, preshared, config)
            rotated.append(
                RotatedPsk(store.set_psk(config.name, ref, today or date.today()), preshared)
            )
            if config.psk_ref:
                fleet.secrets.delete(config.psk_ref)
    return rotated, push(fleet, {n for r in rotated for n in r.configuration.nodes})
