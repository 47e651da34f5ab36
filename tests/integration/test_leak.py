"""The leak test of issue 21: a dual-stack client imports a configuration exactly as `peers add`
hands it out and brings it up with the real `wg-quick`. Then

- its IPv4 and IPv6 requests to the lab internet arrive from the node's underlay addresses
  (the node's NAT and NAT66), never from the client's own;
- its DNS queries go to the node's resolver (the config's `DNS =` line) and reach the lab's
  authoritative server (the lab's `dns.forwarders`, tests/conftest.py) from the node, never
  from the client;
- a capture on the client's underlay link shows nothing but WireGuard UDP to the endpoint.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import pytest

from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, root, wgfleet
from tests.integration.lab_inet import capture, dns_queries, echo_source, sent_by

pytestmark = pytest.mark.lab

WIREGUARD_PORT = 51820


def test_a_configuration_as_handed_out_leaks_nothing(
    lab: Lab, layout, fleet: Fleet, tmp_path: Path
) -> None:
    client, node_index, internet = layout.clients[0], 1, layout.internet
    node = layout.nodes[node_index]
    account(fleet, "leak")
    handed_out = tmp_path / "leak-1.conf"
    made = wgfleet(
        lab,
        "peers",
        "add",
        "leak",
        "--nodes",
        node.name,
        "--name",
        "leak-1",
        "--out",
        str(handed_out),
    )
    assert made.returncode == 0, made.stderr
    config = handed_out.read_text()
    # What the customer imports: everything through the tunnel, DNS at the node.
    assert re.search(r"^AllowedIPs = 0\.0\.0\.0/0, ::/0$", config, re.M), config
    assert re.search(r"^DNS = 198\.19\.\d+\.1, fd00:198:19:[0-9a-f]+::1$", config, re.M), config
    assert f"Endpoint = {node.underlay}:{WIREGUARD_PORT}" in config
    canary = f"leak-{secrets.token_hex(6)}.{internet.zone.rstrip('.')}"
    client_addresses = (client.underlay, client.underlay6)
    node_addresses = {str(node.underlay), str(node.underlay6)}
    try:
        lab_service.wg_quick_up(lab.settings, client.name, handed_out.read_text())
        with capture(lab, client.netns) as on_link, capture(lab, internet.netns) as at_internet:
            seen = {
                (str(address), protocol): echo_source(client.netns, address, protocol)
                for address in internet.addresses
                for protocol in ("tcp", "udp")
            }
            # Through the namespace's resolv.conf, which wg-quick filled from `DNS =`.
            for qtype in ("A", "AAAA"):
                # Its answer (SERVFAIL, below) and its exit status are not the point.
                subprocess.run(
                    [
                        *("ip", "netns", "exec", client.netns, "dig", "+tries=1", "+time=5"),
                        *(canary, qtype),
                    ],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
    finally:
        lab_service.wg_quick_down(lab.settings, client.name)
        peers_service.remove_configurations(fleet, ["leak-1"])

    # Both families left through the node: its NAT and NAT66.
    assert seen == {
        (str(internet.underlay), "tcp"): str(node.underlay),
        (str(internet.underlay), "udp"): str(node.underlay),
        (str(internet.underlay6), "tcp"): str(node.underlay6),
        (str(internet.underlay6), "udp"): str(node.underlay6),
    }
    # The names were resolved by the node's resolver, which asked the lab's authoritative
    # server from the node's own addresses.
    asked = [q for q in dns_queries(at_internet) if q[2].rstrip(".").lower() == canary]
    assert asked, dns_queries(at_internet)
    assert {source for source, _type, _name in asked} <= node_addresses, asked
    # No answer is asserted: the node's resolver validates DNSSEC and the lab zone is unsigned
    # (SERVFAIL); that the query reached the zone's server from the node is the point here.
    # Nothing of the client's own reached the lab internet.
    assert sent_by(at_internet, *client_addresses) == []
    # On the client's link: WireGuard to the endpoint, and nothing else at all.
    sent = sent_by(on_link, *client_addresses)
    assert sent, "the capture saw no tunnel traffic"
    assert {(p.protocol, p.dst, p.dport) for p in sent} == {
        ("udp", str(node.underlay), WIREGUARD_PORT)
    }
    # The node's resolver kept no trace of the name (the audit's DNS canary, by hand here).
    found = root(
        lab, layout, node_index, f"grep -rlsF {canary} /etc /var /root /tmp /run/log || true"
    )
    assert found.strip() == ""
