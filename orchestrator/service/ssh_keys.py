"""The controller's SSH keys: rotate one without a moment where a node accepts neither key.
(Nodes' host keys, and trusting a changed one, are service/host_keys.py.)

Rotation: make the new key beside the old (``KEY.next``), authorize both on every node, log in
with the new key on every node, swap the files, authorize the new key alone, and check the old
key is refused. A failure before the swap removes the new key again and changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.adapters import ansible, keyfiles, ssh
from orchestrator.core.inventory import public_key_fingerprint
from orchestrator.core.node_protocol import COLLECTOR_USER, DEPLOY_USER, PUSH_USER
from orchestrator.errors import AuthenticationFailed, NodeError, UsageError, WgfleetError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.controller_keys import KEY_COMMENTS
from orchestrator.service.deploy import node_extravars, root_targets, run_fleet_playbook
from orchestrator.service.keys import SSH_PURPOSES, ssh_key_paths
from orchestrator.settings import Settings

USERS = {"deploy": DEPLOY_USER, "collector": COLLECTOR_USER, "push": PUSH_USER}
COMMENTS = KEY_COMMENTS


class RotationFailed(WgfleetError):
    pass


@dataclass(frozen=True)
class SshRotation:
    purpose: str
    old_public: str
    new_public: str
    nodes: tuple[str, ...]
    steps: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "old_fingerprint": public_key_fingerprint(self.old_public),
            "new_fingerprint": public_key_fingerprint(self.new_public),
            "nodes": list(self.nodes),
            "steps": list(self.steps),
        }


def _pub(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _authorize(fleet: Fleet, purpose: str, extra: str | None, retire: str | None) -> None:
    settings = fleet.settings
    extravars: dict[str, Any] = dict(node_extravars(fleet))
    # The other registered controllers' keys (node_extravars) stay authorized throughout.
    if purpose == "collector" and extra:
        extravars["counters_collector_extra_public_keys"].append(extra)
    if purpose == "push" and extra:
        extravars["peers_push_extra_public_keys"].append(extra)
    if purpose == "deploy":
        extravars["wgfleet_root_keys_present"] += [extra] if extra else []
        extravars["wgfleet_root_keys_absent"] += [retire] if retire else []
    options = ansible.PlaybookOptions(extravars=extravars)
    run = run_fleet_playbook(settings, "controller_keys.yml", options)
    if run.status != "successful":
        failed = [f"{h}: {run.recap.host(h).error}" for h in run.recap.failed_hosts] or [
            f"the fleet ({run.status})"
        ]
        raise RotationFailed(f"authorizing the {purpose} key failed on {'; '.join(failed)}")


def _login(settings: Settings, purpose: str, key_file: Path) -> dict[str, NodeError]:
    """Log in as the purpose's account with ``key_file`` on every node; node -> error."""
    errors: dict[str, NodeError] = {}
    for target in root_targets(settings, None):
        as_user = ssh.Target(**{**target.__dict__, "user": USERS[purpose], "key_file": key_file})
        try:
            with ssh.NodeConnection(as_user):
                pass
        except NodeError as exc:
            errors[target.name] = exc
    return errors


@writes
def rotate_ssh_key(
    fleet: Fleet,
    purpose: str,
    *,
    today: date | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> SshRotation:
    if purpose not in SSH_PURPOSES:
        raise UsageError(f"ssh key {purpose!r}: one of {', '.join(SSH_PURPOSES)}")
    settings = fleet.settings
    path = ssh_key_paths(fleet)[purpose]
    if not path.exists():
        raise UsageError(f"{path} does not exist yet: deploy first")
    nodes = tuple(t.name for t in root_targets(settings, None))
    unreachable = _login(settings, purpose, path)
    if unreachable:
        raise RotationFailed(
            "every node must answer before a key rotation, not: "
            + "; ".join(f"{n} ({e})" for n, e in sorted(unreachable.items()))
        )
    old_public = _pub(path).read_text(encoding="ascii").strip()
    next_path = path.with_name(path.name + ".next")
    new_public = keyfiles.ensure_ssh_keypair(next_path, COMMENTS[purpose])
    steps = [
        f"new key {public_key_fingerprint(new_public)} made beside "
        f"{public_key_fingerprint(old_public)}"
    ]
    progress(steps[-1])
    try:
        _authorize(fleet, purpose, new_public, None)
        steps.append(f"both keys authorized on {len(nodes)} node(s)")
        progress(steps[-1])
        refused = _login(settings, purpose, next_path)
        if refused:
            raise RotationFailed(
                "the new key was refused on "
                + "; ".join(f"{n} ({e})" for n, e in sorted(refused.items()))
            )
        steps.append("login with the new key verified on every node")
        progress(steps[-1])
    except WgfleetError:
        _authorize(fleet, purpose, None, None if purpose != "deploy" else new_public)
        for stale in (next_path, _pub(next_path)):
            stale.unlink(missing_ok=True)
        raise
    old_path = path.with_name(path.name + ".old")
    os.replace(path, old_path)
    os.replace(_pub(path), _pub(old_path))
    os.replace(next_path, path)
    os.replace(_pub(next_path), _pub(path))
    # This controller's registration follows its key before the old one is dropped: else the
    # old key, still registered, would be authorized again as another controller's.
    fleet.store.replace_controller_key(
        purpose, " ".join(old_public.split()[:2]), " ".join(new_public.split()[:2])
    )
    _authorize(fleet, purpose, None, old_public if purpose == "deploy" else None)
    steps.append("old key removed from every node")
    progress(steps[-1])
    old_refused = [
        n
        for n, e in _login(settings, purpose, old_path).items()
        if isinstance(e, AuthenticationFailed)
    ]
    accepted = sorted(set(nodes) - set(old_refused))
    for stale in (old_path, _pub(old_path)):
        stale.unlink(missing_ok=True)
    if accepted:
        raise RotationFailed(f"the old {purpose} key is still accepted on {', '.join(accepted)}")
    steps.append("old key refused by every node; its files deleted")
    fleet.store.record_controller_key(
        purpose, " ".join(new_public.split()[:2]), today or date.today()
    )
    return SshRotation(purpose, old_public, new_public, nodes, tuple(steps))
