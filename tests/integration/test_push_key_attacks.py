"""The push key used as an attacker holding it would: every abuse refused, nothing changed.

The real push key (`settings.ssh.push_key`, account `wgpush`, forced to `sudo -n
wgfleet-peers`) sends hand-made requests to a deployed lab node over SSH. Each one must be
answered with one `error ...` line (or `resync`, for a delta on another revision) and leave the
node byte-identical: its live peers (`wg show wg0 allowed-ips`, `preshared-keys`; their lines
in any order, since `wg show` sorts peers by their latest handshake), the persisted set and
handover files, `ip route`, `ip -6 route` and `ip addr`, snapshotted as root over the deploy
key. The snapshot is compared as hashes per section, so no preshared key ever reaches a test
report. A legitimate push works afterwards.

SSH-level abuses of the key (PTY, forwarding, agent, other commands) are tested elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from orchestrator.adapters import ssh
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service.context import Fleet, open_fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account

pytestmark = pytest.mark.lab

NODE_INDEX = 0  # node1
SECTIONS = {
    "allowed-ips": "wg show wg0 allowed-ips",
    "preshared-keys": "wg show wg0 preshared-keys",
    "peers file": "cat /etc/wireguard/wg0.peers 2>&1",
    "handover file": "cat /etc/wireguard/wg0.handover 2>&1",
    "wireguard dir": "ls -la --time-style=+%s /etc/wireguard",
    "routes": "ip route",
    "ipv6 routes": "ip -6 route",
    "addresses": "ip addr",
}
SNAPSHOT = "; ".join(f"echo '=== {name}'; {command}" for name, command in SECTIONS.items())


class Node:
    """One lab node as root (deploy key) and as the push account (push key), each over one
    kept connection: every attack is one exec of the forced command."""

    def __init__(self, lab: Lab, layout) -> None:
        self.layout_node = layout.nodes[NODE_INDEX]
        with open_fleet(lab.settings) as fleet:
            self.network6 = fleet.store.node(self.layout_node.name).tunnel_network6
        target = lab_service.node_target(lab.settings, self.layout_node)
        self.root = ssh.NodeConnection(target)
        self.push = ssh.NodeConnection(
            replace(target, user="wgpush", key_file=lab.settings.ssh.push_key)
        )

    def sh(self, command: str) -> str:
        return self.root.run(command).stdout

    def snapshot(self) -> dict[str, str]:
        """Each section's SHA-256: compared, never shown. `wg show` lists peers by their
        latest handshake, so its lines are compared as a set (a client's rekey reorders them)."""
        text = self.sh(SNAPSHOT)
        sections = dict(s.split("\n", 1) for s in text.split("=== ")[1:])
        assert list(sections) == list(SECTIONS)
        for name in ("allowed-ips", "preshared-keys"):
            sections[name] = "\n".join(sorted(sections[name].splitlines()))
        return {
            name: hashlib.sha256(body.encode()).hexdigest()[:16] for name, body in sections.items()
        }

    def send(self, request: str) -> ssh.CommandResult:
        return self.push.run("wgfleet-peers", stdin=request, check=False, timeout=120)


@pytest.fixture(scope="module")
def node(lab: Lab, layout, deployed: None) -> Iterator[Node]:
    with open_fleet(
        lab.settings, write=True
    ) as fleet:  # the node holds a revision: deltas can be tried
        assert push_service.push(fleet, ["node1"]).ok
    opened = Node(lab, layout)
    with opened.root, opened.push:
        yield opened


def random_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def header(mode: str = "apply", interface: str = "wg0") -> str:
    return f"wgfleet-peers 1\nmode {mode}\ninterface {interface}\n"


def held_revision(node: Node) -> int:
    line = node.sh("grep -m1 '^# revision ' /etc/wireguard/wg0.peers || echo '# revision 0'")
    return int(line.split()[-1])


def assert_refused(node: Node, request: str, error: str) -> None:
    before = node.snapshot()
    result = node.send(request)
    assert result.stdout == f"error {error}\n", result.stdout[-300:]
    assert result.status == 2
    assert node.snapshot() == before


def abuses(node: Node) -> list[tuple[str, str, str]]:
    """(what, request, the node's answer) for each abuse that needs no state of the node."""
    layout_node = node.layout_node
    net = layout_node.tunnel_network
    own_address = layout_node.tunnel_address
    k, j, m = random_key(), random_key(), random_key()
    head = header()

    def one(address: str) -> str:
        return f"{head}peer {k} {address} -\nend\n"

    outside = f"address '{{}}' is outside the node's IPv4 tunnel networks ({net})"
    # Short forms, so the node's error line shows them whole (it cuts values at 48 characters).
    second6, third6 = ("fd00:198:19:1::5", "fd00:198:19:1::6")
    if node.network6 is not None:
        second6, third6 = str(node.network6[5]), str(node.network6[6])
    not_host = "address '{}' is not a single host address (/32)"
    return [
        # Interfaces other than the managed one.
        *(
            (
                f"interface {name}",
                f"{header(interface=name)}peer {k} {net[5]}/32 -\nend\n",
                f"line 3: interface {name!r} is not managed here (managed: wg0)",
            )
            for name in ("eth0", "lo", "wg1", "wg0;reboot", "../wg0")
        ),
        (
            "the overlap twin named directly",
            f"{header(interface='wg0n')}end\n",
            "line 3: interface 'wg0n' is the overlap twin of wg0: name wg0, the push changes both",
        ),
        # Routes to everything, the underlay, other nodes, networks inside the tunnel net.
        ("the default route", one("0.0.0.0/0"), "line 4: " + not_host.format("0.0.0.0/0")),
        ("half the internet", one("0.0.0.0/1"), "line 4: " + not_host.format("0.0.0.0/1")),
        ("IPv6 default", one("::/0"), "line 4: address '::/0' is not a single host address (/128)"),
        (
            "the underlay network",
            one(str(layout_node.underlay) + "/32"),
            "line 4: " + outside.format(f"{layout_node.underlay}/32"),
        ),
        (
            "the benchmark range",
            one("198.18.0.0/15"),
            "line 4: " + not_host.format("198.18.0.0/15"),
        ),
        (
            "another node's tunnel address",
            one("198.19.250.1/32"),
            "line 4: " + outside.format("198.19.250.1/32"),
        ),
        ("a host on the internet", one("8.8.8.8/32"), "line 4: " + outside.format("8.8.8.8/32")),
        ("the whole tunnel net", one(str(net)), "line 4: " + not_host.format(net)),
        (
            "a /28 inside the tunnel net",
            one(f"{net[16]}/28"),
            "line 4: " + not_host.format(f"{net[16]}/28"),
        ),
        (
            "the node's own tunnel address",
            one(f"{own_address}/32"),
            f"line 4: address '{own_address}/32' is this node's own tunnel address",
        ),
        (
            "the tunnel network's address",
            one(f"{net[0]}/32"),
            f"line 4: address '{net[0]}/32' is the tunnel network's own address",
        ),
        (
            "the broadcast address",
            one(f"{net[-1]}/32"),
            f"line 4: address '{net[-1]}/32' is the tunnel network's broadcast address",
        ),
        (
            # The fleet prefix's subnet 0 is never a node's /64.
            "an IPv6 host outside the node's /64",
            one("fd00:198:19::2/128"),
            "line 4: address 'fd00:198:19::2/128' is outside the node's IPv6 tunnel networks "
            f"({node.network6})",
        ),
        (
            "the node's own IPv6 tunnel address",
            one(f"{node.network6[1] if node.network6 else ''}/128"),
            f"line 4: address '{node.network6[1] if node.network6 else ''}/128' is this node's "
            "own tunnel address",
        ),
        (
            "a second IPv6 address",
            one(f"{second6}/128,{third6}/128"),
            f"line 4: more than one IPv6 address ('{second6}/128,{third6}/128')",
        ),
        (
            "a host route hidden behind a good one",
            one(f"{net[5]}/32,0.0.0.0/0"),
            "line 4: " + not_host.format("0.0.0.0/0"),
        ),
        (
            "two addresses for one peer",
            one(f"{net[5]}/32,{net[6]}/32"),
            f"line 4: more than one IPv4 address ('{net[5]}/32,{net[6]}/32')",
        ),
        # Two peers, one address; handovers crafted to share one with a third peer.
        (
            "two peers claiming one address",
            f"{head}peer {k} {net[5]}/32 -\npeer {j} {net[5]}/32 -\nend\n",
            f"line 5: address {net[5]}/32 is already claimed by the peer on line 4",
        ),
        (
            "a handover pair and a third peer on its address",
            f"{head}peer {k} {net[5]}/32 -\npeer {j} {net[5]}/32 -\npeer {m} {net[5]}/32 -\n"
            f"handover {k} {j}\nend\n",
            f"line 6: address {net[5]}/32 is already claimed by the peer on line 4",
        ),
        (
            "a handover to a key holding another address",
            f"{head}peer {k} {net[5]}/32 -\npeer {j} {net[6]}/32 -\nhandover {k} {j}\nend\n",
            "line 6: a handover names two listed peers with the same networks",
        ),
        (
            "a chain of handovers",
            f"{head}peer {k} {net[5]}/32 -\npeer {j} {net[5]}/32 -\npeer {m} {net[5]}/32 -\n"
            f"handover {k} {j}\nhandover {j} {m}\nend\n",
            "line 8: a key in two handovers",
        ),
        # Malformed keys.
        (
            "a short key",
            f"{head}peer {k[:40]}= {net[5]}/32 -\nend\n",
            "line 4: malformed public key",
        ),
        (
            "a key with stray bits",
            f"{head}peer {k[:42]}B= {net[5]}/32 -\nend\n",
            "line 4: malformed public key",
        ),
        (
            "a shell in the key",
            f"{head}peer $(reboot)AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {net[5]}/32 -\nend\n",
            "line 4: malformed public key",
        ),
        (
            "a preshared key as a file path",
            f"{head}peer {k} {net[5]}/32 /etc/shadow\nend\n",
            "line 4: malformed preshared key",
        ),
        # Bounds that fit in a small request.
        (
            "one peer with a thousand networks",
            one(",".join(f"{net[2 + i % 250]}/32" for i in range(1000))),
            "line 4: longer than 512 bytes",
        ),
        ("a long line", f"{head}{'#' * 600}\nend\n", "line 4: longer than 512 bytes"),
        # Protocol games.
        (
            "not ASCII",
            one(f"{net[5]}/32").replace("198", "\uff11\uff19\uff18"),
            "the request is not ASCII",
        ),
        (
            "a NUL in a key",
            f"{head}peer \0{k[1:]} {net[5]}/32 -\nend\n",
            "line 4: malformed public key",
        ),
        (
            "a second interface line",
            f"{head}interface eth0\nend\n",
            "line 4: a second 'interface' line",
        ),
        ("a second mode line", f"{head}mode plan\nend\n", "line 4: a second 'mode' line"),
        ("a second header", f"{head}wgfleet-peers 1\nend\n", "line 4: not understood"),
        (
            "remove lines in a full set",
            f"{head}remove {k}\nend\n",
            "remove lines belong to a delta (base)",
        ),
        (
            "a plan request is checked as strictly",
            f"{header('plan')}peer {k} 0.0.0.0/0 -\nend\n",
            "line 4: " + not_host.format("0.0.0.0/0"),
        ),
    ]


def test_every_abuse_of_the_push_key_is_refused_and_changes_nothing(node: Node) -> None:
    before = node.snapshot()
    for what, request, error in abuses(node):
        result = node.send(request)
        if result.stdout != f"error {error}\n" or result.status != 2:
            pytest.fail(f"{what}: answered {result.stdout[-300:]!r} (exit {result.status})")
        assert node.snapshot() == before, what


def test_the_nodes_own_and_static_keys_and_addresses_are_refused(node: Node) -> None:
    net = node.layout_node.tunnel_network
    own = node.sh("wg show wg0 public-key").strip()
    head = header()
    assert_refused(
        node,
        f"{head}peer {own} {net[5]}/32 -\nend\n",
        "line 4: the public key is this node's own public key",
    )
    static, static_address = random_key(), f"{net[250]}/32"
    node.sh("cp -p /etc/wireguard/wg0.conf /run/wg0.conf.orig")
    try:
        node.sh(
            f"printf '\\n[Peer]\\nPublicKey = {static}\\nAllowedIPs = {static_address}\\n'"
            " >> /etc/wireguard/wg0.conf"
        )
        assert_refused(
            node,
            f"{head}peer {static} {net[5]}/32 -\nend\n",
            "line 4: the public key is a static peer of wg0.conf",
        )
        assert_refused(
            node,
            f"{head}peer {random_key()} {static_address} -\nend\n",
            f"line 4: address {static_address} belongs to a static peer of wg0.conf",
        )
        revision = held_revision(node)
        assert_refused(
            node,
            f"{head}base {revision}\nrevision {revision + 1}\nremove {static}\nend\n",
            "line 6: the public key is a static peer of wg0.conf",
        )
    finally:
        node.sh("cp -p /run/wg0.conf.orig /etc/wireguard/wg0.conf && rm /run/wg0.conf.orig")


def test_revision_and_base_games_are_refused(node: Node) -> None:
    net = node.layout_node.tunnel_network
    revision = held_revision(node)
    head = header()
    k = random_key()
    for lines, error in [
        (
            f"base {revision}\nrevision {revision + 2}\n",
            f"a delta moves the revision by one: base {revision}, revision {revision + 2}",
        ),
        (
            f"base {revision}\nrevision {revision}\n",
            f"a delta moves the revision by one: base {revision}, revision {revision}",
        ),
        (f"base {revision}\n", "a delta (base) needs a revision"),
        (
            f"base 0{revision}\nrevision {revision + 1}\n",
            f"line 4: base '0{revision}' is not a revision number",
        ),
        ("base -1\nrevision 0\n", "line 4: base '-1' is not a revision number"),
        (f"base {'9' * 19}\nrevision 1\n", f"line 4: base '{'9' * 19}' is not a revision number"),
        (
            f"base {revision}\nbase {revision}\nrevision {revision + 1}\n",
            "line 5: a second 'base' line",
        ),
        (
            f"base {revision}\nrevision {revision + 1}\npeer {k} {net[5]}/32 -\nremove {k}\n",
            "a delta names a peer twice",
        ),
    ]:
        assert_refused(node, f"{head}{lines}end\n", error)
    # A delta on a revision the node does not hold: nothing changes, the controller must
    # send the whole set.
    before = node.snapshot()
    result = node.send(f"{head}base {revision + 5}\nrevision {revision + 6}\nremove {k}\nend\n")
    assert result.stdout == f"resync node holds revision {revision}, not {revision + 5}\nok\n"
    assert node.snapshot() == before


def test_a_delta_may_not_take_a_placed_peers_address(node: Node, fleet: Fleet) -> None:
    account(fleet, "victim")
    made = peers_service.add_configuration(fleet, "victim", nodes=["node1"], name="victim-1")
    try:
        assert made.push.ok
        address = made.configuration.addresses["node1"]
        revision = held_revision(node)
        assert_refused(
            node,
            f"{header()}base {revision}\nrevision {revision + 1}\n"
            f"peer {random_key()} {address}/32 -\nend\n",
            f"line 6: address {address}/32 is held by another peer on this node",
        )
        # The same key in a handover to a third: refused whole as well.
        victim = made.configuration.public_key
        thief, third = random_key(), random_key()
        assert_refused(
            node,
            f"{header()}peer {victim} {address}/32 -\npeer {thief} {address}/32 -\n"
            f"peer {third} {address}/32 -\nhandover {victim} {thief}\nend\n",
            f"line 6: address {address}/32 is already claimed by the peer on line 4",
        )
    finally:
        assert peers_service.delete_account(fleet, "victim").push.ok


def test_oversize_requests_are_refused_at_the_bound(node: Node) -> None:
    """Peer count, line length and total bytes at the deployed bounds (65,000 peers, 512-byte
    lines, 16 MiB): the node stops reading at the bound and answers."""
    revision = held_revision(node)
    head = f"{header()}base {revision}\nrevision {revision + 1}\n"
    removes = "".join(f"remove {random_key()}\n" for _ in range(65001))
    assert_refused(node, f"{head}{removes}end\n", "line 65006: more than 65000 peers")
    assert_refused(node, f"{header()}#{'x' * (1 << 20)}\nend\n", "line 4: longer than 512 bytes")
    filler = "#" * 500 + "\n"
    big = header() + filler * ((16 << 20) // len(filler) + 2) + "end\n"
    assert_refused(node, big, "the request exceeds 16777216 bytes")


def test_a_legitimate_push_still_works_afterwards(node: Node, fleet: Fleet) -> None:
    account(fleet, "after")
    before = node.snapshot()
    try:
        made = peers_service.add_configuration(fleet, "after", nodes=["node1"], name="after-1")
        assert made.push.ok, made.push.as_dict()
        assert made.configuration.public_key in node.sh("wg show wg0 allowed-ips")
        # The snapshot the attacks are compared with sees a real change.
        after = node.snapshot()
        changed = {name for name in SECTIONS if after[name] != before[name]}
        assert {"allowed-ips", "preshared-keys", "peers file", "wireguard dir"} <= changed
        full = push_service.push(fleet, ["node1"])
        assert full.ok and full.nodes[0].answer is not None
        assert full.nodes[0].answer.changes == 0
    finally:
        deleted = peers_service.delete_account(fleet, "after")
        assert deleted.push.ok
    assert made.configuration.public_key not in node.sh("wg show wg0 allowed-ips")
