"""Helpers of the integration tests: root commands on lab nodes, pings from lab clients, client
tunnels (handed-out or hand-made configurations), OpenSSH's pinned options, and the `wgfleet`
command run against the session lab's settings file."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.adapters import ssh
from orchestrator.adapters.lab.clients import ping_from
from orchestrator.core.lab_layout import LabClient, LabNode
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import Fleet
from orchestrator.service.peers import NewConfiguration
from tests.conftest import Lab

WGFLEET = str(Path(sys.executable).with_name("wgfleet"))


def root(lab: Lab, layout, node_index: int, argv: list[str] | str) -> str:
    node = layout.nodes[node_index]
    return ssh.run_on(lab_service.node_target(lab.settings, node), argv).stdout


def transfer(lab: Lab, layout, node_index: int) -> dict[str, tuple[int, int]]:
    rows = root(lab, layout, node_index, ["wg", "show", "wg0", "transfer"]).splitlines()
    return {k: (int(rx), int(tx)) for k, rx, tx in (r.split("\t") for r in rows)}


def ping(netns: str, address: str, count: int = 2) -> bool:
    return ping_from(netns, address, count=count, wait=1).returncode == 0


def ping_within(netns: str, address: str, seconds: float = 30) -> bool:
    """A client whose peer came back re-handshakes on its own, within about 15 s (WireGuard's
    keepalive plus rekey timeout): wait for that instead of failing on the first lost ping."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ping(netns, address, count=1):
            return True
    return False


def wgfleet_with(
    config: Path, *args: str, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """The `wgfleet` command on the settings file ``config``, its output captured."""
    return subprocess.run(
        [WGFLEET, "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wgfleet(lab: Lab, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return wgfleet_with(lab.config_file, *args, stdin=stdin)


def account(fleet: Fleet, name: str) -> None:
    if name not in {a.username for a in fleet.store.accounts()}:
        peers_service.add_account(fleet, name, "correct horse battery", f"dev-{name}")


@contextmanager
def tunnel(lab: Lab, client: LabClient, config: str) -> Iterator[int]:
    """``client``'s tunnel up on the wg-quick text ``config`` for the block (yields its PID),
    and down after it, also when the block fails; the block may bring it up again on another
    configuration (a reissued one), which goes down the same way."""
    pid = lab_service.tunnel_up(lab.settings, client.name, config)
    try:
        yield pid
    finally:
        lab_service.tunnel_down(lab.settings, client.name)


@contextmanager
def connected(
    lab: Lab, fleet: Fleet, client: LabClient, owner: str, node: str
) -> Iterator[NewConfiguration]:
    """A new configuration ``OWNER-1`` of account ``owner`` (made if missing) on ``node``, and
    ``client``'s tunnel up on it for the block."""
    account(fleet, owner)
    made = peers_service.add_configuration(fleet, owner, nodes=[node], name=f"{owner}-1")
    with tunnel(lab, client, made.client_configs[node]):
        yield made


def wg_keypair() -> tuple[str, str]:
    """A WireGuard key pair made by `wg` itself: (private, public)."""
    private = subprocess.run(
        ["wg", "genkey"], capture_output=True, text=True, check=True
    ).stdout.strip()
    public = subprocess.run(
        ["wg", "pubkey"], input=private, capture_output=True, text=True, check=True
    ).stdout.strip()
    return private, public


def hand_made_config(
    private: str, address: object, node: LabNode, node_public: str, port: int | str
) -> str:
    """A client's wg-quick text for a peer made outside the store: only the node's tunnel
    network goes through the tunnel."""
    return (
        f"[Interface]\nPrivateKey = {private}\nAddress = {address}/32\n\n"
        f"[Peer]\nPublicKey = {node_public}\nEndpoint = {node.underlay}:{port}\n"
        f"AllowedIPs = {node.tunnel_network}\n"
    )


def pinned_ssh_options(known_hosts: Path) -> list[str]:
    """OpenSSH options that trust only the pinned ``known_hosts`` and never ask anything."""
    return [
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
    ]


PEERS_CONFIG = "/etc/wgfleet/peers.json"


@contextmanager
def push_network_widened(lab: Lab, layout, node_index: int, network: str) -> Iterator[None]:
    """The node's push accepts addresses of ``network`` too (its /24 pool holds 253 peers),
    as a deploy with a wider `peers_tunnel_networks_ipv4` would; the deployed config file is
    put back byte for byte (content, mode, owner, times) afterwards."""
    widen = (
        "import json; p = '/etc/wgfleet/peers.json'; c = json.load(open(p)); "
        f"c['tunnel_networks']['ipv4'].append('{network}'); open(p, 'w').write(json.dumps(c))"
    )
    root(lab, layout, node_index, f"cp -p {PEERS_CONFIG} /run/peers.json.orig")
    try:
        root(lab, layout, node_index, ["python3", "-c", widen])
        yield
    finally:
        root(lab, layout, node_index, f"cp -p /run/peers.json.orig {PEERS_CONFIG}")
        root(lab, layout, node_index, "rm -f /run/peers.json.orig")
