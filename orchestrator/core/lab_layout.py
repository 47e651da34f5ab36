"""Names and addresses of a lab fleet, derived from its name and subnet alone.

Everything the lab creates on the host (namespaces, links, machine names) is a pure function of
``(lab name, index)``, so ``lab down`` can find and remove it even when the state file was lost
in a crash.

The IPv6 underlay mirrors the IPv4 one: the lab's /64 inside 2001:2::/48 is a function of its
IPv4 subnet alone (see :func:`underlay6_network`), and every lab node's and client's IPv6
address has the same offset in that /64 as its IPv4 address has in the subnet
(198.18.144.10 -> ...::a); the lab internet's sits in the upper half (see :func:`lab_internet`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from orchestrator.core.errors import InvalidInput

TUNNEL_NETWORK = ipaddress.IPv4Network("198.19.0.0/16")
UNDERLAY_NETWORK = ipaddress.IPv4Network("198.18.0.0/16")  # every lab subnet lies inside it
UNDERLAY6_NETWORK = ipaddress.IPv6Network("2001:2::/48")  # the benchmarking range (RFC 5180)
# The lab "internet" host sits below the nodes (offsets 2..9 of the subnet are otherwise free).
INET_OFFSET = 2
# Clients reach the lab internet only through a default route (see LabLayout.client_routes4):
# their on-link routes leave out the subnet's first /29 (network, host bridge, lab internet)
# and the upper half of the /64, where the lab internet's IPv6 address lives.
CLIENT_EXCLUDED_PREFIXLEN = 29
INET6_INTERFACE_ID = (1 << 63) + INET_OFFSET
CLIENT_DEFAULT_METRIC = 1000
ECHO_PORT = 7  # the lab internet's echo service (TCP and UDP): answers with the source address
DNS_PORT = 53
# The lab internet's authoritative zone. RFC 2606 reserves example.; not .test (RFC 6761):
# unbound answers .test, .invalid and .onion itself, so a node's resolver would never forward them.
LAB_ZONE = "lab.example."
MAX_NODES = 250  # one /24 tunnel pool per node inside 198.19.0.0/16
MAX_CLIENTS = 1000
FIRST_NODE_OFFSET = 10
FIRST_CLIENT_OFFSET_FRACTION = 2  # clients live in the upper half of the lab subnet


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
    underlay6: ipaddress.IPv6Address


@dataclass(frozen=True)
class LabClient:
    index: int
    name: str
    netns: str
    veth_host: str
    wg_interface: str  # unique on the host: wireguard-go's UAPI socket lives in the host's /run
    underlay: ipaddress.IPv4Address
    underlay6: ipaddress.IPv6Address
    # The interface `wg-quick up` makes from a handed-out file (named after it): another name
    # than wg_interface, so both ways of bringing a tunnel up never take each other's socket.
    wg_quick_interface: str


@dataclass(frozen=True)
class LabInternet:
    """The lab's simulated internet: one namespace on the bridge with an echo service and an
    authoritative DNS server for LAB_ZONE, on-link for every node and client."""

    netns: str
    veth_host: str
    underlay: ipaddress.IPv4Address
    underlay6: ipaddress.IPv6Address
    zone: str = LAB_ZONE
    echo_port: int = ECHO_PORT
    dns_port: int = DNS_PORT

    @property
    def addresses(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv6Address]:
        return (self.underlay, self.underlay6)


@dataclass(frozen=True)
class LabLayout:
    lab: str
    subnet: ipaddress.IPv4Network
    bridge: str
    bridge_address: ipaddress.IPv4Address
    nodes: tuple[LabNode, ...]
    clients: tuple[LabClient, ...]
    underlay6_network: ipaddress.IPv6Network
    bridge_address6: ipaddress.IPv6Address
    internet: LabInternet
    # A client's on-link routes: every lab address but the lab internet's (and the host's).
    # Its only way to the lab internet is a default route via it (on-link, metric
    # CLIENT_DEFAULT_METRIC), the way a customer reaches the internet through a gateway, so
    # wg-quick's AllowedIPs 0.0.0.0/0, ::/0 send it into the tunnel exactly as on a real
    # network (a subnet route would keep it outside, like a LAN). The lab internet forwards
    # nothing, so the default route leads nowhere else.
    client_routes4: tuple[ipaddress.IPv4Network, ...]
    client_routes6: tuple[ipaddress.IPv6Network, ...]

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


def underlay6_network(subnet: ipaddress.IPv4Network) -> ipaddress.IPv6Network:
    """The lab's IPv6 underlay /64: 2001:2:0:N::/64 where N numbers the IPv4 subnet as a node
    of the binary tree of 198.18.0.0/16 (heap order: 1 for the /16, 2-3 for its /17s, ...,
    ``2**(p-16) + k`` for the k-th /p). Distinct subnets (any prefix lengths) get distinct
    numbers, and N < 512 for the /16../24 a lab may use: 198.18.144.0/20 -> 2001:2:0:19::/64
    (16 + 9 = 25 = 0x19), 198.18.32.0/20 -> 2001:2:0:12::/64."""
    if not subnet.subnet_of(UNDERLAY_NETWORK):
        raise InvalidInput(f"lab subnet {subnet} is not inside {UNDERLAY_NETWORK}")
    depth = subnet.prefixlen - UNDERLAY_NETWORK.prefixlen
    position = (int(subnet.network_address) - int(UNDERLAY_NETWORK.network_address)) >> (
        32 - subnet.prefixlen
    )
    number = (1 << depth) | position
    return ipaddress.IPv6Network((int(UNDERLAY6_NETWORK.network_address) | (number << 64), 64))


def underlay6_address(
    subnet: ipaddress.IPv4Network, address: ipaddress.IPv4Address
) -> ipaddress.IPv6Address:
    """An IPv4 lab address's IPv6 twin: the same offset in the lab's /64 as in its subnet."""
    if address not in subnet:
        raise InvalidInput(f"{address} is not in the lab subnet {subnet}")
    return underlay6_network(subnet)[int(address) - int(subnet.network_address)]


def lab_internet_link(lab: str) -> str:
    return f"{name_prefix(lab)}i"


def lab_internet(lab: str, subnet: ipaddress.IPv4Network) -> LabInternet:
    """The lab internet: IPv4 at offset 2 of the subnet, IPv6 at ``8000::2`` of the /64 (its
    upper half, off-link for clients: see LabLayout.client_routes6)."""
    return LabInternet(
        netns=f"{netns_prefix(lab)}inet",
        veth_host=lab_internet_link(lab),
        underlay=subnet[INET_OFFSET],
        underlay6=underlay6_network(subnet)[INET6_INTERFACE_ID],
    )


def client_routes4(subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Network, ...]:
    excluded = ipaddress.IPv4Network((subnet.network_address, CLIENT_EXCLUDED_PREFIXLEN))
    return tuple(sorted(subnet.address_exclude(excluded)))


def client_routes6(subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv6Network, ...]:
    network = underlay6_network(subnet)
    return (ipaddress.IPv6Network((network.network_address, network.prefixlen + 1)),)


def client_capacity(subnet: ipaddress.IPv4Network) -> int:
    return min(MAX_CLIENTS, subnet.num_addresses // FIRST_CLIENT_OFFSET_FRACTION - 1)


def node_capacity(subnet: ipaddress.IPv4Network) -> int:
    half = subnet.num_addresses // FIRST_CLIENT_OFFSET_FRACTION
    return min(MAX_NODES, half - FIRST_NODE_OFFSET)


def _check_index(kind: str, index: int, capacity: int, subnet: ipaddress.IPv4Network) -> None:
    if not 1 <= index <= capacity:
        raise InvalidInput(f"{kind} index {index} outside 1..{capacity} for {subnet}")


def lab_node(lab: str, subnet: ipaddress.IPv4Network, index: int) -> LabNode:
    _check_index("node", index, node_capacity(subnet), subnet)
    tunnel = ipaddress.IPv4Network(f"198.19.{index}.0/24")
    underlay = subnet[FIRST_NODE_OFFSET + index - 1]
    return LabNode(
        index=index,
        name=f"node{index}",
        machine=f"{machine_prefix(lab)}node{index}",
        netns=f"{netns_prefix(lab)}node{index}",
        veth_host=f"{name_prefix(lab)}n{index}",
        underlay=underlay,
        tunnel_network=tunnel,
        tunnel_address=tunnel[1],
        underlay6=underlay6_address(subnet, underlay),
    )


def lab_client(lab: str, subnet: ipaddress.IPv4Network, index: int) -> LabClient:
    _check_index("client", index, client_capacity(subnet), subnet)
    underlay = subnet[subnet.num_addresses // FIRST_CLIENT_OFFSET_FRACTION + index]
    return LabClient(
        index=index,
        name=f"client{index}",
        netns=f"{netns_prefix(lab)}client{index}",
        veth_host=f"{name_prefix(lab)}c{index}",
        wg_interface=f"{name_prefix(lab)}w{index}",
        underlay=underlay,
        underlay6=underlay6_address(subnet, underlay),
        wg_quick_interface=f"{name_prefix(lab)}q{index}",
    )


def plan_layout(lab: str, subnet: ipaddress.IPv4Network, nodes: int, clients: int) -> LabLayout:
    if nodes < 0 or clients < 0:
        raise InvalidInput("node and client counts cannot be negative")
    return LabLayout(
        lab=lab,
        subnet=subnet,
        bridge=f"{name_prefix(lab)}br",
        bridge_address=subnet[1],
        nodes=tuple(lab_node(lab, subnet, i) for i in range(1, nodes + 1)),
        clients=tuple(lab_client(lab, subnet, j) for j in range(1, clients + 1)),
        underlay6_network=underlay6_network(subnet),
        bridge_address6=underlay6_address(subnet, subnet[1]),
        internet=lab_internet(lab, subnet),
        client_routes4=client_routes4(subnet),
        client_routes6=client_routes6(subnet),
    )


def client_tunnel_address(node: LabNode, client: LabClient) -> ipaddress.IPv4Address:
    """A lab client's address inside a node's tunnel pool (for smoke tests before the store)."""
    return node.tunnel_network[100 + client.index]
