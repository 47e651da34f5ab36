"""Dual-stack addressing and the client configs wgfleet hands out (issue 21): pure rules."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.addressing import (
    LAB_PREFIX,
    PrefixExhausted,
    TunnelNetworks,
    allocate_node_network,
    prefix_problem,
    random_ula_prefix,
)
from orchestrator.core.models import Configuration, Node
from orchestrator.core.peers import (
    canonical_split_tunnel,
    desired_peers,
    peer_delta,
    render_client_config,
    routing_lines,
    split_tunnel_problem,
)
from orchestrator.core.push_protocol import render_request
from orchestrator.core.wgquick import parse_wg_quick
from orchestrator.errors import ConfigError
from orchestrator.settings import settings_from_mapping

V4 = ipaddress.IPv4Network("198.19.1.0/24")
V6 = ipaddress.IPv6Network("fd00:198:19:1::/64")
KEY = "x21CkFo1pEax5ixfvV6c0roMvHkrrgKxaC+71Ei7GBU="
NODE_KEY = "ulWxkr14EKFw01lk4zyczpBfbcU2CM64DYmjsiI/yA8="


def node(**changes: object) -> Node:
    values: dict[str, object] = {
        "name": "node1",
        "address": "198.18.0.11",
        "tunnel_network": V4,
        "public_key": NODE_KEY,
        "tunnel_network6": V6,
    }
    values.update(changes)
    return Node(**values)  # type: ignore[arg-type]


# --- addressing ------------------------------------------------------------------------------


def test_a_random_prefix_is_an_rfc4193_slash_48() -> None:
    prefix = random_ula_prefix(bytes.fromhex("0123456789"))
    assert str(prefix) == "fd01:2345:6789::/48"
    assert prefix_problem(str(prefix)) is None
    with pytest.raises(ValueError, match="40 bits"):
        random_ula_prefix(b"1234")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("fd00:198:19::/48", None),
        ("fd00:198:19::/56", "a /48 is needed"),
        ("2001:db8::/48", None),  # the provider's own prefix (egress routed)
        ("fc00:1::/48", None),
        ("fe80::/48", "neither unique local"),
        ("ff02::/48", "neither unique local"),
        ("198.19.0.0/16", "not an IPv6 network"),
        ("fd00:198:19::1/48", "host bits set"),
        ("nonsense", "does not appear to be"),
    ],
)
def test_prefix_problems(text: str, problem: str | None) -> None:
    found = prefix_problem(text)
    assert (found is None) if problem is None else (problem in str(found))


def test_node_networks_start_at_subnet_one_and_take_the_first_free() -> None:
    first = allocate_node_network(LAB_PREFIX, [])
    assert str(first) == "fd00:198:19:1::/64"
    taken = [first, ipaddress.IPv6Network("fd00:198:19:3::/64")]
    assert str(allocate_node_network(LAB_PREFIX, taken)) == "fd00:198:19:2::/64"
    full = [
        ipaddress.IPv6Network((int(LAB_PREFIX.network_address) + (i << 64), 64))
        for i in range(65536)
    ]
    with pytest.raises(PrefixExhausted):
        allocate_node_network(LAB_PREFIX, full)


@given(offset=st.integers(1, 254))
def test_the_ipv6_address_keeps_the_ipv4_host_offset(offset: int) -> None:
    tunnels = TunnelNetworks(V4, V6)
    address6 = tunnels.address6(V4[offset])
    assert address6 == V6[offset]
    assert tunnels.host6(V4[offset]) == ipaddress.IPv6Network((int(V6[offset]), 128))
    assert TunnelNetworks(V4).address6(V4[offset]) is None


def test_an_address_outside_the_pool_has_no_ipv6_twin() -> None:
    # A node whose push was widened to a larger IPv4 network: such peers stay IPv4-only.
    assert TunnelNetworks(V4, V6).address6(ipaddress.IPv4Address("198.19.2.5")) is None
    outside = configuration("198.19.200.7")
    (peer,) = desired_peers("node1", [outside], tunnels=TunnelNetworks(V4, V6))
    assert peer.allowed_ips == "198.19.200.7/32"
    assert TunnelNetworks(V4, V6).own6 == ipaddress.IPv6Address("fd00:198:19:1::1")


# --- peers and the push ----------------------------------------------------------------------


def configuration(address: str, key: str = KEY, **changes: object) -> Configuration:
    return Configuration(
        "a-1", "a", key, None, {"node1": ipaddress.IPv4Address(address)}, **changes
    )  # type: ignore[arg-type]


def test_desired_peers_hold_the_derived_slash_128_beside_the_slash_32() -> None:
    (peer,) = desired_peers("node1", [configuration("198.19.1.9")], tunnels=TunnelNetworks(V4, V6))
    assert peer.allowed_ips == "198.19.1.9/32,fd00:198:19:1::9/128"
    request = render_request("apply", "wg0", [peer], {})
    assert f"peer {KEY} 198.19.1.9/32,fd00:198:19:1::9/128 -" in request.splitlines()
    # A node without a /64 (not deployed since the upgrade): IPv4 alone, as before.
    (old,) = desired_peers("node1", [configuration("198.19.1.9")], tunnels=TunnelNetworks(V4))
    assert old.allowed_ips == "198.19.1.9/32"


def test_a_rotation_keeps_both_addresses_for_both_keys() -> None:
    other = "/EgmzBZvSAGJh6HOLhIaSwal/eseBK1vj+MdGgG72Ao="
    rotating = configuration("198.19.1.9", previous_public_key=other)
    peers = desired_peers("node1", [rotating], tunnels=TunnelNetworks(V4, V6))
    assert {p.allowed_ips for p in peers} == {"198.19.1.9/32,fd00:198:19:1::9/128"}
    assert len(peers) == 2


def test_a_delta_carries_both_addresses() -> None:
    delta = peer_delta("node1", [], [configuration("198.19.1.9")], tunnels=TunnelNetworks(V4, V6))
    assert delta is not None
    assert [p.allowed_ips for p in delta.hold] == ["198.19.1.9/32,fd00:198:19:1::9/128"]


# --- client configs --------------------------------------------------------------------------


def test_a_client_config_leaks_nothing_by_default() -> None:
    text = render_client_config(private_key=KEY, address=V4[7], node=node(), preshared_key=None)
    config = parse_wg_quick(text)
    assert [str(a) for a in config.addresses] == ["198.19.1.7/32", "fd00:198:19:1::7/128"]
    assert [str(n) for n in config.allowed_ips()] == ["0.0.0.0/0", "::/0"]
    assert config.interface.get("dns") == "198.19.1.1, fd00:198:19:1::1"
    assert config.peers[0].get("endpoint") == "198.18.0.11:51820"


def test_a_node_without_ipv6_still_blackholes_ipv6() -> None:
    text = render_client_config(
        private_key=KEY, address=V4[7], node=node(tunnel_network6=None), preshared_key=None
    )
    assert "Address = 198.19.1.7/32\n" in text
    assert "AllowedIPs = 0.0.0.0/0, ::/0\n" in text
    assert "DNS = 198.19.1.1\n" in text


def test_the_fleet_s_dns_servers_and_an_explicit_split_tunnel() -> None:
    text = render_client_config(
        private_key=KEY,
        address=V4[7],
        node=node(),
        preshared_key=None,
        dns_servers=("198.18.0.53", "2001:2::53"),
        split_tunnel="198.18.0.0/16,2001:2::/48",
    )
    assert "DNS = 198.18.0.53, 2001:2::53\n" in text
    assert "AllowedIPs = 198.18.0.0/16, 2001:2::/48\n" in text


def test_an_ipv6_endpoint_is_bracketed() -> None:
    text = render_client_config(
        private_key=KEY, address=V4[7], node=node(endpoint_host="2001:2::11"), preshared_key=None
    )
    assert "Endpoint = [2001:2::11]:51820\n" in text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("198.18.0.0/16", None),
        ("198.18.0.0/16, 2001:2::/48", None),
        ("", "comma-separated"),
        ("198.18.0.0/16,", "comma-separated"),
        ("198.18.0.1/16", "host bits set"),
        ("198.18.0.0/16\nPostUp = id", "does not appear"),
        (",".join(f"10.{i}.0.0/16" for i in range(65)), "at most 64"),
    ],
)
def test_split_tunnel_input(text: str, problem: str | None) -> None:
    found = split_tunnel_problem(text)
    assert (found is None) if problem is None else (problem in str(found))


def test_split_tunnel_is_canonical() -> None:
    assert (
        canonical_split_tunnel("2001:2::/48, 198.18.0.0/16,198.18.0.0/16")
        == "198.18.0.0/16,2001:2::/48"
    )


def test_peers_show_lines_for_a_config_made_before_ipv6() -> None:
    lines = routing_lines(configuration("198.19.1.7"), {"node1": node()})
    assert lines == {
        "node1": [
            "Address = 198.19.1.7/32, fd00:198:19:1::7/128",
            "DNS = 198.19.1.1, fd00:198:19:1::1",
            "AllowedIPs = 0.0.0.0/0, ::/0",
        ]
    }


# --- settings --------------------------------------------------------------------------------


def load(raw: dict[str, object], tmp_path: Path):
    return settings_from_mapping({"inventory": str(tmp_path), **raw}, "s.yml", tmp_path)


def test_settings_ipv6_prefix_and_dns_servers(tmp_path: Path) -> None:
    settings = load(
        {"ipv6": {"prefix": "fd12:3456:789a::/48"}, "dns": {"servers": ["2001:2::53"]}}, tmp_path
    )
    assert str(settings.network.ipv6_prefix) == "fd12:3456:789a::/48"
    assert settings.network.dns_servers == ("2001:2::53",)
    # Another inventory than the lab's: a random prefix unless set.
    assert load({}, tmp_path).network.ipv6_prefix is None
    assert settings_from_mapping(None, "defaults", tmp_path).network.ipv6_prefix == LAB_PREFIX


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        ({"ipv6": {"prefix": "fe80::/48"}}, "ipv6.prefix", "neither unique local"),
        ({"ipv6": {"prefix": "fd00::/64"}}, "ipv6.prefix", "a /48 is needed"),
        ({"ipv6": {"other": 1}}, "ipv6.other", "unknown setting"),
        ({"dns": {"servers": ["resolver.example"]}}, "dns.servers", "not an IP address"),
        ({"dns": {"servers": "1.1.1.1"}}, "dns.servers", "a list"),
    ],
)
def test_bad_network_settings_name_the_field(
    raw: dict[str, object], field: str, problem: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(raw, tmp_path)
    assert caught.value.field == field
    assert problem in str(caught.value)


# --- fleet file ------------------------------------------------------------------------------


def test_a_fleet_file_sets_the_client_dns_servers_as_a_policy(tmp_path: Path) -> None:
    from orchestrator.core.fleetfile import parse_fleet_file
    from orchestrator.core.fleetplan import policy_values
    from orchestrator.settings import with_policies

    text = 'version: 1\npolicies:\n  dns: {servers: ["198.18.0.53", "2001:0002::53"]}\n'
    parsed = parse_fleet_file(text, "fleet.yml")
    values = policy_values(parsed.policies)
    assert values == {"dns.servers": ["198.18.0.53", "2001:2::53"]}
    settings = with_policies(load({}, tmp_path), values)
    assert settings.network.dns_servers == ("198.18.0.53", "2001:2::53")


# --- inventory: IPv6 underlay, client endpoint, egress ----------------------------------------


@pytest.mark.parametrize(
    ("variables", "problems"),
    [
        ({"wgfleet_underlay_address6": "2001:2::11", "wgfleet_client_endpoint": "ipv6"}, []),
        ({"wgfleet_client_endpoint": "ipv4", "wireguard_ipv6_egress": "routed"}, []),
        (
            {"wgfleet_client_endpoint": "ipv6"},
            [("n1.wgfleet_client_endpoint", "ipv4, or ipv6 with wgfleet_underlay_address6 set")],
        ),
        (
            {"wgfleet_underlay_address6": "198.18.0.11"},
            [("n1.wgfleet_underlay_address6", "an IPv6 address")],
        ),
        (
            {"wireguard_ipv6_egress": "nat64"},
            [("n1.wireguard_ipv6_egress", "nat66, routed or off")],
        ),
    ],
)
def test_inventory_rules_for_the_ipv6_side(
    variables: dict[str, object], problems: list[tuple[str, str]]
) -> None:
    from orchestrator.core.inventory_rules import host_problems

    assert [(p.field, p.problem) for p in host_problems("n1", variables)] == problems


def test_the_endpoint_a_node_hands_out() -> None:
    from orchestrator.service.deploy import endpoint_host

    assert endpoint_host("n1", {"ansible_host": "198.18.0.11"}, "hosts.yml") is None
    chosen = {"wgfleet_client_endpoint": "ipv6", "wgfleet_underlay_address6": "2001:0002::11"}
    assert endpoint_host("n1", chosen, "hosts.yml") == "2001:2::11"
    with pytest.raises(ConfigError, match=r"n1\.wgfleet_client_endpoint"):
        endpoint_host("n1", {"wgfleet_client_endpoint": "both"}, "hosts.yml")


def test_a_fleet_file_sets_the_ipv6_prefix_until_nodes_have_their_slash_64() -> None:
    from orchestrator.core.fleetfile import FleetFileInvalid, parse_fleet_file
    from orchestrator.core.fleetplan import FleetState, plan_changes, plan_problems

    parsed = parse_fleet_file("version: 1\nipv6: {prefix: 'fd12:3456:789a::/48'}\n", "f.yml")
    assert parsed.ipv6_prefix == "fd12:3456:789a::/48"
    fresh = FleetState((), (), (), (), ipv6_prefix="fd00:198:19::/48")
    changes = plan_changes(parsed, fresh)
    assert [(c.kind, c.action, c.after) for c in changes] == [
        ("ipv6", "change", {"prefix": "fd12:3456:789a::/48"})
    ]
    assert plan_problems(parsed, fresh, changes) == []
    used = FleetState((), (), (), (), ipv6_prefix="fd00:198:19::/48", nodes_with_network6=3)
    (problem,) = plan_problems(parsed, used, plan_changes(parsed, used))
    assert problem.startswith("ipv6.prefix: fd12:3456:789a::/48 would move the IPv6 addresses")
    same = parse_fleet_file("version: 1\nipv6: {prefix: 'fd00:198:19::/48'}\n", "f.yml")
    assert plan_changes(same, used) == []
    with pytest.raises(FleetFileInvalid) as raised:
        parse_fleet_file("version: 1\nipv6: {prefix: 'fe80::/48'}\n", "f.yml")
    assert str(raised.value.errors[0]).startswith("f.yml:2: ipv6.prefix: 'fe80::/48': neither")


def test_a_fleet_file_sets_a_node_s_ipv6_egress_and_client_endpoint() -> None:
    from orchestrator.core.fleetfile import FleetFileInvalid, parse_fleet_file
    from orchestrator.core.fleetplan import FleetState, plan_changes

    text = "version: 1\nnodes:\n  node1: {ipv6_egress: routed, client_endpoint: ipv6}\n"
    parsed = parse_fleet_file(text, "f.yml")
    variables = {"ansible_host": "198.18.0.11", "wgfleet_tunnel_network": str(V4)}
    state = FleetState((node(),), (), (), (), node_vars={"node1": variables})
    (change,) = plan_changes(parsed, state)
    assert (change.kind, change.action, change.subject) == ("node", "change", "node1")
    assert change.before == {"ipv6_egress": "nat66", "client_endpoint": "ipv4"}
    assert change.after == {"ipv6_egress": "routed", "client_endpoint": "ipv6"}
    applied = {**variables, "wireguard_ipv6_egress": "routed", "wgfleet_client_endpoint": "ipv6"}
    assert (
        plan_changes(parsed, FleetState((node(),), (), (), (), node_vars={"node1": applied})) == []
    )
    with pytest.raises(FleetFileInvalid):
        parse_fleet_file("version: 1\nnodes:\n  node1: {ipv6_egress: leak}\n", "f.yml")
