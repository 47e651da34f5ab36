"""No access outlives its revocation, against nodes that run the real `wgfleet-peers` (the
script nodes of test_push_delta.py, interface down): every way of taking a key off a node,
interrupted at each step, leaves the removal pending in the store until a push the node
applied confirms it, and the next push finishes it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from orchestrator.adapters import ssh
from orchestrator.core.models import DisabledReason
from orchestrator.errors import NodeUnreachable, StoreError
from orchestrator.service import keys as keys_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service.context import Fleet
from tests.unit import test_push_delta
from tests.unit.test_push_delta import OPERATOR, ScriptNodes, add, expected

# The script nodes and the fleet that pushes to them, as test_push_delta.py builds them.
nodes = test_push_delta.nodes
fleet = test_push_delta.fleet


class Crash(BaseException):
    """A process killed at this point: nothing after it runs, nothing uncommitted lands."""


def accounted(fleet: Fleet, nodes: ScriptNodes, node: str) -> set[str]:
    """The keys a node holds that the store accounts for neither as placed there nor as
    pending removal: must always be empty."""
    held = set(nodes.held(node)[0])
    placed = {
        key
        for c in fleet.store.configurations(on_nodes=[node])
        if node in c.nodes
        for key in (c.public_key, c.previous_public_key)
        if key
    }
    return held - placed - fleet.store.pending_removals([node]).get(node, set())


def converged(fleet: Fleet, nodes: ScriptNodes) -> None:
    assert push_service.push(fleet).ok
    assert fleet.store.pending_removals() == {}
    for node in ("node1", "node2"):
        assert nodes.held(node) == expected(fleet, node)


REVOCATIONS: dict[str, Callable[[Fleet], object]] = {
    "delete": lambda f: peers_service.delete_account(f, "alice"),
    "remove": lambda f: peers_service.remove_configurations(f, ["alice-1"]),
    "disable": lambda f: peers_service.set_enabled(f, ["alice-1"], False, OPERATOR),
    "cut-off": lambda f: peers_service.set_enabled(
        f, ["alice-1"], False, DisabledReason.OVER_QUOTA
    ),
    "expiry": lambda f: peers_service.set_enabled(f, ["alice-1"], False, DisabledReason.EXPIRED),
}


@pytest.mark.parametrize("how", sorted(REVOCATIONS))
@pytest.mark.parametrize("where", ["before the push", "node down", "after the node applied"])
def test_an_interrupted_revocation_stays_pending_until_a_node_confirms_it(
    fleet: Fleet,
    nodes: ScriptNodes,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    where: str,
) -> None:
    add(fleet, "alice-1", ["node1", "node2"])
    add(fleet, "alice-2", ["node1"])
    key = fleet.store.configuration("alice-1").public_key
    other = fleet.store.configuration("alice-2").public_key

    def crash(*args: object, **kwargs: object) -> None:
        raise Crash()

    with monkeypatch.context() as patch, contextlib.suppress(Crash):
        if where == "before the push":
            patch.setattr(peers_service, "push", crash)
        elif where == "node down":
            nodes.down.add("node2")
        else:
            patch.setattr(push_service, "_settle", crash)
        REVOCATIONS[how](fleet)
    nodes.down.clear()
    # Whatever the node holds, the store accounts for: the key is placed or its removal is
    # pending there.
    for node in ("node1", "node2"):
        assert accounted(fleet, nodes, node) == set()
    pending = fleet.store.pending_removals()
    if where == "node down":
        assert pending == {"node2": {key}} and key in nodes.held("node2")[0]
        assert key not in nodes.held("node1")[0]
    elif how == "delete":  # both of the account's configurations
        assert pending == {"node1": {key, other}, "node2": {key}}
    else:
        assert pending == {"node1": {key}, "node2": {key}}
    if how == "delete":
        # No account, no link: the key alone waits for the nodes.
        unlinked = fleet.store.db.execute(
            "SELECT COUNT(*) FROM pending_removals WHERE configuration_id IS NOT NULL"
        )
        assert unlinked == [(0,)]
    converged(fleet, nodes)
    assert all(key not in nodes.held(n)[0] for n in ("node1", "node2"))


def test_a_delta_names_every_removal_pending_on_its_node(fleet: Fleet, nodes: ScriptNodes) -> None:
    add(fleet, "alice-1", ["node1"])
    add(fleet, "alice-2", ["node1"])
    stale = fleet.store.configuration("alice-1").public_key
    with fleet.store.transaction():  # a removal recorded without moving the node's revision
        fleet.store._pend_removals([("node1", stale, "alice-1")])
    mark = len(nodes.requests)
    _, pushed = peers_service.set_enabled(fleet, ["alice-2"], False, OPERATOR)
    assert pushed.ok and nodes.kinds(mark) == [("node1", "delta")]
    assert f"remove {stale}" in nodes.requests[-1][1]
    assert fleet.store.pending_removals() == {}
    assert stale not in nodes.held("node1")[0]


def test_a_replaced_key_leaves_its_configuration_when_its_grace_ends_and_each_node_confirms(
    fleet: Fleet, nodes: ScriptNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(fleet, "alice-1", ["node1", "node2"])
    now = int(time.time())
    rotated = keys_service.rotate_peer(fleet, "alice-1", grace_seconds=60, now=now)
    old = rotated.configuration.previous_public_key
    assert old is not None and all(old in nodes.held(n)[0] for n in ("node1", "node2"))
    nodes.down.add("node2")
    monkeypatch.setattr(push_service.time, "time", lambda: now + 120)  # the grace ended
    pushed = push_service.push(fleet)
    assert [n.node for n in pushed.failed] == ["node2"]
    config = fleet.store.configuration("alice-1")
    assert config.previous_public_key is None and config.previous_psk_ref is None
    replaced_psk = rotated.configuration.previous_psk_ref
    assert replaced_psk is not None
    with pytest.raises(StoreError, match="is missing"):  # no node is given it again
        fleet.secrets.get(replaced_psk)
    assert fleet.store.pending_removals() == {"node2": {old}}
    assert old not in nodes.held("node1")[0] and old in nodes.held("node2")[0]
    assert accounted(fleet, nodes, "node2") == set()
    nodes.down.clear()
    converged(fleet, nodes)
    assert old not in nodes.held("node2")[0]


def test_a_removed_line_bills_only_a_key_the_store_took_off_that_node(
    fleet: Fleet, nodes: ScriptNodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(fleet, "alice-1", ["node1"])
    add(fleet, "alice-2", ["node2"])
    other = fleet.store.configuration("alice-2").public_key
    mine = fleet.store.configuration("alice-1").public_key

    def tampered(target: ssh.Target, argv: str, **kwargs: object) -> ssh.CommandResult:
        if target.name != "node1":
            raise NodeUnreachable(target.name, "down")
        # node1 claims it removed alice-2's key (placed on node2) with 10 GB on it.
        answer = (
            f"epoch e\nremoved {other} 10000000000 10000000000\nremoved {mine} 5 5\n"
            "summary interface=up added=0 changed=0 removed=2 unchanged=0 static=0\nok\n"
        )
        return ssh.CommandResult(0, answer, "")

    monkeypatch.setattr(fleet, "run", tampered)
    _, pushed = peers_service.set_enabled(fleet, ["alice-1"], False, OPERATOR)
    assert [n.node for n in pushed.nodes if n.ok] == ["node1"]
    usage = {u.configuration: u.total for u in fleet.store.usage()}
    assert usage == {"alice-1": 10}  # its own last bytes; nothing for alice-2
