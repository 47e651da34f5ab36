"""A store filled for synthetic nodes (tests/synthetic_nodes.py): bulk SQL, not measured.

Node ``n{i}`` sits at the i-th synthetic address. Each configuration sits on ``spread`` nodes
(spread > 1 makes shards write the same configurations, as a multi-location provider does), and
every node hosts ``peers`` configurations.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from orchestrator.adapters.store import SqlStore
from orchestrator.core.lab_layout import TUNNEL_NETWORK
from orchestrator.settings import Settings, settings_from_mapping
from tests.synthetic_nodes import SyntheticNodes


def public_key(index: int) -> str:
    return base64.b64encode(b"\x57\x47" + index.to_bytes(30, "big")).decode()


def tunnel_networks(count: int) -> list[str]:
    """A distinct IPv4 tunnel network in 198.19.0.0/16 for each of ``count`` nodes (the store
    holds each once): a /26 each up to 1,024 nodes, a /30 each up to 16,384. Synthetic nodes
    carry no tunnel, so a /30 with no room for their peers is no loss."""
    prefix = 26 if count <= 1024 else 30
    if count > 2 ** (prefix - TUNNEL_NETWORK.prefixlen):
        raise ValueError(f"{count} nodes: more tunnel networks than {TUNNEL_NETWORK} holds")
    networks = TUNNEL_NETWORK.subnets(new_prefix=prefix)
    return [str(next(networks)) for _ in range(count)]


def populate(
    store: SqlStore, addresses: list[str], peers: int, spread: int = 1
) -> dict[str, list[str]]:
    """Return node name -> the public keys it hosts, in the order its counters list them."""
    nodes = len(addresses)
    if nodes % spread:
        raise ValueError(f"{nodes} nodes cannot hold configurations on {spread} nodes each")
    count = nodes * peers // spread
    step = nodes // spread
    hosted: dict[str, list[str]] = {f"n{i}": [] for i in range(nodes)}
    store.upgrade()
    with store.transaction():
        db = store.db
        db.execute(
            "INSERT INTO accounts (username, password_hash, device_id) VALUES ('synthetic', '!', 'x')"
        )
        account = db.execute("SELECT id FROM accounts WHERE username = 'synthetic'")[0][0]
        names = [f"n{i}" for i in range(nodes)]
        db.executemany(
            "INSERT INTO nodes (name, address, tunnel_network, revision, pushed_revision) "
            "VALUES (?, ?, ?, 0, 0)",
            list(zip(names, addresses, tunnel_networks(nodes), strict=True)),
        )
        db.executemany(
            "INSERT INTO configurations (name, account_id, public_key) VALUES (?, ?, ?)",
            [(f"c{c}", account, public_key(c)) for c in range(count)],
        )
        ids = dict(db.execute("SELECT name, id FROM configurations"))
        placements = []
        for c in range(count):
            for k in range(spread):
                node = (c + k * step) % nodes
                slot = len(hosted[f"n{node}"])
                hosted[f"n{node}"].append(public_key(c))
                # Synthetic nodes carry no tunnel: the address only has to be unique per node.
                placements.append(
                    (ids[f"c{c}"], f"n{node}", f"198.19.{slot // 250}.{slot % 250 + 1}")
                )
        db.executemany(
            "INSERT INTO configuration_nodes (configuration_id, node, tunnel_address) "
            "VALUES (?, ?, ?)",
            placements,
        )
    return hosted


def counters(epoch: str, keys: list[str], scale: int) -> str:
    return f"epoch {epoch}\n" + "".join(
        f"{key}\t{(j + 1) * scale}\t{(j + 2) * scale}\n" for j, key in enumerate(keys)
    )


def expected_total(hosted: dict[str, list[str]], scale: dict[str, int]) -> int:
    """What every configuration's usage adds up to once the counters at ``scale`` are synced."""
    return sum(
        sum((j + 1) * scale[node] + (j + 2) * scale[node] for j in range(len(keys)))
        for node, keys in hosted.items()
    )


def fleet_secret_of(nodes: SyntheticNodes) -> Path:
    """The synthetic fleet's secret (made once, 0600, never over a link)."""
    path = nodes.workdir / "fleet-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(os.urandom(32)) + b"\n")
    return path


def settings_for(base: Path, nodes: SyntheticNodes, store_url: str) -> tuple[Settings, Path]:
    """Settings (and their file, for the CLI) of a controller of the synthetic fleet."""
    raw = {
        "data_dir": str(base / "data"),
        "store_url": store_url,
        "inventory": str(base / "inventory"),
        # Every controller of the synthetic fleet holds the same fleet secret, as an operator
        # copies it to each (docs/OPERATIONS.md): one file for all of them here.
        "fleet_secret": str(fleet_secret_of(nodes)),
        "ssh": {
            "collector_key": str(nodes.keys["wgcollect"]),
            "push_key": str(nodes.keys["wgpush"]),
            "known_hosts": str(nodes.known_hosts),
        },
    }
    base.mkdir(parents=True, exist_ok=True)
    path = base / "settings.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return settings_from_mapping(raw, str(path), base), path
