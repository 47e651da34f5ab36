"""Which controllers' SSH keys the nodes accept: this controller's own (its data directory's
key files) and every other controller registered in the store and not revoked; a revoked
controller's keys are removed. The deploy and every push of authorized_keys pass these to
the roles (``controller_extravars``), and the audit expects exactly them.
"""

from __future__ import annotations

from typing import Any

from orchestrator.adapters import keyfiles
from orchestrator.core.controllers import PURPOSES, AuthorizedControllers, authorized_controllers
from orchestrator.core.controllers import key_line as parse_key_line
from orchestrator.service.context import Fleet
from orchestrator.settings import Settings

KEY_COMMENTS = {
    "deploy": "wgfleet-deploy",
    "collector": "wgfleet-collector",
    "push": "wgfleet-push",
}


def own_key_lines(settings: Settings) -> dict[str, str]:
    """This controller's public keys (purpose -> ``TYPE BLOB``), made if missing."""
    paths = {
        "deploy": settings.ssh.deploy_key,
        "collector": settings.ssh.collector_key,
        "push": settings.ssh.push_key,
    }
    return {
        purpose: parse_key_line(
            keyfiles.ensure_ssh_keypair(paths[purpose], KEY_COMMENTS[purpose]),
            f"{paths[purpose]}.pub",
        )
        for purpose in PURPOSES
    }


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
