"""`wgfleet controllers add|list|revoke`: the fleet's controllers and their SSH keys.

Each controller (a machine with its own data directory) has its own deploy, collector and
push keys. Registering one stores their public halves; the next deploy (from any controller
the nodes already accept) installs them on every node. Revoking one marks it revoked in the
store, pushes every node's authorized_keys without its keys (`controller_keys.yml`, as a key
rotation does) and reads the files back from every node: a stolen controller is cut off
without touching the others. A controller cannot revoke itself: its own keys are the ones
the push logs in with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.adapters import ansible, ssh
from orchestrator.adapters.input_files import read_text
from orchestrator.core.controllers import (
    Controller,
    check_controller_name,
    check_new_controller,
    key_line,
    leftover_keys,
)
from orchestrator.errors import NodeError, UsageError, WgfleetError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.controller_keys import key_paths, own_key_lines
from orchestrator.service.deploy import node_extravars, root_targets, run_fleet_playbook
from orchestrator.settings import Settings

# Every login account's authorized_keys, read back as root after a revocation; the homes come
# from the node's own passwd so the roles' defaults are not repeated here.
_READ_AUTHORIZED_KEYS = (
    "for u in root wgcollect wgpush; do "
    'h=$(getent passwd "$u" | cut -d: -f6) && cat "$h/.ssh/authorized_keys" 2>/dev/null; '
    "done; true"
)


class RevocationIncomplete(WgfleetError):
    """Some node may still accept the revoked controller's keys (exit 1): run revoke again."""


@dataclass(frozen=True)
class Revocation:
    controller: Controller
    nodes: tuple[str, ...]
    steps: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {**self.controller.as_dict(), "nodes": list(self.nodes), "steps": list(self.steps)}


def _key_files(settings: Settings, directory: Path) -> dict[str, str]:
    """Another controller's public keys, as copied from its data directory's keys/: the same
    file names as this controller's, with ``.pub``."""
    lines = {}
    for purpose, own in key_paths(settings).items():
        path = directory / (own.name + ".pub")
        lines[purpose] = key_line(read_text(path, 4096, "public key"), str(path))
    return lines


@writes
def add_controller(
    fleet: Fleet, name: str, keys_dir: Path | None = None, today: date | None = None
) -> Controller:
    """Register a controller by its public keys: this controller's own (made if missing), or
    another's from ``keys_dir``. Only the store changes; the next deploy installs them."""
    check_controller_name(name)
    settings = fleet.settings
    keys = (
        own_key_lines(settings, make=True) if keys_dir is None else _key_files(settings, keys_dir)
    )
    controller = Controller(name, keys, today or date.today())
    check_new_controller(fleet.store.controllers(), controller)
    fleet.store.add_controller(controller)
    fleet.record(f"controller {name} registered; the next deploy installs its keys")
    return controller


def list_controllers(fleet: Fleet) -> list[Controller]:
    return fleet.store.controllers()


def _read_back(fleet: Fleet, controller: Controller) -> dict[str, str]:
    """node -> what is wrong there: the revoked keys still present, or why it was not read."""
    problems: dict[str, str] = {}
    for target in root_targets(fleet.settings, None):
        try:
            text = ssh.run_on(target, _READ_AUTHORIZED_KEYS).stdout
        except NodeError as exc:
            problems[target.name] = f"not read back: {exc}"
            continue
        left = leftover_keys(text, controller)
        if left:
            problems[target.name] = "still holds " + ", ".join(left)
    return problems


@writes
def revoke_controller(fleet: Fleet, name: str, today: date | None = None) -> Revocation:
    """Revoke the named controller: marked in the store first (so no later deploy puts its
    keys back), then removed from every node's authorized_keys and checked there. Again
    retries the nodes (a node down during the first revoke)."""
    own = own_key_lines(fleet.settings)
    found = {c.name: c for c in fleet.store.controllers()}
    if name in found and set(found[name].keys.values()) & set(own.values()):
        raise UsageError(
            f"controller {name} holds this controller's own keys: revoke it from another one"
        )
    controller = fleet.store.revoke_controller(name, today or date.today())
    fleet.record(f"controller {name} revoked in the store")
    steps = [f"controller {name} marked revoked"]
    nodes = tuple(t.name for t in root_targets(fleet.settings, None))
    run = run_fleet_playbook(
        fleet.settings,
        "controller_keys.yml",
        ansible.PlaybookOptions(extravars=node_extravars(fleet)),
    )
    if run.status != "successful":
        failed = [f"{h}: {run.recap.host(h).error}" for h in run.recap.failed_hosts]
        steps.append("authorized_keys push failed on " + ("; ".join(failed) or run.status))
    else:
        steps.append(f"authorized_keys pushed to {len(nodes)} node(s) without its keys")
    problems = _read_back(fleet, controller)
    if problems:
        raise RevocationIncomplete(
            f"controller {name} is revoked in the store, but not yet on "
            + "; ".join(f"{n} ({p})" for n, p in sorted(problems.items()))
            + f"; run `wgfleet controllers revoke {name}` again"
        )
    steps.append("every node's authorized_keys read back: none of its keys is left")
    fleet.record(f"controller {name} removed from {len(nodes)} node(s)")
    return Revocation(controller, nodes, tuple(steps))
