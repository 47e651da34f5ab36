"""Temporary diagnostics on one node: started, inspected and stopped from the controller, ended
by the node itself when their time is up (the node's wgfleet-diag and a transient systemd
timer), so a diagnostic expires even if the controller never comes back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.adapters import ssh
from orchestrator.core.audit import DIAGNOSTICS_SCRIPT
from orchestrator.errors import NodeError, UsageError
from orchestrator.service.context import Fleet
from orchestrator.service.deploy import root_targets
from orchestrator.settings import Settings

MAX_SECONDS = 24 * 3600


@dataclass(frozen=True)
class DiagnosticState:
    node: str
    active: bool
    interface: str | None = None
    peer: str | None = None  # the configuration's name when the controller knows the key
    seconds_left: int | None = None
    timer: bool | None = None
    view: str | None = None
    error: str | None = None  # why the node could not be asked (named, one line)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _target(settings: Settings, node: str) -> ssh.Target:
    return root_targets(settings, node)[0]


def _call(settings: Settings, node: str, argv: list[str]) -> dict[str, Any]:
    result = ssh.run_on(_target(settings, node), [DIAGNOSTICS_SCRIPT, *argv], check=False)
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        problem = (result.stderr or result.stdout).strip()[:200] or f"exit {result.status}"
        raise NodeError(node, f"wgfleet-diag: {problem} (deploy the node first?)") from None
    if "error" in answer:
        raise NodeError(node, f"wgfleet-diag: {answer['error']}")
    return dict(answer)


def _state(node: str, answer: dict[str, Any], names: dict[str, str]) -> DiagnosticState:
    peer = answer.get("peer")
    return DiagnosticState(
        node,
        bool(answer.get("active")),
        answer.get("interface"),
        names.get(peer, peer) if peer else None,
        answer.get("seconds_left"),
        answer.get("timer"),
        answer.get("view"),
    )


def start(fleet: Fleet, node: str, seconds: int, peer: str | None = None) -> DiagnosticState:
    """Turn diagnostics on for ``seconds`` on ``node`` only, for one configuration or all."""
    if not 1 <= seconds <= MAX_SECONDS:
        raise UsageError(f"--for: 1 second to {MAX_SECONDS // 3600} hours")
    stored = fleet.store.node(node)
    key = None
    if peer is not None:
        config = fleet.store.configuration(peer)
        if node not in config.nodes:
            raise UsageError(f"--peer {peer}: not placed on {node}")
        key = config.public_key
    argv = ["start", str(seconds), stored.interface, *([key] if key else [])]
    fleet.record(f"diagnostics on {node} for {seconds} s")
    return _state(node, _call(fleet.settings, node, argv), {key: peer} if key and peer else {})


def _names(fleet: Fleet) -> dict[str, str]:
    return {c.public_key: c.name for c in fleet.store.configurations(placements=False)}


def status(fleet: Fleet, nodes: list[str] | None = None) -> list[DiagnosticState]:
    settings = fleet.settings
    names = _names(fleet)
    targets = root_targets(settings, ",".join(nodes) if nodes else None)
    states = []
    for target in targets:
        try:
            states.append(_state(target.name, _call(settings, target.name, ["status"]), names))
        except NodeError as exc:
            reason = str(exc).removeprefix(f"{target.name}: ")
            states.append(
                DiagnosticState(target.name, False, view=f"unreachable: {reason}", error=reason)
            )
    return states


def show(fleet: Fleet, node: str) -> DiagnosticState:
    return _state(node, _call(fleet.settings, node, ["show"]), _names(fleet))


def stop(fleet: Fleet, node: str) -> bool:
    """End the node's diagnostic now; False when none was active."""
    fleet.record(f"diagnostics off on {node}")
    return bool(_call(fleet.settings, node, ["stop"]).get("stopped"))
