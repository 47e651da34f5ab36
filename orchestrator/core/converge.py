"""Is a node still exactly as its last full deploy left it? Plain data in, a verdict out.

A full Ansible run over a converged node changes nothing but costs minutes of controller CPU.
So after a full run succeeds on a node, the deploy records two fingerprints for it: one of the
run's inputs (the roles and playbook, the node's variables, the public keys the roles install)
and one per section of the node's managed state (see adapters/node_state_probe.py). The next
deploy reads the node's state again and skips Ansible only if both match, the node is still
registered with the key it reports, and the last full run is recent enough; anything else (no
record, any changed input, any drifted section, a probe that failed) means the full run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.core.errors import NodeAnswerInvalid

# Per-node maps passed to every node as one extra var: only the node's own entry is its input.
PER_NODE_EXTRAVARS = ("wgfleet_listen_ports", "wgfleet_static_peers")


@dataclass(frozen=True)
class NodeRecord:
    """What the last full deploy of a node left, as fingerprints."""

    inputs: str
    state: Mapping[str, str]  # section -> hash of its lines
    full_run_on: date

    def as_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "state": dict(sorted(self.state.items())),
            "full_run_on": self.full_run_on.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeRecord:
        return cls(
            inputs=str(data["inputs"]),
            state={str(k): str(v) for k, v in dict(data["state"]).items()},
            full_run_on=date.fromisoformat(str(data["full_run_on"])),
        )


@dataclass(frozen=True)
class Verdict:
    node: str
    converged: bool
    reason: str  # why a full run is needed, or "verified" when it is not


def inputs_fingerprint(
    node: str,
    host_vars: Mapping[str, Any],
    extravars: Mapping[str, Any],
    files: Mapping[str, bytes],
) -> str:
    """One hash of everything a full run on ``node`` renders from.

    ``files`` are the project's role and playbook files and any controller file a role reads
    (named by path, so a moved file counts as a change).
    """
    own_extravars = {
        name: (
            value.get(node) if name in PER_NODE_EXTRAVARS and isinstance(value, Mapping) else value
        )
        for name, value in extravars.items()
    }
    digest = hashlib.sha256()
    digest.update(
        json.dumps([node, host_vars, own_extravars], sort_keys=True, default=str).encode()
    )
    for name in sorted(files):
        digest.update(f"\0{name}\0{len(files[name])}\0".encode())
        digest.update(files[name])
    return digest.hexdigest()


def state_fingerprint(probe_output: str) -> dict[str, str]:
    """Section -> hash of its lines, from the probe's ``SECTION<TAB>FACT`` lines."""
    lines: dict[str, list[str]] = {}
    for line in probe_output.splitlines():
        section, _, fact = line.partition("\t")
        if not fact:
            raise NodeAnswerInvalid(f"probe line without a section: {line[:80]!r}")
        lines.setdefault(section, []).append(fact)
    if not lines:
        raise NodeAnswerInvalid("the probe printed nothing")
    return {
        section: hashlib.sha256("\n".join(facts).encode()).hexdigest()[:32]
        for section, facts in lines.items()
    }


def reported_public_keys(probe_output: str) -> dict[str, str]:
    """Interface -> public key, from the probe's WireGuard section."""
    keys = {}
    for line in probe_output.splitlines():
        if line.startswith("wireguard\tpublic-key "):
            fields = line.split("\t", 1)[1].split()
            if len(fields) == 3:
                keys[fields[1]] = fields[2]
    return keys


def drifted_sections(recorded: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    return sorted(s for s in set(recorded) | set(now) if recorded.get(s) != now.get(s))


def verdict(
    node: str,
    record: NodeRecord | None,
    inputs: str,
    state: Mapping[str, str] | None,
    *,
    today: date,
    full_every_days: int,
    key_matches: bool,
) -> Verdict:
    """Converged only when every check passes; the first failing one is the reason."""
    if record is None:
        return Verdict(node, False, "no full run recorded")
    if record.inputs != inputs:
        return Verdict(node, False, "roles, playbook or node variables changed")
    if state is None:
        return Verdict(node, False, "state could not be read")
    age = (today - record.full_run_on).days
    if age >= full_every_days:
        return Verdict(node, False, f"last full run {age} days ago")
    drift = drifted_sections(record.state, state)
    if drift:
        return Verdict(
            node, False, "drift in " + ", ".join(drift[:5]) + (" ..." if len(drift) > 5 else "")
        )
    if not key_matches:
        return Verdict(node, False, "the node's WireGuard key differs from the store's")
    return Verdict(node, True, "verified")
