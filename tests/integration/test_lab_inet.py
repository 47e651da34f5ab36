"""The lab internet and the client-side tools of leak tests, on the session lab.

- A client asking the lab internet directly is seen with its own underlay addresses (echo over
  TCP and UDP, IPv4 and IPv6), its name queries reach nsd from those addresses, and a capture
  on its link shows exactly those packets.
- Only clients have a default route, and it leads to the lab internet, which forwards nothing.
- `wg-quick up` of a configuration as handed out, in a client's namespace, with the resolvconf
  stand-in: requests to the lab internet go through the node (its NAT), the client's link
  carries nothing but WireGuard UDP to the endpoint, and `down` (also after a failed `up`)
  leaves the namespace and the host as they were.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters.lab import network, wgquick_client
from orchestrator.adapters.lab.state import LabState
from orchestrator.errors import LabError
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, ping
from tests.integration.lab_inet import capture, dig, dns_queries, echo_source, sent_by

pytestmark = pytest.mark.lab

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def _ip(*argv: str) -> str:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=True).stdout


def test_the_lab_internet_sees_a_direct_client_with_its_own_addresses(lab: Lab, layout) -> None:
    client, internet = layout.clients[0], layout.internet
    name = f"direct-{secrets.token_hex(4)}.lab.example"
    with capture(lab, client.netns) as on_link, capture(lab, internet.netns) as query_log:
        answers = {
            (str(address), protocol): echo_source(client.netns, address, protocol)
            for address in internet.addresses
            for protocol in ("tcp", "udp")
        }
        resolved = {
            str(server): dig(client.netns, name, qtype, server)
            for server, qtype in zip(internet.addresses, ("AAAA", "A"), strict=True)
        }
    v4, v6 = str(client.underlay), str(client.underlay6)
    assert answers == {
        (str(internet.underlay), "tcp"): v4,
        (str(internet.underlay), "udp"): v4,
        (str(internet.underlay6), "tcp"): v6,
        (str(internet.underlay6), "udp"): v6,
    }
    assert resolved == {
        str(internet.underlay): [str(internet.underlay6)],
        str(internet.underlay6): [str(internet.underlay)],
    }
    # nsd's query log: which address asked which name.
    assert sorted(q for q in dns_queries(query_log) if q[2] == f"{name}.") == [
        (v4, "AAAA", f"{name}."),
        (v6, "A", f"{name}."),
    ]
    # The client's link carried exactly those requests, nothing else of the client's.
    sent = {(p.protocol, p.dst, p.dport) for p in sent_by(on_link, v4, v6)}
    inet4, inet6 = str(internet.underlay), str(internet.underlay6)
    assert sent == {
        ("tcp", inet4, 7),
        ("udp", inet4, 7),
        ("tcp", inet6, 7),
        ("udp", inet6, 7),
        ("udp", inet4, 53),
        ("udp", inet6, 53),
    }


def test_nodes_are_dual_stack_and_reach_the_lab_internet_on_link(lab: Lab, layout) -> None:
    internet = layout.internet
    hosts = yaml.safe_load(lab_service.inventory_file(lab.settings).read_text())
    inventory = hosts["all"]["children"]["nodes"]["hosts"]
    for node in layout.nodes:
        assert inventory[node.name]["wgfleet_underlay_address6"] == str(node.underlay6)
        assert f" {node.underlay6}/64 " in _ip("-n", node.netns, "-o", "-6", "addr", "show")
    node = layout.nodes[-1]
    for address in internet.addresses:
        assert echo_source(node.netns, address, "udp") == str(
            node.underlay if address.version == 4 else node.underlay6
        )
        assert dig(node.netns, "ns.lab.example", "A", address) == [str(internet.underlay)]
    # Clients and nodes reach each other over IPv6 on-link, like over IPv4.
    assert ping(layout.clients[0].netns, str(node.underlay6))


def test_only_clients_have_a_default_route_and_it_ends_at_the_lab_internet(
    lab: Lab, layout
) -> None:
    internet = layout.internet
    for node in layout.nodes:
        for family in ("-4", "-6"):
            assert _ip("-n", node.netns, family, "route", "show", "default") == ""
    for client in layout.clients:
        for family, gateway in zip(("-4", "-6"), internet.addresses, strict=True):
            routes = _ip("-n", client.netns, "-j", family, "route", "show", "default")
            assert [(r["gateway"], r["metric"]) for r in json.loads(routes)] == [
                (str(gateway), 1000)
            ]
    assert _ip("-n", internet.netns, "route", "show", "default") == ""
    assert _ip("-n", internet.netns, "-6", "route", "show", "default") == ""
    forwarding = subprocess.run(
        [
            *("ip", "netns", "exec", internet.netns, "sysctl", "-n"),
            *("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert forwarding == ["0", "0"]
    # Its services are the processes the lab recorded, and nsd listens on its addresses only.
    state = LabState.load(lab.settings.lab.state_dir)
    assert state is not None and set(state.internet) == {"echo", "nsd"}
    assert lab_service.lab_status(lab.settings, probe=False).internet["running"] is True
    assert set(state.internet.values()) <= set(network.netns_pids(internet.netns))
    listening = subprocess.run(
        ["ip", "netns", "exec", internet.netns, "ss", "-Hlnu", "sport", "= :53"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    local = {column.rsplit(":", 1)[0].strip("[]") for column in listening if ":53" in column}
    assert local == {str(internet.underlay), str(internet.underlay6)}


def _client_state(client) -> dict[str, object]:
    """Everything a wg-quick tunnel touches in a client's namespace and on the host."""

    def in_netns(*argv: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", client.netns, *argv],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    sockets = wgquick_client.UAPI_DIR
    return {
        "links": re.findall(r"^\d+: ([^:@]+)", _ip("-n", client.netns, "-o", "link"), re.M),
        "rules": [_ip("-n", client.netns, family, "rule") for family in ("-4", "-6")],
        "routes": [
            _ip("-n", client.netns, family, "route", "show", "table", "all")
            for family in ("-4", "-6")
        ],
        "nftables": in_netns("nft", "list", "ruleset"),
        "src_valid_mark": in_netns("sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"),
        "processes": sorted(network.netns_pids(client.netns)),
        # Only this client's: other labs on the machine add and remove theirs meanwhile.
        "sockets": sorted(
            p.name for p in sockets.glob(f"{client.wg_quick_interface}.*") if sockets.is_dir()
        ),
        "netns_etc": (wgquick_client.NETNS_ETC / client.netns).exists(),
        "host_resolv_conf": hashlib.sha256(HOST_RESOLV_CONF.read_bytes()).hexdigest(),
    }


def test_wg_quick_brings_a_handed_out_configuration_up_and_down_leaving_nothing(
    lab: Lab, layout, fleet: Fleet
) -> None:
    client, node, internet = layout.clients[1], layout.nodes[0], layout.internet
    account(fleet, "inet")
    made = peers_service.add_configuration(fleet, "inet", nodes=[node.name], name="inet-wgq")
    config = made.client_configs[node.name]
    if not re.search(r"^DNS\s*=", config, re.M):
        # Until configurations name their node's resolver (issue 21 point 3), the lab's nsd
        # stands in, so the resolvconf stand-in has a DNS line to carry.
        config = config.replace("\n\n[Peer]", f"\nDNS = {internet.underlay}\n\n[Peer]", 1)
    servers = re.search(r"^DNS\s*=\s*(.+)$", config, re.M)
    assert servers is not None
    before = _client_state(client)
    try:
        pid = lab_service.wg_quick_up(lab.settings, client.name, config)
        assert pid is not None and pid in network.netns_pids(client.netns)
        # DNS went to the namespace's own resolv.conf, which its processes see as theirs.
        wanted = [f"nameserver {s.strip()}" for s in servers[1].split(",")]
        assert wgquick_client.resolv_conf(client).read_text().split("\n")[:-1] == wanted
        seen = subprocess.run(
            ["ip", "netns", "exec", client.netns, "cat", "/etc/resolv.conf"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert seen.splitlines() == wanted

        with capture(lab, client.netns) as on_link:
            via_tunnel = [echo_source(client.netns, internet.underlay, p) for p in ("tcp", "udp")]
        # The node's NAT: the lab internet sees the node, not the client.
        assert via_tunnel == [str(node.underlay)] * 2
        sent = sent_by(on_link, client.underlay, client.underlay6)
        assert sent and {(p.protocol, p.dst, p.dport) for p in sent} == {
            ("udp", str(node.underlay), 51820)
        }
    finally:
        lab_service.wg_quick_down(lab.settings, client.name)
        peers_service.remove_configurations(fleet, ["inet-wgq"])
    assert wgquick_client.leftovers(client, Path("/nonexistent")) == []
    assert _client_state(client) == before

    # A `wg-quick up` that fails half-way (after wireguard-go started) leaves nothing either.
    # (An MTU no link takes: `ip link set mtu` fails after the interface and its addresses.)
    broken = config.replace("\n\n[Peer]", "\nMTU = 70000\n\n[Peer]", 1)
    assert broken != config
    with pytest.raises(LabError, match="wg-quick"):
        lab_service.wg_quick_up(lab.settings, client.name, broken)
    assert _client_state(client) == before
