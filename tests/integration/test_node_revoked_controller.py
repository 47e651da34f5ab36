"""Two controllers of one fleet (issue 24, point 2): each with its own data directory and SSH
keys, registered in the shared store; the deploy installs both on every node; revoking one
removes its keys from every node, and an attacker holding its keys is refused by every
account of every node while the other controller keeps syncing.

Both controllers run on this machine against one real PostgreSQL store: a copy of the session
lab's (its nodes, configurations and sealed preshared keys), so the lab's own embedded store is
left as it was. The second controller's data directory (its keys) is its own; the pinned host
keys and deploy fingerprints reach it through the store, as between two data centres.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters import ssh
from orchestrator.errors import AuthenticationFailed
from orchestrator.service import sync as sync_service
from orchestrator.service.context import open_fleet
from orchestrator.service.controllers import add_controller, revoke_controller
from orchestrator.service.deploy import records_path, root_targets
from orchestrator.settings import Settings
from tests.conftest import Lab, deploy_fleet
from tests.pgserver import fresh_database
from tests.store_copy import copy_to_postgresql

pytestmark = pytest.mark.lab

# Each login account and the controller key purpose it is for.
ACCOUNTS = {"root": "deploy", "wgcollect": "collector", "wgpush": "push"}


def _key_files(settings: Settings) -> tuple[Path, ...]:
    return (settings.ssh.deploy_key, settings.ssh.collector_key, settings.ssh.push_key)


def _logins(settings: Settings, key_files: tuple[Path, ...]) -> dict[tuple[str, str, str], str]:
    """(node, account, key) -> "ok", "refused" or the error: every key on every account."""
    seen = {}
    for target in root_targets(settings, None):
        for user in ACCOUNTS:
            for key in key_files:
                attempt = dataclasses.replace(target, user=user, key_file=key)
                try:
                    with ssh.NodeConnection(attempt):
                        seen[(target.name, user, key.name)] = "ok"
                except AuthenticationFailed:
                    seen[(target.name, user, key.name)] = "refused"
    return seen


@pytest.fixture
def controllers(
    lab: Lab, deployed: None, tmp_path: Path, postgres_server: str
) -> Iterator[tuple[Settings, Settings]]:
    """Controllers "a" (the lab's keys and data directory) and "b" (a data directory of its
    own) on a PostgreSQL copy of the lab's store. Afterwards a's deploy records are put back as
    they were (the nodes' files are as before too), so later modules' deploys still find
    converged nodes; the lab's own store was never written."""
    records = records_path(lab.settings)
    kept = records.read_bytes() if records.exists() else None
    url = fresh_database(postgres_server)
    copied = copy_to_postgresql(lab.settings.store_url, url)
    assert copied["nodes"] == len(root_targets(lab.settings, None))
    a = dataclasses.replace(lab.settings, store_url=url)
    b = dataclasses.replace(
        a,
        data_dir=tmp_path / "controller-b",
        fleet_secret=lab.settings.fleet_secret_file,  # as the operator copies it to b
        ssh=dataclasses.replace(
            a.ssh,
            deploy_key=tmp_path / "controller-b" / "keys" / "deploy_ed25519",
            collector_key=tmp_path / "controller-b" / "keys" / "collector_ed25519",
            push_key=tmp_path / "controller-b" / "keys" / "push_ed25519",
        ),
    )
    try:
        yield a, b
    finally:
        if kept is not None:
            records.write_bytes(kept)


def test_a_revoked_controller_is_refused_everywhere_and_the_other_keeps_working(
    controllers: tuple[Settings, Settings],
) -> None:
    a, b = controllers
    with open_fleet(a, write=True) as fleet:
        add_controller(fleet, "a")
    with open_fleet(b, write=True) as fleet:
        add_controller(fleet, "b")  # makes b's own keys in its data directory
    deployed = deploy_fleet(a)
    assert deployed.ok, deployed.as_dict()
    # Each of b's keys opens its own account on every node (and no other).
    logins = _logins(b, _key_files(b))
    for (node, user, key), outcome in logins.items():
        assert outcome == ("ok" if key.startswith(ACCOUNTS[user]) else "refused"), (node, user)
    with open_fleet(b, write=True) as fleet:
        assert sync_service.sync(fleet, enforce_quota=False).ok

    with open_fleet(a, write=True) as fleet:
        revoked = revoke_controller(fleet, "b")
    assert sorted(revoked.nodes) == sorted(t.name for t in root_targets(a, None))

    # The attacker holding b's keys tries each on every account of every node: refused.
    after = _logins(b, _key_files(b))
    assert len(after) == len(revoked.nodes) * len(ACCOUNTS) * 3
    assert set(after.values()) == {"refused"}, after
    with open_fleet(b, write=True) as fleet:
        stolen = sync_service.sync(fleet, enforce_quota=False)
    assert {n.node for n in stolen.failed} == set(revoked.nodes)
    # a is untouched: its keys open their accounts and it syncs every node.
    mine = _logins(a, _key_files(a))
    assert all(
        outcome == "ok"
        for (_node, user, key), outcome in mine.items()
        if key.startswith(ACCOUNTS[user])
    )
    with open_fleet(a, write=True) as fleet:
        synced = sync_service.sync(fleet, enforce_quota=False)
    assert synced.ok and len(synced.nodes) == len(revoked.nodes)
