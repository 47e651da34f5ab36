"""The node's no-log resolver on the session lab: answers clients through the tunnel only, and
the audit's DNS checks catch a resolver that logs (role resolver, core/audit_resolver.py).

Lab nodes cannot reach the root servers: recursion ends in SERVFAIL at once. An answer, even
SERVFAIL, means unbound took the query; REFUSED or silence means it did not serve it.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from orchestrator.core.audit_resolver import DNS_QUERY_SCRIPT
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import open_fleet
from tests.conftest import Lab, audit_fleet
from tests.integration.fleet_lab import account, ping_within, root

pytestmark = pytest.mark.lab

NOERROR, SERVFAIL, REFUSED = "0", "2", "5"
UNBOUND_CONF = "/etc/unbound/unbound.conf"


def query(netns: str | None, server: str, name: str) -> str:
    """One DNS query from a lab namespace (None: the host): the response code or the error."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    result = subprocess.run(
        # 2 s: an answer in the lab takes milliseconds; silence is what we wait out.
        [*prefix, "python3", "-c", DNS_QUERY_SCRIPT, server, name, "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def tunnel(lab: Lab, layout, deployed: None) -> Iterator[tuple[object, object]]:
    """client2 with a tunnel to node2 (a pushed configuration), removed afterwards."""
    node, client = layout.nodes[1], layout.clients[1]
    with open_fleet(lab.settings, write=True) as fleet:
        account(fleet, "dnsuser")
        added = peers_service.add_configuration(fleet, "dnsuser", nodes=[node.name], name="dns-1")
    assert added.push.ok
    lab_service.tunnel_up(lab.settings, client.name, added.client_configs[node.name])
    try:
        assert ping_within(client.netns, str(node.tunnel_address))
        yield node, client
    finally:
        lab_service.tunnel_down(lab.settings, client.name)
        with open_fleet(lab.settings, write=True) as fleet:
            peers_service.remove_configurations(fleet, ["dns-1"])


def tunnel_address6(lab: Lab, node) -> str:
    """The node's IPv6 tunnel address: ::1 of the /64 the store gave it."""
    with open_fleet(lab.settings) as fleet:
        network6 = fleet.store.node(node.name).tunnel_network6
    assert network6 is not None
    return str(network6[1])


def test_the_resolver_answers_a_client_through_the_tunnel(tunnel) -> None:
    node, client = tunnel
    name = f"wgfleet-test-{secrets.token_hex(4)}.example.com"
    assert query(client.netns, str(node.tunnel_address), name) in (NOERROR, SERVFAIL)


def test_the_resolver_is_unreachable_from_the_underlay(lab: Lab, layout, tunnel) -> None:
    node, client = tunnel
    name = f"wgfleet-test-{secrets.token_hex(4)}.example.com"
    # From the host's bridge and from a client namespace, outside the tunnel: no DNS answer.
    for netns in (None, client.netns):
        assert query(netns, str(node.underlay), name) not in (NOERROR, SERVFAIL)
    # Neither does the tunnel address answer from outside the tunnel (no route, or dropped).
    assert query(layout.clients[0].netns, str(node.tunnel_address), name) not in (
        NOERROR,
        SERVFAIL,
    )
    # And unbound itself binds the tunnel address only, whatever the firewall does.
    sockets = root(lab, layout, 1, "ss -Hlnup; ss -Hlntp").splitlines()
    listening = {line.split()[3] for line in sockets if '"unbound"' in line}
    assert listening == {f"{node.tunnel_address}:53", f"[{tunnel_address6(lab, node)}]:53"}, sockets


def test_the_dns_canary_passes_on_a_fresh_node_and_fails_once_queries_are_logged(
    lab: Lab, layout, tunnel
) -> None:
    node, client = tunnel
    label = f"wgfleet-canary-client-{secrets.token_hex(6)}"
    assert query(client.netns, str(node.tunnel_address), f"{label}.example.com") in (
        NOERROR,
        SERVFAIL,
    )
    clean = audit_fleet(lab.settings, limit=node.name, needles=[label])
    checks = {c.check: c for c in clean.checks}
    assert [(c.check, c.evidence) for c in clean.failed] == []
    for name in (f"canary.text {label}", "resolver.no_query_log"):
        assert checks[name].passed, name
    v4, v6 = node.tunnel_address, tunnel_address6(lab, node)
    assert (
        checks["resolver.tunnel_only"].evidence
        == f"listens on udp {v4}:53, udp {v6}:53, tcp {v4}:53, tcp {v6}:53"
    )

    # Query logging turned on by hand, into a file: the audit fails the node on both counts.
    root(lab, layout, 1, f"cp -p {UNBOUND_CONF} /run/unbound.conf.orig")
    logged = f"wgfleet-canary-logged-{secrets.token_hex(6)}"
    try:
        root(
            lab,
            layout,
            1,
            f"sed -i 's|^\\tlog-queries: no|\\tlog-queries: yes|; "
            f's|^\\tlogfile: ""|\\tlogfile: "/var/log/unbound.log"|\' {UNBOUND_CONF}'
            " && touch /var/log/unbound.log && chown unbound /var/log/unbound.log"
            " && systemctl restart unbound",
        )
        assert query(client.netns, str(node.tunnel_address), f"{logged}.example.com") in (
            NOERROR,
            SERVFAIL,
        )
        broken = audit_fleet(lab.settings, limit=node.name, needles=[logged])
        failed = {c.check: c.evidence for c in broken.failed}
        assert (
            "resolver.no_query_log" in failed
            and "log-queries yes" in failed["resolver.no_query_log"]
        )
        assert "resolver.no_log_output" in failed
        assert (
            f"canary.text {logged}" in failed
            and "/var/log/unbound.log" in failed[f"canary.text {logged}"]
        )
    finally:
        root(
            lab,
            layout,
            1,
            f"cp -p /run/unbound.conf.orig {UNBOUND_CONF} && rm -f /run/unbound.conf.orig"
            " /var/log/unbound.log && systemctl restart unbound",
        )
    assert audit_fleet(lab.settings, limit=node.name).ok
