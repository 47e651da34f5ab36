from __future__ import annotations

import ipaddress

import pytest

from orchestrator.core.lab_layout import (
    client_capacity,
    client_tunnel_address,
    node_capacity,
    plan_layout,
)

SUBNET = ipaddress.IPv4Network("198.18.0.0/20")
UNDERLAY = ipaddress.IPv4Network("198.18.0.0/16")
TUNNELS = ipaddress.IPv4Network("198.19.0.0/16")


def test_every_address_is_a_lab_address_and_unique() -> None:
    layout = plan_layout("lab", SUBNET, node_capacity(SUBNET), client_capacity(SUBNET))
    underlay = [n.underlay for n in layout.nodes] + [c.underlay for c in layout.clients]
    assert len(set(underlay)) == len(underlay)
    assert layout.bridge_address not in underlay
    for address in [*underlay, layout.bridge_address]:
        assert address in SUBNET and address in UNDERLAY
        assert address not in (SUBNET.network_address, SUBNET.broadcast_address)
    for node in layout.nodes:
        assert node.tunnel_network.subnet_of(TUNNELS)
        assert node.tunnel_address in node.tunnel_network
    pools = [n.tunnel_network for n in layout.nodes]
    assert len(set(pools)) == len(pools)


def test_kernel_names_fit_in_fifteen_bytes_and_never_collide() -> None:
    layout = plan_layout("abcdef", SUBNET, node_capacity(SUBNET), client_capacity(SUBNET))
    links = (
        [layout.bridge]
        + [n.veth_host for n in layout.nodes]
        + [name for c in layout.clients for name in (c.veth_host, c.wg_interface)]
    )
    assert max(len(name) for name in links) <= 15
    assert len(set(links)) == len(links)
    namespaces = [n.netns for n in layout.nodes] + [c.netns for c in layout.clients]
    assert len(set(namespaces)) == len(namespaces)


def test_names_are_a_function_of_lab_and_index() -> None:
    assert plan_layout("lab", SUBNET, 3, 1) == plan_layout("lab", SUBNET, 3, 1)
    a, b = plan_layout("a", SUBNET, 1, 0).nodes[0], plan_layout("b", SUBNET, 1, 0).nodes[0]
    assert a.name == b.name == "node1"
    assert a.machine != b.machine and a.netns != b.netns and a.veth_host != b.veth_host


def test_capacity_follows_the_subnet() -> None:
    small = ipaddress.IPv4Network("198.18.5.0/24")
    assert node_capacity(small) == 118 and client_capacity(small) == 127
    with pytest.raises(ValueError, match="node index 119"):
        plan_layout("lab", small, 119, 0)
    with pytest.raises(ValueError, match="cannot be negative"):
        plan_layout("lab", small, -1, 0)


def test_client_tunnel_addresses_stay_in_the_node_pool() -> None:
    layout = plan_layout("lab", SUBNET, 2, 3)
    for node in layout.nodes:
        addresses = {client_tunnel_address(node, c) for c in layout.clients}
        assert len(addresses) == 3
        assert all(a in node.tunnel_network and a != node.tunnel_address for a in addresses)
