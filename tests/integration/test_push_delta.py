"""Delta pushes on real lab nodes: a change goes as a delta to a node known to be in sync, the
removed peers' last counters still come back and are counted, a node that missed a change
(down while it was made) gets the full set and converges, and a node restarted from its
persisted peers takes deltas again.

Runs on the session lab after the deploy tests (it deploys the nodes itself if needed).
"""

from __future__ import annotations

import pytest

from orchestrator.core.models import DisabledReason
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, ping, root, transfer

pytestmark = pytest.mark.lab

OPERATOR = DisabledReason.OPERATOR
NODE = "node2"


def recorded_revision(lab: Lab, layout) -> int | None:
    text = root(lab, layout, 1, ["cat", "/etc/wireguard/wg0.peers"])
    lines = [line for line in text.splitlines() if line.startswith("# revision ")]
    return int(lines[0].removeprefix("# revision ")) if lines else None


def test_deltas_count_the_last_bytes_and_a_node_that_missed_one_converges(
    lab: Lab, layout, fleet: Fleet
) -> None:
    node, client = layout.nodes[1], layout.clients[0]
    account(fleet, "delta")
    made = [
        peers_service.add_configuration(fleet, "delta", nodes=[NODE], name=f"delta-{i}")
        for i in (1, 2)
    ]
    assert all(m.push.ok for m in made)
    key1, key2 = (m.configuration.public_key for m in made)

    def used(name: str) -> int:
        return sum(u.total for u in fleet.store.usage(name))

    def revision() -> int:
        return fleet.store.node_revisions()[NODE][0]

    lab_service.tunnel_up(lab.settings, client.name, made[0].client_configs[NODE])
    try:
        assert sync_service.sync(fleet, nodes=[NODE]).ok  # a baseline before the traffic
        assert ping(client.netns, str(node.tunnel_address), count=10)
        rx, tx = transfer(lab, layout, 1)[key1]

        # In sync: a delta. Its removed peer's counters come back and are all counted.
        _, pushed = peers_service.set_enabled(fleet, ["delta-1"], False, OPERATOR)
        answer = pushed.nodes[0].answer
        assert pushed.ok and answer is not None and answer.delta
        assert [r.public_key for r in answer.removed] == [key1]
        removed = answer.removed[0]
        assert removed.rx_bytes >= rx > 0 and removed.tx_bytes >= tx > 0
        assert used("delta-1") == removed.rx_bytes + removed.tx_bytes
        live = transfer(lab, layout, 1)
        assert key1 not in live and key2 in live
        assert recorded_revision(lab, layout) == revision()

        # Down while a change is made: that push fails and the node stays pending.
        lab_service.node_stop(lab.settings, NODE)
        try:
            _, missed = peers_service.set_enabled(fleet, ["delta-2"], False, OPERATOR)
            assert [n.node for n in missed.failed] == [NODE]
        finally:
            lab_service.node_start(lab.settings, NODE)
        assert NODE in push_service.pending_nodes(fleet)
        # The next change cannot go as a delta there: the full set, which converges.
        _, pushed = peers_service.set_enabled(fleet, ["delta-1"], True)
        answer = pushed.nodes[0].answer
        assert pushed.ok and answer is not None and not answer.delta
        assert answer.added == (key1,) and [r.public_key for r in answer.removed] == [key2]
        live = transfer(lab, layout, 1)
        assert key1 in live and key2 not in live
        assert NODE not in push_service.pending_nodes(fleet)
        assert recorded_revision(lab, layout) == revision()

        # Restarted in sync: the interface comes back from the persisted set, deltas go on.
        lab_service.node_stop(lab.settings, NODE)
        lab_service.node_start(lab.settings, NODE)
        assert key1 in transfer(lab, layout, 1)
        _, pushed = peers_service.set_enabled(fleet, ["delta-2"], True)
        answer = pushed.nodes[0].answer
        assert pushed.ok and answer is not None and answer.delta and answer.added == (key2,)
        assert key2 in transfer(lab, layout, 1)

        # A node whose live peers differ from its persisted set (changed by hand) refuses the
        # delta; the full set follows and puts the missing peer back.
        root(lab, layout, 1, ["wg", "set", "wg0", "peer", key2, "remove"])
        _, pushed = peers_service.set_enabled(fleet, ["delta-1"], False, OPERATOR)
        answer = pushed.nodes[0].answer
        assert pushed.ok and answer is not None and not answer.delta
        assert answer.added == (key2,) and [r.public_key for r in answer.removed] == [key1]
        live = transfer(lab, layout, 1)
        assert key2 in live and key1 not in live
    finally:
        lab_service.tunnel_down(lab.settings, client.name)
        deleted = peers_service.delete_account(fleet, "delta")  # in sync again: a delta too
        assert deleted.push.ok and len(deleted.removed) == 2
        assert not {key1, key2} & set(transfer(lab, layout, 1))
