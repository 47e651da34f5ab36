"""Dual-stack tunnels on the session lab (issue 21): every node has its IPv6 tunnel /64 and
both families in its firewall after the session deploy, and IPv6 bytes count toward the
quota like IPv4 bytes, so a client over quota through IPv6 alone is cut off.

Lean by design: the session's one deploy, one configuration added and removed again (the
shared lab is left as it was), traffic of a few hundred kilobytes, no sleeps.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from orchestrator.adapters.lab.clients import ping_from
from orchestrator.core.addressing import LAB_PREFIX
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, root, transfer

pytestmark = pytest.mark.lab


def test_every_node_has_its_ipv6_tunnel_side_after_the_deploy(
    lab: Lab, layout, fleet: Fleet
) -> None:
    nodes = {n.name: n for n in fleet.store.nodes()}
    networks = [nodes[n.name].tunnel_network6 for n in layout.nodes]
    assert all(n is not None and n.subnet_of(LAB_PREFIX) and n.prefixlen == 64 for n in networks)
    assert len(set(networks)) == len(networks)
    for index, layout_node in enumerate(layout.nodes):
        network6 = nodes[layout_node.name].tunnel_network6
        assert network6 is not None
        own6 = network6[1]
        state = root(
            lab,
            layout,
            index,
            "ip -6 -o addr show dev wg0; echo ===; nft -j list ruleset; echo ===; "
            "sysctl -n net.ipv6.conf.all.forwarding; echo ===; cat /etc/wgfleet/peers.json",
        )
        addresses, ruleset, forwarding, peers_json = state.split("===\n")
        assert f"inet6 {own6}/64" in addresses
        assert forwarding.strip() == "1"
        peers_config = json.loads(peers_json)
        assert peers_config["tunnel_networks"]["ipv6"] == [str(network6)]
        assert peers_config["tunnel_addresses"]["ipv6"] == [str(own6)]
        rules = json.loads(ruleset)["nftables"]
        tables = {(r["table"]["family"], r["table"]["name"]) for r in rules if "table" in r}
        # Filter for both families (inet), NAT44 and, by default (egress nat66), NAT66.
        assert {("inet", "wgfleet_filter"), ("ip", "wgfleet_nat"), ("ip6", "wgfleet_nat6")} <= (
            tables
        )
        text = json.dumps(rules)
        forward_from = [
            r["rule"]
            for r in rules
            if "rule" in r and r["rule"]["chain"] == "forward" and '"saddr"' in json.dumps(r)
        ]
        families = {
            m["match"]["left"]["payload"]["protocol"]
            for rule in forward_from
            for m in rule["expr"]
            if "match" in m
            and isinstance(m["match"]["left"], dict)
            and "payload" in m["match"]["left"]
        }
        assert {"ip", "ip6"} <= families, forward_from
        assert str(network6.network_address) in text


def test_a_client_over_quota_through_ipv6_alone_is_cut_off(lab: Lab, layout, fleet: Fleet) -> None:
    client = layout.clients[0]
    account(fleet, "v6only")
    quota = 150_000
    created = peers_service.add_configuration(
        fleet, "v6only", nodes=["node2"], quota_bytes=quota, name="v6only-1"
    )
    node = fleet.store.node("node2")
    assert node.tunnel_network6 is not None
    own6 = str(node.tunnel_network6[1])
    address = created.configuration.addresses["node2"]
    offset = int(address) - int(node.tunnel_network.network_address)
    address6 = ipaddress.IPv6Address(int(node.tunnel_network6.network_address) + offset)
    text = created.client_configs["node2"]
    # The configuration as handed out: both families into the tunnel, DNS at the node.
    assert f"Address = {address}/32, {address6}/128\n" in text
    assert "AllowedIPs = 0.0.0.0/0, ::/0\n" in text
    assert f"DNS = {node.tunnel_network[1]}, {own6}\n" in text
    lab_service.tunnel_up(lab.settings, client.name, text)
    try:
        allowed = root(lab, layout, 1, ["wg", "show", "wg0", "allowed-ips"])
        line = next(
            x for x in allowed.splitlines() if x.startswith(created.configuration.public_key)
        )
        assert sorted(line.split("\t")[1].split()) == sorted([f"{address}/32", f"{address6}/128"])
        # IPv6 only: ICMPv6 echo to the node's own tunnel ::1, from the client's /128.
        first = ping_from(client.netns, own6, count=3, interval=0.2, wait=2)
        assert first.returncode == 0, first.stdout + first.stderr
        sync_service.sync(fleet, nodes=["node2"])
        assert fleet.store.configuration("v6only-1").enabled
        # ~240 kB of IPv6 (40 x 3 kB each way): over the quota only through IPv6.
        ping_from(client.netns, own6, count=40, interval=0.02, size=3000, wait=1)
        counted = transfer(lab, layout, 1)[created.configuration.public_key]
        assert sum(counted) > quota
        synced = sync_service.sync(fleet, nodes=["node2"])
        assert "v6only-1" in synced.over_quota
        assert not fleet.store.configuration("v6only-1").enabled
        used = sum(u.total for u in fleet.store.usage("v6only-1"))
        assert used >= sum(counted)  # every IPv6 byte the node saw is on the bill
        assert created.configuration.public_key not in transfer(lab, layout, 1)
        after = ping_from(client.netns, own6, count=3, interval=0.2, wait=1)
        assert after.returncode != 0  # its IPv6 traffic stops
    finally:
        lab_service.tunnel_down(lab.settings, client.name)
        peers_service.remove_configurations(fleet, ["v6only-1"])
