"""Which controllers' SSH keys the nodes accept: this controller's own (its data directory's
key files) and every other controller registered in the store and not revoked; a revoked
controller's keys are removed. The deploy and every push of authorized_keys pass these to
the roles (``controller_extravars``), and the audit expects exactly them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.adapters import keyfiles
from orchestrator.core.controllers import AuthorizedControllers, authorized_controllers
from orchestrator.core.controllers import key_line as parse_key_line
from orchestrator.service.context import Fleet
from orchestrator.settings import Settings

KEY_COMMENTS = {
    "deploy": "wgfleet-deploy",
    "collector": "wgfleet-collector",
    "push": "wgfleet-push",
}


def key_paths(settings: Settings) -> dict[str, Path]:
    ssh = settings.ssh
    return {"deploy": ssh.deploy_key, "collector": ssh.collector_key, "push": ssh.push_key}


def own_key_lines(settings: Settings, *, make: bool = False) -> dict[str, str]:
    """This controller's public keys (purpose -> ``TYPE BLOB``): the ones its data directory
    holds, or, with ``make``, all three (made if missing)."""
    lines = {}
    for purpose, path in key_paths(settings).items():
        public = path.with_name(path.name + ".pub")
        if make:
            text = keyfiles.ensure_ssh_keypair(path, KEY_COMMENTS[purpose])
        elif public.is_file():
            text = public.read_text(encoding="ascii")
        else:
            continue
        lines[purpose] = parse_key_line(text, str(public))
    return lines


def authorized(fleet: Fleet) -> AuthorizedControllers:
    return authorized_controllers(fleet.store.controllers(), own_key_lines(fleet.settings))


def controller_extravars(
    fleet: Fleet, granted: AuthorizedControllers | None = None
) -> dict[str, Any]:
    """The roles' variables for the other controllers' keys: the collector's and the push
    account's extra authorized keys, and root's deploy keys to add and to remove."""
    keys = granted or authorized(fleet)
    return {
        "counters_collector_extra_public_keys": list(keys.extra["collector"]),
        "peers_push_extra_public_keys": list(keys.extra["push"]),
        "wgfleet_root_keys_present": list(keys.extra["deploy"]),
        "wgfleet_root_keys_absent": list(keys.revoked["deploy"]),
    }
