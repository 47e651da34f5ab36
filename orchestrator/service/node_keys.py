"""Node key rotation: the new private key is made on the node and never leaves it.

Without overlap the node switches keys at once and every client needs a new config. With
overlap the next key serves on a second interface and the node's other port beside the current
one until the grace ends; new configs name the next key and port, old configs keep working,
and at the end the next key and port become the node's own.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date

from orchestrator.adapters import ssh
from orchestrator.core.accounting import OVERLAP_PREFIX, Sample
from orchestrator.core.collector import CounterParseError, parse_counters
from orchestrator.core.models import Node
from orchestrator.core.node_protocol import NODE_KEY_PROGRAM, WIREGUARD_PORT
from orchestrator.core.peers import valid_key
from orchestrator.core.quoting import quote
from orchestrator.errors import NodeError, StoreError, UsageError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.deploy import node_host_vars
from orchestrator.service.usage import Observation, account_observations

NODE_KEY_SCRIPT = NODE_KEY_PROGRAM


class NodeKeyRefused(NodeError):
    """The node's key script refused or answered something unexpected."""


@dataclass(frozen=True)
class NodeKeyAnswer:
    public_key: str
    port: int | None
    epoch: str = "none"
    samples: tuple[Sample, ...] = ()


def parse_node_key_answer(node: str, text: str) -> NodeKeyAnswer:
    lines = text.splitlines()
    errors = [line.removeprefix("error ") for line in lines if line.startswith("error ")]
    if errors:
        raise NodeKeyRefused(node, f"wgfleet-node-key: {errors[0]}")
    if not lines or not lines[0].startswith("public ") or not valid_key(lines[0][7:]):
        raise NodeKeyRefused(node, f"wgfleet-node-key answered {quote(text, 120)}")
    port = None
    rest = lines[1:]
    if rest and rest[0].startswith("port "):
        # ASCII digits, a real port: str.isdigit() would take '²', which int() refuses.
        if re.fullmatch(r"[1-9][0-9]{0,4}", rest[0][5:]) is None or int(rest[0][5:]) > 65535:
            raise NodeKeyRefused(node, f"wgfleet-node-key answered port {quote(rest[0][5:], 40)}")
        port = int(rest[0][5:])
        rest = rest[1:]
    if not rest:
        return NodeKeyAnswer(lines[0][7:], port)
    try:
        report = parse_counters("\n".join(rest) + "\n")
    except CounterParseError as exc:
        raise NodeKeyRefused(node, f"overlap counters refused, {exc}") from None
    return NodeKeyAnswer(lines[0][7:], port, report.epoch, tuple(report.samples))


def _run(fleet: Fleet, node: Node, *args: str) -> NodeKeyAnswer:
    target = fleet.target(node, "root", fleet.settings.ssh.deploy_key)
    result = ssh.run_on(target, [NODE_KEY_SCRIPT, node.interface, *args], check=False)
    return parse_node_key_answer(node.name, result.stdout)


def port_pair(fleet: Fleet, node: Node) -> tuple[int, int]:
    """The node's two ports from the inventory: the base and the alternate (base + 1)."""
    variables = node_host_vars(fleet.settings).get(node.name, {})
    base = int(variables.get("wireguard_port", WIREGUARD_PORT))
    return base, int(variables.get("wireguard_alternate_port", base + 1))


@dataclass(frozen=True)
class RotatedNode:
    node: Node
    overlap: bool
    reissue: tuple[str, ...]  # configurations whose clients need a config naming the new key
    grace_ends: int | None = None


@writes
def rotate_node(
    fleet: Fleet,
    name: str,
    *,
    overlap: bool,
    grace_seconds: int = 0,
    today: date | None = None,
    now: int | None = None,
) -> RotatedNode:
    today = today or date.today()
    now = int(time.time()) if now is None else now
    store = fleet.store
    node = fleet.nodes([name])[name]
    if node.rotating:
        raise UsageError(
            f"node {name} is already rotating (next key on port {node.next_listen_port}): "
            f"`wgfleet keys finish {name}` ends it"
        )
    reissue = tuple(c.name for c in store.configurations(node=name))
    if not overlap:
        answer = _run(fleet, node, "rotate")
        store.set_node_key(name, answer.public_key, today)
        return RotatedNode(store.node(name), False, reissue)
    if grace_seconds <= 0:
        raise UsageError("--overlap needs a grace period longer than zero")
    base, alternate = port_pair(fleet, node)
    port = alternate if node.listen_port == base else base
    answer = _run(fleet, node, "begin", str(port))
    store.begin_node_rotation(name, answer.public_key, port, now + grace_seconds, today)
    return RotatedNode(store.node(name), True, reissue, now + grace_seconds)


@writes
def finish_node_rotation(
    fleet: Fleet, name: str, *, abort: bool = False, today: date | None = None
) -> Node:
    """End an overlap now: account the overlap's counters, then make the next key the node's
    (or, with ``abort``, drop it and keep the current key).

    The node stops the overlap interface passing traffic before it reads its last counters,
    so every byte that passed is in them. Only keys the store placed on the node (or is taking
    off it) bill anyone; counters that went backwards within the overlap's epoch are not
    believed: the rotation still finishes, nothing of them is billed, and the error says so."""
    store = fleet.store
    node = fleet.nodes([name])[name]
    if not node.rotating:
        raise UsageError(f"node {name} has no key rotation in progress")
    try:
        answer = _run(fleet, node, "abort" if abort else "finish")
    except NodeKeyRefused as exc:
        # The node finished before the store could note it (a crash in between): adopt it.
        if "no rotation in progress" not in str(exc):
            raise
        answer = _run(fleet, node, "public")
        if answer.public_key != (node.public_key if abort else node.next_public_key):
            raise
    problem = ""
    with store.transaction():
        placed = {
            key
            for c in store.configurations(node=name)
            for key in (c.public_key, c.previous_public_key)
            if key
        }
        placed |= store.pending_removals([name]).get(name, set())
        samples = [
            Sample(OVERLAP_PREFIX + s.public_key, s.rx_bytes, s.tx_bytes)
            for s in answer.samples
            if s.public_key in placed  # static peers and strangers bill nobody
        ]
        if samples and answer.epoch != "none":
            observation = Observation(name, answer.epoch, samples, removed=True, overlap=True)
            day = today or date.today()
            problem = account_observations(fleet, [observation], day, vet=True)[0].problem
        store.forget_counters(name, OVERLAP_PREFIX)
        if abort:
            store.cancel_node_rotation(name)
        else:
            finished = store.finish_node_rotation(name)
            if finished.public_key != answer.public_key:
                raise StoreError(
                    f"{name} now holds key {answer.public_key}, not the expected next key"
                )
    fleet.record(
        f"{name}: node key rotation aborted, the current key stays"
        if abort
        else f"{name}: node key rotation finished: the next key is its own, and clients still "
        "on a configuration with its old key are cut off (`wgfleet keys reissue --node "
        f"{name}` gives them new ones)"
    )
    if problem:
        raise NodeError(
            name, f"the rotation ended, but the overlap's last counters were refused: {problem}"
        )
    return store.node(name)


@writes
def finish_due_rotations(fleet: Fleet, reachable: set[str], now: int) -> list[str]:
    """Finish every overlap whose grace ended on a node that answers; return their names."""
    done = []
    for node in fleet.store.nodes():
        if (
            node.rotating
            and node.name in reachable
            and node.next_key_expires is not None
            and node.next_key_expires <= now
        ):
            try:
                finish_node_rotation(fleet, node.name)
            except NodeError:
                continue
            done.append(node.name)
    return done
