"""The request the controller sends to a node's `wgfleet-peers` entry point, and its answer.

A full request carries the node's whole peer set; the node changes only the peers that differ.
A delta request (`base`) carries only the peers one change touched, for a node that holds the
store's revision just before that change: the node checks that revision (it keeps the one it
was last brought to) and that its live peers are the set it persisted, and answers `resync`
without changing anything when either is not so, and then the controller sends the full set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator.core.errors import CoreError, NodeAnswerInvalid
from orchestrator.core.node_protocol import PUSH_HEADER
from orchestrator.core.peers import DesiredPeer, PeerDelta, valid_key
from orchestrator.core.quoting import quote, sanitize

HEADER = PUSH_HEADER


def _peer_line(peer: DesiredPeer, preshared: dict[str, str]) -> str:
    psk = preshared[peer.psk_ref] if peer.psk_ref else "-"
    return f"peer {peer.public_key} {peer.allowed_ips} {psk}"


def render_request(
    mode: str,
    interface: str,
    peers: Iterable[DesiredPeer],
    preshared: dict[str, str],
    revision: int | None = None,
) -> str:
    """``preshared`` maps psk references to keys; the request is the node's whole peer set.
    ``revision``: the store's revision of that set, which the node keeps for later deltas."""
    if mode not in ("plan", "apply"):
        raise CoreError(f"mode {mode!r}")
    lines = [HEADER, f"mode {mode}", f"interface {interface}"]
    if revision is not None:
        lines.append(f"revision {revision}")
    handovers = []
    for peer in peers:
        lines.append(_peer_line(peer, preshared))
        if peer.takes_over_from:
            handovers.append(f"handover {peer.takes_over_from} {peer.public_key}")
    lines += handovers
    lines.append("end")
    return "\n".join(lines) + "\n"


def render_delta_request(
    mode: str,
    interface: str,
    base: int,
    revision: int,
    delta: PeerDelta,
    preshared: dict[str, str],
) -> str:
    """Only the peers one change touched, for a node holding revision ``base``; it leaves the
    node at ``revision``. ``preshared`` needs the keys of ``delta.hold`` only."""
    if mode not in ("plan", "apply"):
        raise CoreError(f"mode {mode!r}")
    if any(peer.takes_over_from for peer in delta.hold):
        raise CoreError("a handover needs the whole peer set")
    lines = [HEADER, f"mode {mode}", f"interface {interface}", f"base {base}"]
    lines.append(f"revision {revision}")
    lines += [_peer_line(peer, preshared) for peer in delta.hold]
    lines += [f"remove {key}" for key in delta.drop]
    lines.append("end")
    return "\n".join(lines) + "\n"


class PushProtocolError(NodeAnswerInvalid):
    pass


# A byte count or a tally as a node prints it: ASCII digits (str.isdigit also takes other
# scripts' digits), within 64-bit counters.
_COUNT = re.compile(r"0|[1-9][0-9]{0,18}")
MAX_COUNT = 2**63 - 1


def _count(text: str, what: str) -> int:
    if _COUNT.fullmatch(text) is None or int(text) > MAX_COUNT:
        raise PushProtocolError(f"{what} {quote(text, 24)} is not a count")
    return int(text)


@dataclass(frozen=True)
class RemovedPeer:
    public_key: str
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class OverlapRemovals:
    """Peers removed from the interface serving a node's next key during a rotation."""

    interface: str
    epoch: str
    removed: tuple[RemovedPeer, ...]


@dataclass(frozen=True)
class PushAnswer:
    epoch: str
    interface_up: bool
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[RemovedPeer, ...] = ()
    unchanged: int = 0
    static: int = 0
    elapsed_ms: int = 0  # the node's own time for the request, reading to writing
    summary: dict[str, str] = field(default_factory=dict)
    overlap: OverlapRemovals | None = None
    # A delta the node would not apply (it does not hold the base revision, or its live peers
    # are not the set it persisted): nothing changed; the controller sends the full set.
    resync: str = ""

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)

    @property
    def delta(self) -> bool:
        """The node applied a delta request (False: a full one)."""
        return self.summary.get("kind") == "delta"


def parse_answer(text: str) -> PushAnswer:
    """Strict: anything unexpected rejects the whole answer."""
    lines = text.splitlines()
    if not lines or lines[-1] != "ok":
        errors = [line.removeprefix("error ") for line in lines if line.startswith("error ")]
        raise PushProtocolError(
            sanitize(errors[0], 300) if errors else f"no 'ok' in answer: {quote(text[-200:])}"
        )
    if lines[0].startswith("resync "):
        if len(lines) != 2 or not lines[0].removeprefix("resync ").strip():
            raise PushProtocolError(f"a resync answer is one reason and 'ok': {quote(text[:200])}")
        return PushAnswer(epoch="", interface_up=False, resync=lines[0].removeprefix("resync "))
    epoch = ""
    added: list[str] = []
    changed: list[str] = []
    removed: list[RemovedPeer] = []
    summary: dict[str, str] = {}
    overlap_interface = overlap_epoch = ""
    overlap_removed: list[RemovedPeer] = []
    for number, line in enumerate(lines[:-1], start=1):
        parts = line.split(" ")
        kind = parts[0]
        if kind == "epoch" and len(parts) == 2:
            if overlap_interface:
                overlap_epoch = parts[1]
            else:
                epoch = parts[1]
        elif kind == "interface" and len(parts) == 2 and not overlap_interface:
            overlap_interface = parts[1]
        elif kind in ("added", "changed") and len(parts) == 2 and valid_key(parts[1]):
            (added if kind == "added" else changed).append(parts[1])
        elif kind == "removed" and len(parts) == 4 and valid_key(parts[1]):
            what = f"line {number}: removed peer's"
            rx, tx = _count(parts[2], f"{what} rx"), _count(parts[3], f"{what} tx")
            peer = RemovedPeer(parts[1], rx, tx)
            (overlap_removed if overlap_interface else removed).append(peer)
        elif kind == "summary":
            summary = dict(part.split("=", 1) for part in parts[1:] if "=" in part)
        else:
            raise PushProtocolError(f"line {number} not understood: {quote(line, 80)}")
    if not epoch or not summary:
        raise PushProtocolError("answer lacks an epoch or a summary")
    if overlap_interface and not overlap_epoch:
        raise PushProtocolError(f"overlap interface {overlap_interface} without an epoch")
    return PushAnswer(
        epoch=epoch,
        interface_up=summary.get("interface") == "up",
        added=tuple(added),
        changed=tuple(changed),
        removed=tuple(removed),
        unchanged=_count(summary.get("unchanged", "0"), "summary unchanged"),
        static=_count(summary.get("static", "0"), "summary static"),
        elapsed_ms=_count(summary.get("elapsed_ms", "0"), "summary elapsed_ms"),
        summary=summary,
        overlap=OverlapRemovals(overlap_interface, overlap_epoch, tuple(overlap_removed))
        if overlap_interface
        else None,
    )
