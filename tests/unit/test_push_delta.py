"""Delta pushes against nodes that run the real `wgfleet-peers` (the role's plain program with
a test config, run here with its interface down) behind a fake SSH run: a change is sent as a delta only to
a node known to hold the revision just before it, and any doubt sends the full set, so a node
that missed a change converges."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Unpack

import pytest

from orchestrator.adapters import ssh
from orchestrator.core.models import DisabledReason
from orchestrator.core.peers import desired_peers
from orchestrator.errors import NodeUnreachable
from orchestrator.service import keys as keys_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.settings import Settings
from tests.unit.peers_node import SCRIPT, clean_environment, peers_config, write_config

# Interface names no machine running the tests has: the script takes its `interface down` path.
INTERFACES = {"node1": "wgd1", "node2": "wgd2"}
OPERATOR = DisabledReason.OPERATOR


class ScriptNodes:
    """Each node a wgfleet-peers with its own config and /etc/wireguard; ``down`` nodes refuse."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.down: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (node, request) in the order received
        for index, node in enumerate(INTERFACES, start=1):  # node1: 198.19.1.0/24 (conftest)
            (base / node / "wireguard").mkdir(parents=True)
            config = peers_config(
                base / node,
                interfaces=[INTERFACES[node]],
                tunnel_networks={"ipv4": [f"198.19.{index}.0/24"], "ipv6": []},
                tunnel_addresses={"ipv4": [f"198.19.{index}.1"], "ipv6": []},
                max_peers=1000,
            )
            write_config(base / node / "peers.json", config)

    def run(
        self, target: ssh.Target, argv: Sequence[str] | str, **options: Unpack[ssh.CommandOptions]
    ) -> ssh.CommandResult:
        stdin = options.get("stdin")
        assert argv == "wgfleet-peers" and target.user == "wgpush" and stdin is not None
        if target.name in self.down:
            raise NodeUnreachable(target.name, "connection refused")
        self.requests.append((target.name, stdin))
        done = subprocess.run(
            [sys.executable, str(SCRIPT)],
            input=stdin,
            env=clean_environment(WGFLEET_PEERS_CONFIG=str(self.base / target.name / "peers.json")),
            capture_output=True,
            text=True,
            check=False,
            timeout=options.get("timeout", 60.0),
        )
        return ssh.CommandResult(done.returncode, done.stdout, done.stderr)

    def peers_file(self, node: str) -> Path:
        return self.base / node / "wireguard" / f"{INTERFACES[node]}.peers"

    def held(self, node: str) -> tuple[dict[str, tuple[str, str | None]], int | None]:
        """What the node persisted: key -> (networks, psk), and its revision."""
        peers: dict[str, tuple[str, str | None]] = {}
        revision = None
        key = ""
        for line in self.peers_file(node).read_text().splitlines():
            if line.startswith("# revision "):
                revision = int(line.removeprefix("# revision "))
            name, _, value = (part.strip() for part in line.partition("="))
            if name == "PublicKey":
                key = value
                peers[key] = ("", None)
            elif name == "PresharedKey":
                peers[key] = (peers[key][0], value)
            elif name == "AllowedIPs":
                peers[key] = (value, peers[key][1])
        return peers, revision

    def kinds(self, since: int = 0) -> list[tuple[str, str]]:
        """(node, "delta" or "full") of each request received since ``since``, in the order
        received: one node's requests keep their order, two nodes' pushes run concurrently."""
        return [
            (node, "delta" if "\nbase " in request else "full")
            for node, request in self.requests[since:]
        ]


@pytest.fixture
def nodes(settings: Settings, tmp_path: Path) -> ScriptNodes:
    with open_fleet(settings, write=True) as fleet:
        for node in fleet.store.nodes():
            fleet.store.upsert_node(replace(node, interface=INTERFACES[node.name]))
    return ScriptNodes(tmp_path / "nodes")


