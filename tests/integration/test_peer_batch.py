"""`wgfleet peers add --from FILE` on the lab: every configuration of the batch is on its nodes
after the command, which pushed each node once; a bad batch changes nothing anywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, root, wgfleet

pytestmark = pytest.mark.lab

ROWS = 30  # 10 on every node, 10 on node1, 10 on node2 and node3


def batch_text(prefix: str) -> str:
    rows = [f"- {{account: batcher, name: {prefix}-all-{i}, nodes: all}}" for i in range(10)]
    rows += [
        f"- {{account: batcher, name: {prefix}-one-{i}, nodes: [node1], quota: 1GiB}}"
        for i in range(10)
    ]
    rows += [f"- {{account: batcher, nodes: 'node2 node3', plan: {prefix}}}" for _ in range(10)]
    return "configurations:\n" + "\n".join(f"  {row}" for row in rows) + "\n"


def live_peers(lab: Lab, layout, index: int) -> set[str]:
    return set(root(lab, layout, index, ["wg", "show", "wg0", "peers"]).split())


def store_state(fleet: Fleet) -> tuple[object, ...]:
    return (
        sorted(c.name for c in fleet.store.configurations()),
        fleet.store.node_revisions(),
        fleet.store.sealed_secrets(),
    )


def test_a_batch_is_on_every_node_after_one_push_each(
    lab: Lab, layout, fleet: Fleet, tmp_path: Path
) -> None:
    account(fleet, "batcher")
    assert wgfleet(lab, "plans", "set", "bp", "--quota", "5GiB").returncode == 0
    batch = tmp_path / "batch.yml"
    batch.write_text(batch_text("bp"))
    out = tmp_path / "configs"
    done = wgfleet(lab, "--json", "peers", "add", "--from", str(batch), "--out-dir", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    shown = json.loads(done.stdout)
    made = shown["configurations"]
    assert len(made) == ROWS
    # One push per node, each carrying every configuration placed there.
    pushes = shown["push"]["nodes"]
    assert sorted(p["node"] for p in pushes) == ["node1", "node2", "node3"]
    placed = {n: sum(1 for c in made if n in c["nodes"]) for n in ("node1", "node2", "node3")}
    assert placed == {"node1": 20, "node2": 20, "node3": 20}
    assert {p["node"]: (p["ok"], p["added"]) for p in pushes} == {
        n: (True, count) for n, count in placed.items()
    }
    # On the nodes: every key of the batch, where the store placed it.
    keys = {c.name: c for c in fleet.store.configurations(names=[m["name"] for m in made])}
    for index, node in enumerate(("node1", "node2", "node3")):
        live = live_peers(lab, layout, index)
        wanted = {c.public_key for c in keys.values() if node in c.addresses}
        assert wanted <= live and len(wanted) == placed[node]
    # Each client config written once, 0600; the output names exactly those files.
    files = sorted(os.listdir(out))
    assert sorted(shown["written"]) == [str(out / f) for f in files]
    assert len(files) == 10 * 3 + 10 + 10 * 2
    assert all(os.stat(out / f).st_mode & 0o777 == 0o600 for f in files)
    # The run is one writing session in the operations trail.
    (last,) = fleet.store.operations(limit=1)
    assert (last.operation, last.outcome) == ("peers add", "ok")


def test_a_bad_batch_leaves_the_store_and_the_nodes_unchanged(
    lab: Lab, layout, fleet: Fleet, tmp_path: Path
) -> None:
    account(fleet, "batcher")
    text = batch_text("bq").replace("nodes: [node1], quota: 1GiB}", "nodes: [node1, node7]}", 1)
    batch = tmp_path / "bad.yml"
    batch.write_text(text)
    before = store_state(fleet)
    peers_before = [live_peers(lab, layout, i) for i in range(3)]
    out = tmp_path / "configs"
    refused = wgfleet(lab, "peers", "add", "--from", str(batch), "--out-dir", str(out))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"wgfleet: error: {batch}: row 11 (line 12): nodes: 'node7': no such node; nothing made\n"
    )
    assert refused.stdout == ""
    assert store_state(fleet) == before
    assert [live_peers(lab, layout, i) for i in range(3)] == peers_before
    assert os.listdir(out) == []  # made (empty, 0700) before the store was opened
