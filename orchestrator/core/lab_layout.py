"""Names and addresses of a lab fleet, derived from its name and subnet alone.

Everything the lab creates on the host (namespaces, links, machine names) is a pure function of
``(lab name, index)``, so ``lab down`` can find and remove it even when the state file was lost
in a crash.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

TUNNEL_NETWORK = ipaddress.IPv4Network("198.19.0.0/16")
MAX_NODES = 250  # one /24 tunnel pool per node inside 198.19.0.0/16
MAX_CLIENTS = 1000
FIRST_NODE_OFFSET = 10
FIRST_CLIENT_OFFSET_FRACTION = 2  # clients live in the upper half of the lab subnet
WIREGUARD_PORT = 51820


@dataclass(frozen=True)
class LabNode:
    index: int
    name: str  # inventory hostname and the node's own hostname
    machine: str  # systemd-nspawn -M name, unique on the host
    netns: str
    veth_host: str
    underlay: ipaddress.IPv4Address
    tunnel_network: ipaddress.IPv4Network
    tunnel_address: ipaddress.IPv4Address


@dataclass(frozen=True)
class LabClient:
    index: int
    name: str
    netns: str
    veth_host: str
    wg_interface: str  # unique on the host: wireguard-go's UAPI socket lives in the host's /run
    underlay: ipaddress.IPv4Address


@dataclass(frozen=True)
class LabLayout:
    lab: str
    subnet: ipaddress.IPv4Network
    bridge: str
    bridge_address: ipaddress.IPv4Address
    nodes: tuple[LabNode, ...]
    clients: tuple[LabClient, ...]

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def client(self, name: str) -> LabClient:
        for client in self.clients:
            if client.name == name:
                return client
        raise KeyError(name)


def name_prefix(lab: str) -> str:
    """Prefix of every kernel object name; short because link names stop at 15 bytes."""
    return f"wgl{lab}"


def netns_prefix(lab: str) -> str:
    return f"wgfleet-{lab}-"


# Every lab's machine names start with this, whatever the lab's name.
MACHINE_PREFIX = "wgfleet-"


def machine_prefix(lab: str) -> str:
    return f"{MACHINE_PREFIX}{lab}-"


def client_capacity(subnet: ipaddress.IPv4Network) -> int:
    return min(MAX_CLIENTS, subnet.num_addresses // FIRST_CLIENT_OFFSET_FRACTION - 1)


def node_capacity(subnet: ipaddress.IPv4Network) -> int:
    half = subnet.num_addresses // FIRST_CLIENT_OFFSET_FRACTION
    return min(MAX_NODES, half - FIRST_NODE_OFFSET)


def lab_node(lab: str, subnet: ipaddress.IPv4Network, index: int) -> LabNode:
    if not 1 <= index <= node_capacity(subnet):
        raise ValueError(f"node index {index} outside 1..{node_capacity(subnet)} for {subnet}")
    tunnel = ipaddress.IPv4Network(f"198.19.{index}.0/24")
    return LabNode(
        index=index,
        name=f"node{index}",
        machine=f"{machine_prefix(lab)}node{index}",
        netns=f"{netns_prefix(lab)}node{index}",
        veth_host=f"{name_prefix(lab)}n{index}",
        underlay=subnet[FIRST_NODE_OFFSET + index - 1],
        tunnel_network=tunnel,
        tunnel_address=tunnel[1],
    )


def lab_client(lab: str, subnet: ipaddress.IPv4Network, index: int) -> LabClient:
    if not 1 <= index <= client_capacity(subnet):
        raise ValueError(f"client index {index} outside 1..{client_capacity(subnet)} for {subnet}")
    return LabClient(
        index=index,
        name=f"client{index}",
        netns=f"{netns_prefix(lab)}client{index}",
        veth_host=f"{name_prefix(lab)}c{index}",
        wg_interface=f"{name_prefix(lab)}w{index}",
        underlay=subnet[subnet.num_addresses // FIRST_CLIENT_OFFSET_FRACTION + index],
    )


def plan_layout(lab: str, subnet: ipaddress.IPv4Network, nodes: int, clients: int) -> LabLayout:
    if nodes < 0 or clients < 0:
        raise ValueError("node and client counts cannot be negative")
    return LabLayout(
        lab=lab,
        subnet=subnet,
        bridge=f"{name_prefix(lab)}br",
        bridge_address=subnet[1],
        nodes=tuple(lab_node(lab, subnet, i) for i in range(1, nodes + 1)),
        clients=tuple(lab_client(lab, subnet, j) for j in range(1, clients + 1)),
    )


def client_tunnel_address(node: LabNode, client: LabClient) -> ipaddress.IPv4Address:
    """A lab client's address inside a node's tunnel pool (for smoke tests before the store)."""
    return node.tunnel_network[100 + client.index]