@pytest.fixture
def fleet(settings: Settings, nodes: ScriptNodes, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    with open_fleet(settings, write=True) as opened:
        monkeypatch.setattr(opened, "run", nodes.run)
        peers_service.add_account(opened, "alice", "a password", "device")
        yield opened


def expected(fleet: Fleet, node: str) -> tuple[dict[str, tuple[str, str | None]], int]:
    """What a full push writes on ``node``: its desired set, at the store's revision."""
    configurations = fleet.store.configurations(on_nodes=[node])
    peers = {
        p.public_key: (str(p.allowed_ip), fleet.secrets.get(p.psk_ref) if p.psk_ref else None)
        for p in desired_peers(node, configurations, int(time.time()))
    }
    return peers, fleet.store.node_revisions()[node][0]


def add(fleet: Fleet, name: str, on: list[str]) -> None:
    made = peers_service.add_configuration(fleet, "alice", nodes=on, name=name)
    assert made.push.ok, made.push.as_dict()


def test_changes_after_the_first_push_go_as_deltas_and_leave_the_full_set(
    fleet: Fleet, nodes: ScriptNodes
) -> None:
    add(fleet, "alice-1", ["node1", "node2"])  # the nodes' first push: the full set
    assert sorted(nodes.kinds()) == [("node1", "full"), ("node2", "full")]
    for i in range(2, 6):
        add(fleet, f"alice-{i}", ["node1"])
    assert nodes.kinds(2) == [("node1", "delta")] * 4
    mark = len(nodes.requests)
    changed, pushed = peers_service.set_enabled(
        fleet, ["alice-2", "alice-3", "alice-1"], False, OPERATOR
    )
    assert pushed.ok and len(changed) == 3
    assert sorted(nodes.kinds(mark)) == [("node1", "delta"), ("node2", "delta")]
    answers = {n.node: n.answer for n in pushed.nodes}
    assert all(a is not None and a.delta for a in answers.values())
    assert answers["node1"] is not None and answers["node1"].unchanged == 2
    _, pushed = peers_service.set_enabled(fleet, ["alice-3"], True)
    assert pushed.ok and pushed.nodes[0].answer is not None
    assert len(pushed.nodes[0].answer.added) == 1
    _, pushed = peers_service.remove_configurations(fleet, ["alice-4"])
    assert pushed.ok and nodes.kinds()[-1] == ("node1", "delta")
    for node in INTERFACES:
        assert nodes.held(node) == expected(fleet, node)
    assert push_service.pending_nodes(fleet) == []
    # A full push now writes the same files: the deltas left exactly the desired set.
    files = {node: nodes.peers_file(node).read_text() for node in INTERFACES}
    assert push_service.push(fleet).ok
    assert files == {node: nodes.peers_file(node).read_text() for node in INTERFACES}


def test_a_node_that_missed_a_change_gets_the_full_set_and_converges(
    fleet: Fleet, nodes: ScriptNodes
) -> None:
    for i in (1, 2, 3):
        add(fleet, f"alice-{i}", ["node1", "node2"])
    nodes.down.add("node2")
    _, missed = peers_service.set_enabled(fleet, ["alice-1"], False, OPERATOR)
    assert [n.node for n in missed.failed] == ["node2"]
    assert push_service.pending_nodes(fleet) == ["node2"]
    nodes.down.clear()
    # The next change: node1 holds the revision before it, node2 does not.
    mark = len(nodes.requests)
    _, pushed = peers_service.set_enabled(fleet, ["alice-2"], False, OPERATOR)
    assert pushed.ok
    assert sorted(nodes.kinds(mark)) == [("node1", "delta"), ("node2", "full")]
    answer = {n.node: n.answer for n in pushed.nodes}["node2"]
    assert answer is not None and not answer.delta and len(answer.added) == 1  # only alice-3
    for node in INTERFACES:
        assert nodes.held(node) == expected(fleet, node)
        assert len(nodes.held(node)[0]) == 1
    assert push_service.pending_nodes(fleet) == []


def test_a_node_that_lost_its_state_answers_resync_and_gets_the_full_set(
    fleet: Fleet, nodes: ScriptNodes
) -> None:
    for i in (1, 2, 3):
        add(fleet, f"alice-{i}", ["node1"])
    nodes.peers_file("node1").unlink()  # a rebuilt node: the store still thinks it in sync
    assert "node1" not in push_service.pending_nodes(fleet)
    mark = len(nodes.requests)
    _, pushed = peers_service.set_enabled(fleet, ["alice-1"], False, OPERATOR)
    assert pushed.ok and nodes.kinds(mark) == [("node1", "delta"), ("node1", "full")]
    answer = pushed.nodes[0].answer
    assert answer is not None and not answer.delta and not answer.resync
    assert len(answer.added) == 2
    assert nodes.held("node1") == expected(fleet, "node1")
    # A persisted set naming another revision: the same.
    nodes.peers_file("node1").write_text("# revision 1\n")
    _, pushed = peers_service.set_enabled(fleet, ["alice-1"], True)
    assert pushed.ok and pushed.nodes[0].answer is not None
    assert nodes.kinds()[-2:] == [("node1", "delta"), ("node1", "full")]
    assert nodes.held("node1") == expected(fleet, "node1")


def test_progress_reports_each_node_once_with_its_final_outcome(
    fleet: Fleet, nodes: ScriptNodes
) -> None:
    add(fleet, "alice-1", ["node1", "node2"])
    add(fleet, "alice-2", ["node1", "node2"])
    nodes.peers_file("node2").unlink()
    reported: list[tuple[str, bool]] = []
    with fleet.store.transaction():
        fleet.store.set_enabled(["alice-1"], False, OPERATOR)
    moved = {
        name: (desired - 1, desired) for name, (desired, _) in fleet.store.node_revisions().items()
    }
    before = fleet.store.configuration("alice-1")
    change = push_service.Change(
        (replace(before, enabled=True, disabled_reason=None),), (before,), moved
    )
    pushed = push_service.push(
        fleet,
        progress=lambda n: reported.append((n.node, n.answer is not None and n.answer.delta)),
        change=change,
    )
    assert pushed.ok and sorted(reported) == [("node1", True), ("node2", False)]


def test_only_a_node_moved_by_exactly_one_revision_can_take_a_delta(fleet: Fleet) -> None:
    store = fleet.store

    def write() -> str:
        # Another writer's bump of node1, committed between this transaction's reads (as
        # PostgreSQL's read committed lets one show); bump_nodes itself moves a node once.
        store.db.execute("UPDATE nodes SET revision = revision + 1 WHERE name = 'node1'")
        store.bump_nodes(["node1", "node2"])
        return "done"

    before = store.node_revisions()
    result, moved = push_service.record_change(store, write)
    assert result == "done"
    assert moved == {"node2": (before["node2"][0], before["node2"][0] + 1)}


def test_a_node_whose_replaced_key_grace_ended_gets_the_full_set(
    fleet: Fleet, nodes: ScriptNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(fleet, "alice-1", ["node1"])
    add(fleet, "alice-2", ["node1"])
    now = int(time.time())
    rotated = keys_service.rotate_peer(fleet, "alice-1", grace_seconds=60, now=now)
    assert rotated.push.ok and "node1" not in push_service.pending_nodes(fleet)
    old_key = rotated.configuration.previous_public_key
    assert old_key in nodes.held("node1")[0]
    monkeypatch.setattr(push_service.time, "time", lambda: now + 120)  # the grace ended
    mark = len(nodes.requests)
    _, pushed = peers_service.set_enabled(fleet, ["alice-2"], False, OPERATOR)
    assert pushed.ok and nodes.kinds(mark) == [("node1", "full")]
    assert old_key not in nodes.held("node1")[0]
    assert fleet.store.configuration("alice-1").previous_public_key is None
    assert nodes.held("node1") == expected(fleet, "node1")
    assert list(nodes.held("node1")[0]) == [rotated.configuration.public_key]


def test_a_resync_answered_to_a_full_set_is_a_failure(
    fleet: Fleet, nodes: ScriptNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(fleet, "alice-1", ["node1"])

    def confused(target: ssh.Target, argv: str, **_: object) -> ssh.CommandResult:
        return ssh.CommandResult(0, "resync node holds revision none, not 3\nok\n", "")

    monkeypatch.setattr(fleet, "run", confused)
    pushed = push_service.push(fleet, ["node1"])
    assert pushed.failed[0].error == "push refused: resync (node holds revision none, not 3)"


def test_a_node_refusing_a_push_is_named_with_its_one_line(
    fleet: Fleet, nodes: ScriptNodes
) -> None:
    """A node whose push config does not manage the interface the store names (a deploy that
    has not run since the interface changed): the push fails on that node only, with the
    node's own line, and nothing is written there."""
    config = nodes.base / "node2" / "peers.json"
    config.write_text(config.read_text().replace('"wgd2"', '"wgx2"'))
    made = peers_service.add_configuration(fleet, "alice", nodes=["node1", "node2"], name="a-1")
    assert [(n.node, n.error) for n in made.push.failed] == [
        ("node2", "push refused: line 3: interface 'wgd2' is not managed here (managed: wgx2)")
    ]
    assert nodes.peers_file("node1").exists() and not nodes.peers_file("node2").exists()
