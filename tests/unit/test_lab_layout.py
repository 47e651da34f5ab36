from __future__ import annotations

import ipaddress

import pytest

from orchestrator.core.lab_layout import (
    client_capacity,
    client_tunnel_address,
    lab_internet,
    node_capacity,
    plan_layout,
    underlay6_network,
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


UNDERLAY6 = ipaddress.IPv6Network("2001:2::/48")


def test_each_lab_subnet_gets_its_own_ipv6_underlay_slash_64() -> None:
    """Every subnet a lab may use (a /16 to /24 of 198.18.0.0/16, 511 of them) maps to a
    distinct /64 of 2001:2::/48, so two labs with different subnets never share one."""
    subnets = [
        subnet for prefixlen in range(16, 25) for subnet in UNDERLAY.subnets(new_prefix=prefixlen)
    ]
    networks = [underlay6_network(subnet) for subnet in subnets]
    assert len(set(networks)) == len(subnets) == 511
    assert all(n.prefixlen == 64 and n.subnet_of(UNDERLAY6) for n in networks)


def test_ipv6_underlay_examples_as_documented() -> None:
    assert underlay6_network(ipaddress.IPv4Network("198.18.144.0/20")) == ipaddress.IPv6Network(
        "2001:2:0:19::/64"
    )
    assert str(underlay6_network(ipaddress.IPv4Network("198.18.32.0/20"))) == "2001:2:0:12::/64"
    assert str(underlay6_network(UNDERLAY)) == "2001:2:0:1::/64"
    with pytest.raises(ValueError, match="not inside"):
        underlay6_network(ipaddress.IPv4Network("198.19.0.0/24"))


def test_every_ipv6_underlay_address_mirrors_its_ipv4_one() -> None:
    layout = plan_layout("lab", SUBNET, node_capacity(SUBNET), client_capacity(SUBNET))
    pairs = (
        [(layout.bridge_address, layout.bridge_address6)]
        + [(n.underlay, n.underlay6) for n in layout.nodes]
        + [(c.underlay, c.underlay6) for c in layout.clients]
    )
    v6 = [address6 for _v4, address6 in pairs] + [layout.internet.underlay6]
    assert len(set(v6)) == len(v6)
    for address, address6 in pairs:
        assert address6 in layout.underlay6_network
        assert int(address6) - int(layout.underlay6_network.network_address) == int(address) - int(
            SUBNET.network_address
        )
    assert str(
        plan_layout("li", ipaddress.IPv4Network("198.18.144.0/20"), 1, 0).nodes[0].underlay6
    ) == ("2001:2:0:19::a")


def test_clients_reach_every_lab_address_on_link_but_the_lab_internet() -> None:
    """So that only a default route leads a client to the lab internet (as a gateway leads a
    customer to the internet) and wg-quick's 0.0.0.0/0, ::/0 take that traffic into the
    tunnel, while node endpoints stay on-link."""
    layout = plan_layout("lab", SUBNET, node_capacity(SUBNET), client_capacity(SUBNET))

    def on_link(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in route for route in layout.client_routes4 + layout.client_routes6)

    machines = [*layout.nodes, *layout.clients]
    assert all(on_link(m.underlay) and on_link(m.underlay6) for m in machines)
    assert not on_link(layout.internet.underlay) and not on_link(layout.internet.underlay6)
    assert all(route.subnet_of(SUBNET) for route in layout.client_routes4)
    assert all(route.subnet_of(layout.underlay6_network) for route in layout.client_routes6)
    assert str(layout.internet.underlay6) == "2001:2:0:10:8000::2"


def test_the_lab_internet_has_addresses_and_names_of_its_own() -> None:
    layout = plan_layout("abcdef", SUBNET, node_capacity(SUBNET), client_capacity(SUBNET))
    internet = layout.internet
    taken = {layout.bridge_address, *(n.underlay for n in layout.nodes)}
    taken |= {c.underlay for c in layout.clients}
    assert internet.underlay in SUBNET and internet.underlay not in taken
    assert internet.netns == "wgfleet-abcdef-inet" and len(internet.veth_host) <= 15
    links = {layout.bridge, *(n.veth_host for n in layout.nodes)}
    links |= {name for c in layout.clients for name in (c.veth_host, c.wg_interface)}
    links |= {c.wg_quick_interface for c in layout.clients}
    assert internet.veth_host not in links
    assert max(len(c.wg_quick_interface) for c in layout.clients) <= 15
    assert internet == lab_internet("abcdef", SUBNET)  # a function of name and subnet alone
