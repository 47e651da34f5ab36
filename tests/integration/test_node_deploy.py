"""Deploy hardened no-log nodes on the session lab and audit them (runs after test_lab.py).

The tests in this module build on each other in file order: bare nodes are deployed first,
then redeployed, audited, broken and repaired.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.adapters import ssh
from orchestrator.adapters.lab.clients import ping_from
from orchestrator.core.lab_layout import LabClient, LabNode, client_tunnel_address, plan_layout
from orchestrator.service import deploy as deploy_service
from orchestrator.service import lab as lab_service
from tests.conftest import LAB_CLIENTS, LAB_NODES, Lab, audit_fleet, deploy_fleet
from tests.integration.fleet_lab import hand_made_config, tunnel, wg_keypair

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fleet(lab: Lab):
    layout = plan_layout(lab.settings.lab.name, lab.settings.lab.subnet, LAB_NODES, LAB_CLIENTS)
    client = layout.clients[0]
    private, public = wg_keypair()
    # The client is a configured peer on every node, as a deploy-managed static peer.
    peers = {
        node.name: [
            {"public_key": public, "allowed_ips": f"{client_tunnel_address(node, client)}/32"}
        ]
        for node in layout.nodes
    }
    return {
        "layout": layout,
        "client": client,
        "private": private,
        "public": public,
        "peers": peers,
    }


def deploy(lab: Lab, fleet: dict, **kwargs: object) -> deploy_service.DeployResult:
    # Per-host peers travel as one extravar keyed by host; the playbook picks its own.
    return deploy_fleet(lab.settings, extravars={"wgfleet_static_peers": fleet["peers"]}, **kwargs)


def tunnel_through(lab: Lab, node: LabNode, client: LabClient, private: str) -> None:
    target = lab_service.node_target(lab.settings, node)
    node_public = ssh.run_on(target, ["wg", "show", "wg0", "public-key"]).stdout.strip()
    address = client_tunnel_address(node, client)
    with tunnel(lab, client, hand_made_config(private, address, node, node_public, 51820)):
        ping = ping_from(client.netns, str(node.tunnel_address))
        assert ping.returncode == 0, f"{node.name}: {ping.stdout}{ping.stderr}"


def test_deploy_turns_bare_nodes_into_wireguard_nodes(lab: Lab, fleet: dict) -> None:
    result = deploy(lab, fleet)
    assert result.ok, result.as_dict()
    assert sorted(result.run.recap.hosts) == [n.name for n in fleet["layout"].nodes]
    assert result.run.recap.changed_total > 0
    for node in fleet["layout"].nodes:
        tunnel_through(lab, node, fleet["client"], fleet["private"])


def test_second_deploy_and_check_mode_change_nothing(lab: Lab, fleet: dict) -> None:
    names = [n.name for n in fleet["layout"].nodes]
    # Right after the first deploy the nodes are verified: no Ansible run at all.
    converged = deploy(lab, fleet)
    assert converged.ok, converged.as_dict()
    assert converged.verified == names, converged.as_dict()
    assert converged.run.recap.hosts == {}
    # full: Ansible itself must find nothing to change.
    again = deploy(lab, fleet, full=True)
    assert again.ok
    assert sorted(again.run.recap.hosts) == [n.name for n in fleet["layout"].nodes]
    assert {h.host: h.changed_tasks for h in again.run.recap.hosts.values() if h.changed} == {}
    checked = deploy(lab, fleet, check=True, diff=True, full=True)
    assert checked.ok
    assert {h.host: h.changed_tasks for h in checked.run.recap.hosts.values() if h.changed} == {}


def test_a_converged_deploy_verifies_the_nodes_instead_of_running_ansible(
    lab: Lab, fleet: dict
) -> None:
    names = [n.name for n in fleet["layout"].nodes]
    converged = deploy(lab, fleet)
    assert converged.verified == names, converged.as_dict()
    assert converged.as_dict()["hosts"] == {name: {"status": "verified"} for name in names}
    # One node's variables change: only that node gets the full run.
    moved = {**fleet["peers"], names[0]: []}
    changed = deploy_fleet(lab.settings, extravars={"wgfleet_static_peers": moved})
    assert changed.ok
    assert changed.verified == names[1:]
    assert sorted(changed.run.recap.hosts) == names[:1]
    assert changed.as_dict()["full_run_reasons"] == {
        names[0]: "roles, playbook or node variables changed"
    }
    restored = deploy(lab, fleet)
    assert restored.verified == names[1:] and sorted(restored.run.recap.hosts) == names[:1]


def test_node_private_key_never_leaves_the_node(lab: Lab, fleet: dict) -> None:
    node = fleet["layout"].nodes[0]
    target = lab_service.node_target(lab.settings, node)
    with ssh.NodeConnection(target) as connection:
        key = connection.run(["cat", "/etc/wireguard/wg0.key"]).stdout.strip()
        mode = connection.run(
            ["stat", "-c", "%a", "/etc/wireguard/wg0.key", "/etc/wireguard"]
        ).stdout.split()
    assert mode == ["600", "700"]
    artifacts = deploy_service.ansible_work_dir(lab.settings)
    for path in artifacts.rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), path


def test_audit_passes_on_deployed_nodes_after_a_client_handshake(lab: Lab, fleet: dict) -> None:
    node = fleet["layout"].nodes[0]
    tunnel_through(lab, node, fleet["client"], fleet["private"])
    result = audit_fleet(lab.settings, needles=[str(fleet["client"].underlay)])
    failures = [(c.node, c.check, c.evidence) for c in result.failed]
    assert failures == []
    checks = {(c.node, c.check) for c in result.checks}
    for name in (
        "canary.journal",
        "canary.syslog",
        "canary.ssh_login",
        f"canary.text {fleet['client'].underlay}",
    ):
        assert (node.name, name) in checks


def test_canaries_stay_off_disk_after_a_reboot_and_the_tunnel_comes_back(
    lab: Lab, fleet: dict
) -> None:
    node = fleet["layout"].nodes[1]
    tunnel_through(lab, node, fleet["client"], fleet["private"])
    lab_service.node_stop(lab.settings, node.name)
    lab_service.node_start(lab.settings, node.name)
    tunnel_through(lab, node, fleet["client"], fleet["private"])
    result = audit_fleet(lab.settings, limit=node.name, needles=[str(fleet["client"].underlay)])
    assert [(c.check, c.evidence) for c in result.failed] == []


def test_drift_is_caught_by_audit_and_repaired_by_deploy(lab: Lab, fleet: dict) -> None:
    node = fleet["layout"].nodes[2]
    target = lab_service.node_target(lab.settings, node)
    ssh.run_on(
        target,
        [
            "sh",
            "-c",
            "printf '[Journal]\\nStorage=persistent\\n' > /etc/systemd/journald.conf.d/zz-drift.conf",
        ],
    )
    broken = audit_fleet(lab.settings)
    assert [(c.node, c.check) for c in broken.failed] == [(node.name, "journald.storage")]
    assert broken.failed[0].evidence == "Storage=persistent"
    repaired = deploy(lab, fleet)
    assert repaired.ok and repaired.run.recap.host(node.name).changed > 0
    # The fast path saw the drift on that node only; a reboot and audits left no trace elsewhere.
    others = [n.name for n in fleet["layout"].nodes if n.name != node.name]
    assert repaired.verified == others
    assert repaired.as_dict()["full_run_reasons"] == {node.name: "drift in /etc/systemd"}, (
        repaired.as_dict()
    )
    assert audit_fleet(lab.settings).ok
    assert deploy(lab, fleet).verified == sorted([*others, node.name])


def test_a_dark_node_fails_the_deploy_by_name_and_the_others_complete(
    lab: Lab, fleet: dict
) -> None:
    dark = fleet["layout"].nodes[2]
    lab_service.node_stop(lab.settings, dark.name)
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("wgfleet")),
                "--config",
                str(lab.config_file),
                "deploy",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        lab_service.node_start(lab.settings, dark.name)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout or "null") or pytest.fail(result.stderr)
    assert summary["failed_hosts"] == [dark.name]
    assert summary["hosts"][dark.name]["status"] == "unreachable"
    # The others complete (this run has no static peers, so their wg0.conf may change).
    assert all(
        summary["hosts"][n.name]["status"] in ("ok", "changed") for n in fleet["layout"].nodes[:2]
    )
    assert f"wgfleet: deploy failed on {dark.name}: unreachable" in result.stderr
